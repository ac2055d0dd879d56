"""Faults on chargers and connectors: the record, its episodes, and how signals fold into it.

Everything here is pure. Rules (fault_rules.py) turn what a charger said, or failed to
say, into FaultSignals and FaultResolutions; `observe`, `resolve` and `acknowledge` fold
those into a Fault record; the alert policy (alerts.py) decides what an operator hears.
Messages arrive late and twice, so every transition is idempotent and ignores stale input.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chargenet.domain.clock import ocpp_time


class Severity(StrEnum):
    SAFETY_CRITICAL = "safety_critical"
    MAJOR = "major"
    MINOR = "minor"
    INFO = "info"


_SEVERITY_RANK = {Severity.INFO: 0, Severity.MINOR: 1, Severity.MAJOR: 2, Severity.SAFETY_CRITICAL: 3}


class FaultKind(StrEnum):
    CONNECTOR_ERROR = "connector_error"
    CHARGER_UNAVAILABLE = "charger_unavailable"
    OFFLINE = "offline"
    METERING = "metering"
    SESSION = "session"
    REBOOT_LOOP = "reboot_loop"
    SECURITY_EVENT = "security_event"
    CERTIFICATE_EXPIRY = "certificate_expiry"


class FaultState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class ExclusionReason(StrEnum):
    """Outage causes NEVI lets an operator exclude from uptime (23 CFR 680.116)."""

    UTILITY_OUTAGE = "utility_outage"
    NETWORK_OUTAGE = "network_outage"
    VEHICLE_FAULT = "vehicle_fault"
    SCHEDULED_MAINTENANCE = "scheduled_maintenance"
    VANDALISM = "vandalism"
    NATURAL_DISASTER = "natural_disaster"


EVIDENCE_LIMIT = 10
EVIDENCE_CHARS = 200
# A fault that re-opens within this long of clearing is flapping, not a new problem.
FLAP_WINDOW = timedelta(minutes=30)


def more_severe(a: Severity, b: Severity) -> Severity:
    return a if _SEVERITY_RANK[a] >= _SEVERITY_RANK[b] else b


def fault_id(charger_id: str, connector_id: int, kind: FaultKind, code: str) -> str:
    """Stable per (charger, connector, kind, code): observing it again finds the same record."""
    key = json.dumps([charger_id, connector_id, str(kind), code])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


class FaultSignal(BaseModel):
    """What a source observed that indicates a fault."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    site_id: str
    connector_id: int  # 0 = the whole charger
    kind: FaultKind
    code: str
    vendor_error_code: str | None = None
    severity: Severity
    at: datetime
    evidence: str
    # A condition re-checked on every sweep (a certificate's remaining validity), dated when it
    # was checked: seen again with the same evidence, it is the same sighting, not a new one.
    standing: bool = False

    @property
    def fault_id(self) -> str:
        return fault_id(self.charger_id, self.connector_id, self.kind, self.code)


