"""Hold what the backend noticed against what a scenario injected: detections, false alerts, latency.

An Observation is the backend telling about a fault on a charger: an alert operators received,
or a fault record as first seen. Each injected fault expects one kind of backend fault
(`expectation`); in time order, it takes the earliest observation on its charger, from its
start on, that it expects and no earlier injection took: its detection. Further observations a
detected injection expects are its repeats; the rest are false alerts, filed under the
injection kind that would have expected them (`label_of`).

Some injections expect nothing: a connection blip is shorter than the backend's offline grace
(an offline alert for it is a false alert), and the backend has no rule for a charger that
stops answering its commands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import assert_never

from chargenet_shim.sim.scenario import (
    ConnectionBlip,
    ConnectionOutage,
    ErrorCode,
    Injection,
    InjectionKind,
    MeterReset,
    PowerAboveRating,
    RebootLoop,
    StopAnswering,
    StuckMeter,
    injection_label,
)
from chargenet_shim.sim.scenario_run import Injected

# The backend's fault kinds and codes (chargenet.domain.faults, fault_rules and the session
# anomalies of sessions.py), as its fault records name them.
CONNECTOR_ERROR = "connector_error"
OFFLINE = "offline"
METERING = "metering"
SESSION = "session"
REBOOT_LOOP = "reboot_loop"
STUCK_METER = "StuckMeter"
POWER_ABOVE_RATING = "PowerAboveRating"
# A start register of 0 after higher readings, a register going back within a session, and
# so a stop register below the start.
REGISTER_RESETS = {"MeterReset", "RegisterBackwards", "StopBelowStart"}


@dataclass(frozen=True)
class Expectation:
    """The backend fault an injection should lead to: one of `fault_kinds` with one of `codes`."""

    fault_kinds: frozenset[str]
    codes: frozenset[str]

    @classmethod
    def of(cls, fault_kinds: set[str], codes: set[str]) -> Expectation:
        return cls(frozenset(fault_kinds), frozenset(codes))

    def accepts(self, fault_kind: str, code: str) -> bool:
        return fault_kind in self.fault_kinds and code in self.codes

    def describe(self) -> str:
        return f"{'|'.join(sorted(self.fault_kinds))} {'|'.join(sorted(self.codes))}"


def expectation(injection: Injection) -> Expectation | None:
    match injection:
        case ErrorCode(params=p):
            return Expectation.of({CONNECTOR_ERROR}, {p.code})
        case ConnectionOutage():
            return Expectation.of({OFFLINE}, {"Offline"})
        case StuckMeter():
            return Expectation.of({METERING}, {STUCK_METER})
        case PowerAboveRating():
            return Expectation.of({METERING}, {POWER_ABOVE_RATING})
        case MeterReset():
            # A register going back is a metering fault and a session anomaly: either will do.
            return Expectation.of({METERING, SESSION}, REGISTER_RESETS)
        case RebootLoop():
            return Expectation.of({REBOOT_LOOP}, {"RebootLoop"})
        case ConnectionBlip() | StopAnswering():
            return None
    assert_never(injection)


def label_of(fault_kind: str, code: str) -> str:
    """The injection label (scenario.injection_label) whose fault this is, for false alerts."""
    if fault_kind == CONNECTOR_ERROR:
        return f"{InjectionKind.ERROR_CODE}/{code}"
    if fault_kind == OFFLINE:
        return InjectionKind.CONNECTION_OUTAGE
    if fault_kind == REBOOT_LOOP:
        return InjectionKind.REBOOT_LOOP
    if fault_kind == METERING and code == STUCK_METER:
        return InjectionKind.STUCK_METER
    if fault_kind == METERING and code == POWER_ABOVE_RATING:
        return InjectionKind.POWER_ABOVE_RATING
    if fault_kind in (METERING, SESSION) and code in REGISTER_RESETS:
        return InjectionKind.METER_RESET
    return f"other/{fault_kind}/{code}"


@dataclass(frozen=True)
class Observation:
    at: dt.datetime  # when operators got the alert, or the fault record was first seen
    charger_id: str
    fault_kind: str
    code: str
    what: str  # the alert's subject or the fault's evidence, for people


@dataclass(frozen=True)
class Outcome:
    injected: Injected
    expected: Expectation | None
    observation: Observation | None  # the detection
    # Further observations it explains: one fault showing as several backend faults (a reset
    # register also ends below its start), or a repeated alert.
    repeats: tuple[Observation, ...] = ()

    @property
    def latency_s(self) -> float | None:
        if self.observation is None:
            return None
        return (self.observation.at - self.injected.started_at).total_seconds()

    def explains(self, observation: Observation) -> bool:
        return (
            self.expected is not None
            and self.injected.error is None
            and observation.charger_id == self.injected.charger_id
            and observation.at >= self.injected.started_at
            and self.expected.accepts(observation.fault_kind, observation.code)
        )


def match(
    injected: Sequence[Injected], observations: Sequence[Observation]
) -> tuple[list[Outcome], list[Observation]]:
    """One outcome per injection (in the order given) and the observations no injection explains."""
    left = sorted(observations, key=lambda o: o.at)
    outcomes = [Outcome(fault, expectation(fault.injection), None) for fault in injected]
    for position in sorted(range(len(outcomes)), key=lambda p: outcomes[p].injected.started_at):
        found = next((o for o in left if outcomes[position].explains(o)), None)
        if found is not None:
            left.remove(found)
            outcomes[position] = dataclasses.replace(outcomes[position], observation=found)
    unexplained = []
    for observation in left:
        # The latest detected injection before it that explains it takes it as a repeat.
        by = [p for p, o in enumerate(outcomes) if o.observation is not None and o.explains(observation)]
        if not by:
            unexplained.append(observation)
            continue
        latest = max(by, key=lambda p: outcomes[p].injected.started_at)
        repeats = (*outcomes[latest].repeats, observation)
        outcomes[latest] = dataclasses.replace(outcomes[latest], repeats=repeats)
    return outcomes, unexplained


@dataclass(frozen=True)
class KindScore:
    label: str
    expects: str | None  # the backend fault expected; None: none (nothing to detect)
    injected: int
    detected: int
    repeats: int
    false_alerts: int
    latencies_s: tuple[float, ...]

    @property
    def detection_rate(self) -> float | None:
        if self.expects is None or not self.injected:
            return None
        return self.detected / self.injected

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.latencies_s) if self.latencies_s else None

    @property
    def worst_s(self) -> float | None:
        return max(self.latencies_s, default=None)


def score(outcomes: Sequence[Outcome], false_alerts: Sequence[Observation]) -> list[KindScore]:
    """Per injection label (and per label false alerts were filed under), sorted by label.

    An injection that could not be injected counts as neither injected nor detected.
    """
    labels: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.injected.error is None:
            labels.setdefault(injection_label(outcome.injected.injection), []).append(outcome)
    false_by_label: dict[str, int] = {}
    for observation in false_alerts:
        label = label_of(observation.fault_kind, observation.code)
        false_by_label[label] = false_by_label.get(label, 0) + 1
    return [
        _kind_score(label, labels.get(label, []), false_by_label.get(label, 0))
        for label in sorted(set(labels) | set(false_by_label))
    ]


def _kind_score(label: str, outcomes: list[Outcome], false_alerts: int) -> KindScore:
    expected = outcomes[0].expected if outcomes else None
    latencies = tuple(o.latency_s for o in outcomes if o.latency_s is not None)
    return KindScore(
        label=label,
        expects=expected.describe() if expected else None,
        injected=len(outcomes),
        detected=len(latencies),
        repeats=sum(len(o.repeats) for o in outcomes),
        false_alerts=false_alerts,
        latencies_s=latencies,
    )