class FaultResolution(BaseModel):
    """What a source observed that clears faults: every fault of these kinds (and code, if given)."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    connector_id: int
    kinds: frozenset[FaultKind]
    code: str | None = None
    at: datetime

    def matches(self, fault: Fault) -> bool:
        return (
            fault.charger_id == self.charger_id
            and fault.connector_id == self.connector_id
            and fault.kind in self.kinds
            and (self.code is None or fault.code == self.code)
        )


class Fault(BaseModel):
    """One fault on a charger or connector; an episode runs from (re-)opening to resolution."""

    model_config = ConfigDict(frozen=True)

    fault_id: str
    charger_id: str
    site_id: str
    connector_id: int
    kind: FaultKind
    code: str
    vendor_error_code: str | None = None
    severity: Severity
    state: FaultState
    first_seen: datetime  # start of the current episode
    last_seen: datetime
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    episode: int = 1
    occurrences: int = 1  # signals in the current episode
    flaps: int = 0  # consecutive re-opens, each within FLAP_WINDOW of the clearing before it
    evidence: list[str] = []  # the latest signals, oldest first; also how duplicates are recognised
    excluded_reason: ExclusionReason | None = None


def observe(
    existing: Fault | None, signal: FaultSignal, now: datetime, flap_window: timedelta = FLAP_WINDOW
) -> Fault:
    """The fault after this signal: opened, updated, or re-opened as a new episode.

    A redelivered signal changes nothing, and a signal from before the fault's last
    resolution (a late message) cannot re-open it.
    """
    # Charger clocks drift: a timestamp from the future is taken as now.
    seen = min(signal.at, now)
    entry = _evidence_entry(signal)
    if existing is None:
        return _opened(signal, seen, entry)
    if existing.fault_id != signal.fault_id:
        raise ValueError(f"signal for {signal.fault_id} observed on another fault, {existing.fault_id}")
    if existing.state is FaultState.RESOLVED:
        # Compare the charger's own time, not the clamped one: the answer must not depend on `now`.
        if signal.at <= cleared_at(existing):
            return existing
        return _reopened(existing, signal, seen, entry, flap_window)
    if entry in existing.evidence or _standing_repeat(existing, signal):
        return existing
    return existing.model_copy(
        update={
            "first_seen": min(existing.first_seen, seen),
            "last_seen": max(existing.last_seen, seen),
            "severity": more_severe(existing.severity, signal.severity),
            "vendor_error_code": signal.vendor_error_code or existing.vendor_error_code,
            "occurrences": existing.occurrences + 1,
            "evidence": _with_evidence(existing.evidence, entry),
        }
    )


def _evidence_entry(signal: FaultSignal) -> str:
    return f"{ocpp_time(signal.at)} {signal.evidence}"[:EVIDENCE_CHARS]


def _standing_repeat(existing: Fault, signal: FaultSignal) -> bool:
    """A standing condition checked again and found as it was last recorded (time aside)."""
    if not signal.standing or not existing.evidence:
        return False
    return _untimed(existing.evidence[-1]) == _untimed(_evidence_entry(signal))


def _untimed(entry: str) -> str:
    return entry.partition(" ")[2]  # an entry is "<ocpp time> <evidence>"


def _with_evidence(evidence: list[str], entry: str) -> list[str]:
    return [*evidence, entry][-EVIDENCE_LIMIT:]


def _opened(signal: FaultSignal, seen: datetime, entry: str) -> Fault:
    return Fault(
        fault_id=signal.fault_id,
        charger_id=signal.charger_id,
        site_id=signal.site_id,
        connector_id=signal.connector_id,
        kind=signal.kind,
        code=signal.code,
        vendor_error_code=signal.vendor_error_code,
        severity=signal.severity,
        state=FaultState.OPEN,
        first_seen=seen,
        last_seen=seen,
        evidence=[entry],
    )


def _reopened(
    existing: Fault, signal: FaultSignal, seen: datetime, entry: str, flap_window: timedelta
) -> Fault:
    cleared_for = seen - cleared_at(existing)
    return existing.model_copy(
        update={
            "state": FaultState.OPEN,
            "severity": signal.severity,
            "vendor_error_code": signal.vendor_error_code,
            "first_seen": seen,
            "last_seen": seen,
            "resolved_at": None,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "excluded_reason": None,
            "episode": existing.episode + 1,
            "occurrences": 1,
            "flaps": existing.flaps + 1 if cleared_for <= flap_window else 0,
            "evidence": _with_evidence(existing.evidence, entry),
        }
    )


def resolve(existing: Fault | None, at: datetime) -> Fault | None:
    """The fault cleared at `at`; unchanged if already resolved or seen again after `at`."""
    if existing is None or existing.state is FaultState.RESOLVED:
        return existing
    # A late resolution must not close a fault the charger reported again since.
    if at < existing.last_seen:
        return existing
    return existing.model_copy(update={"state": FaultState.RESOLVED, "resolved_at": at})


def cleared_at(fault: Fault) -> datetime:
    """When a resolved fault cleared; a record stored without the time cleared at its last sighting."""
    return fault.resolved_at or fault.last_seen


def acknowledge(existing: Fault, at: datetime, by: str) -> Fault:
    """An operator took ownership; the first acknowledgement of an episode is the one kept."""
    if existing.acknowledged_at is not None:
        return existing
    state = FaultState.ACKNOWLEDGED if existing.state is FaultState.OPEN else existing.state
    return existing.model_copy(update={"state": state, "acknowledged_at": at, "acknowledged_by": by})


def exclude(existing: Fault, reason: ExclusionReason | None) -> Fault:
    """The operator's NEVI exclusion for this episode's outage (None withdraws it)."""
    return existing.model_copy(update={"excluded_reason": reason})
