"""`chargenet scenario run FILE`: a scripted fleet run with injected faults on the local stack.

Provisions the scenario's chargers (reusing those already registered), registers its tags,
runs the sessions and the faults on simulated chargers over mTLS (chargenet_shim.sim.scenario_run),
waits for the operators' alerts, and prints each injected fault against the alert it got.
The file format is in chargenet_shim/sim/scenario.py; examples are in scenarios/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.output import as_json, table
from chargenet_local.operator_sign_in import signed_in
from chargenet_local.stack import StackState
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.sim.fleet import SessionFailure
from chargenet_shim.sim.scenario import Scenario, ScenarioError, injection_label, load_scenario
from chargenet_shim.sim.scenario_run import Injected, ScenarioRun, run_scenario
from chargenet_shim.sim.scoring import Observation, Outcome, match

POLL_S = 0.5
# Alerts that page someone about a fault; a resolution is not a detection.
PAGING_KINDS = ("raised", "flapping")

Say = Callable[[str], None]


def register(commands: argparse._SubParsersAction) -> None:
    scenario = commands.add_parser(
        "scenario", help="scripted fleet runs with injected faults"
    ).add_subparsers(dest="scenario_command", required=True)
    run = scenario.add_parser(
        "run", help="run a scenario file on the local stack; print injected faults against alerts"
    )
    run.add_argument("file", type=Path, help="scenario file (YAML or JSON; see scenarios/)")
    run.add_argument(
        "--settle-s", type=float, help="real seconds to wait for alerts after the run (default: the file's)"
    )
    run.add_argument("--json", action="store_true")
    run.set_defaults(run=run_scenario_file)


def run_scenario_file(args: argparse.Namespace) -> str:
    scenario = read(args.file, args.settle_s)
    state = local_env.connect(args.home)
    signed_in(state)  # its chargers are provisioned through the operator API
    report = execute(state, scenario, stderr_stepper())
    return as_json(report.as_dict()) if args.json else report.as_text()


def read(path: Path, settle_s: float | None = None) -> Scenario:
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from exc
    if settle_s is None:
        return scenario
    if settle_s < 0:
        raise UsageError("--settle-s must not be negative")
    return scenario.model_copy(update={"settle_s": settle_s})


@dataclass(frozen=True)
class ScenarioReport:
    scenario: Scenario
    run: ScenarioRun
    settled_at: dt.datetime  # real time the alerts were last read, the fleet still connected
    outcomes: list[Outcome]
    false_alerts: list[Observation]
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "speed": self.scenario.speed,
            "started_at": self.run.started_at.isoformat(),
            "settled_at": self.settled_at.isoformat(),
            "heartbeat_interval_s": self.run.heartbeat_interval_s,
            "broker_rtt_ms": {"median": _median(self.run.rtt_ms), "samples": len(self.run.rtt_ms)},
            "injections": [_outcome_dict(o, self.run.started_at) for o in self.outcomes],
            "false_alerts": [_observation_dict(o) for o in self.false_alerts],
            "sessions": _sessions_dict(self.run),
            "notes": self.notes,
        }

    def as_text(self) -> str:
        rtt = _median(self.run.rtt_ms)
        lines = [
            f"scenario {self.scenario.name}: {self.scenario.chargers.count} chargers, "
            f"{len(self.scenario.sessions)} sessions, {len(self.outcomes)} injections at {self.scenario.speed:g}x; "
            f"broker round trip {'-' if rtt is None else f'{rtt:.1f} ms'} (median Heartbeat)",
            "",
            table(
                ["AT S", "CHARGER", "INJECTED", "EXPECTS", "ALERT", "AFTER S"],
                [_outcome_row(o) for o in self.outcomes],
            ),
        ]
        if self.false_alerts:
            lines += ["", f"false alerts: {len(self.false_alerts)}"]
            lines += [f"  {o.at:%H:%M:%S} {o.what}" for o in self.false_alerts]
        else:
            lines += ["", "false alerts: none"]
        failed = [o for o in self.run.sessions if isinstance(o, SessionFailure)]
        lines.append(f"sessions: {len(self.run.sessions) - len(failed)} completed, {len(failed)} failed")
        lines += [f"  {f.charger_id} connector {f.connector_id}: {f.error}" for f in failed]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def execute(
    state: StackState, scenario: Scenario, say: Say, while_up: Callable[[], None] | None = None
) -> ScenarioReport:
    """Run `scenario` on the running stack and hold the alerts operators got against what it injected.

    `while_up` runs once the alerts are in, before the scenario's chargers disconnect.
    """
    say(f"scenario {scenario.name}: provisioning {scenario.chargers.count} chargers")
    credentials, reused = prepare(state, scenario)
    inbox = _Inbox(state, since=dt.datetime.now(dt.UTC))
    say(f"running at {scenario.speed:g}x: sessions and {len(scenario.injections)} injected faults")

    async def settle(injected: Sequence[Injected]) -> None:
        say(f"run over; waiting up to {scenario.settle_s:g} s for alerts")
        await inbox.settle(injected, scenario.settle_s)
        if while_up is not None:
            await asyncio.to_thread(while_up)

    run = asyncio.run(run_scenario(scenario, credentials, hold=settle, on_progress=_progress(say)))
    assert inbox.read_at is not None, "run_scenario awaits the hold"
    outcomes, false_alerts = match(run.injected, inbox.alerts)
    notes = []
    if reused:
        notes.append(
            f"{len(reused)} chargers were registered before this run ({', '.join(reused)}): "
            "faults an earlier run left open are not alerted again"
        )
    return ScenarioReport(scenario, run, inbox.read_at, outcomes, false_alerts, notes)


@dataclass
class _Inbox:
    """The paging alerts operators got since `since`, as last read while the scenario's fleet was up."""

    state: StackState
    since: dt.datetime
    alerts: list[Observation] = field(default_factory=list)
    read_at: dt.datetime | None = None
    # fault id -> (charger, fault kind, code): a fault's identity never changes.
    _faults: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    async def settle(self, injected: Sequence[Injected], settle_s: float) -> None:
        """Read until every injection that expects an alert has one, or `settle_s` is over.

        Awaited before the chargers disconnect: once they leave, the backend rightly sees them
        offline, which is no alert about the scenario.
        """
        deadline = time.monotonic() + settle_s
        while True:
            self.read_at = dt.datetime.now(dt.UTC)
            self.alerts = await asyncio.to_thread(self._read)
            if time.monotonic() >= deadline or _all_alerted(injected, self.alerts):
                return
            await asyncio.sleep(POLL_S)

    def _read(self) -> list[Observation]:
        from chargenet_local.alert_sink import read_inbox

        observations = []
        for alert in read_inbox(Path(self.state.home)):
            received = dt.datetime.fromisoformat(alert["received_at"])
            attributes = alert["attributes"]
            if received >= self.since and attributes.get("kind") in PAGING_KINDS:
                charger_id, fault_kind, code = self._fault(attributes.get("fault_id", ""))
                observations.append(Observation(received, charger_id, fault_kind, code, alert["subject"]))
        return observations

    def _fault(self, fault_id: str) -> tuple[str, str, str]:
        from chargenet.adapters.faults_dynamodb import DynamoFaultStore

        if fault_id not in self._faults:
            stored = DynamoFaultStore().get(fault_id)
            if stored is None:
                # Not stored (yet): an alert about nothing the scenario can explain.
                return "", "unknown", ""
            fault = stored[0]
            self._faults[fault_id] = (fault.charger_id, fault.kind.value, fault.code)
        return self._faults[fault_id]


def prepare(state: StackState, scenario: Scenario) -> tuple[list[ChargerCredentials], list[str]]:
    """The chargers' credentials, provisioning those not registered yet, and the ids reused."""
    from chargenet.adapters.dynamodb import DynamoChargerRegistry
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory
    from chargenet.domain.models import TagStatus
    from chargenet_cli.provisioning import charger_dir, provision

    registry, fleet = DynamoChargerRegistry(), scenario.chargers
    reused = [charger_id for charger_id in fleet.charger_ids if registry.get(charger_id) is not None]
    for charger_id in fleet.charger_ids:
        if charger_id not in reused:
            provision(state, charger_id, site_id=fleet.site, rated_power_w=round(fleet.rated_kw * 1000))
    tags = DynamoTagDirectory()
    for id_tag, sessions in scenario.tags().items():
        tags.put(id_tag, TagStatus.ACCEPTED, max_concurrent=sessions, expires_at=None)
    try:
        credentials = [ChargerCredentials.load(charger_dir(state, c)) for c in fleet.charger_ids]
    except OSError as exc:
        raise CliError(
            f"a registered scenario charger has no credentials in this stack's home: {exc}"
        ) from exc
    return credentials, reused


def _all_alerted(injected: Sequence[Injected], alerts: list[Observation]) -> bool:
    outcomes, _ = match(injected, alerts)
    return all(o.observation is not None for o in outcomes if o.expected and o.injected.error is None)


def _progress(say: Say) -> Callable[[str, str], None]:
    def progress(charger_id: str, stage: str) -> None:
        if stage.endswith((" done", "session failed")) or stage == "failed":
            say(f"  {charger_id} {stage}")

    return progress


def _outcome_row(outcome: Outcome) -> tuple[Any, ...]:
    fault, alert = outcome.injected, outcome.observation
    if fault.error is not None:
        alert_text = f"not injected: {fault.error}"
    else:
        alert_text = alert.what if alert else ("-" if outcome.expected is None else "none")
        if outcome.repeats:
            alert_text += f" (+{len(outcome.repeats)} more)"
    return (
        f"{fault.injection.at_s:g}",
        fault.charger_id,
        injection_label(fault.injection),
        outcome.expected.describe() if outcome.expected else "nothing",
        alert_text,
        None if outcome.latency_s is None else f"{outcome.latency_s:.1f}",
    )


def _outcome_dict(outcome: Outcome, started_at: dt.datetime) -> dict[str, Any]:
    fault = outcome.injected
    return {
        "index": fault.index,
        "label": injection_label(fault.injection),
        "charger_id": fault.charger_id,
        "injection": fault.injection.model_dump(mode="json"),
        "started_at": fault.started_at.isoformat(),
        "started_after_s": round((fault.started_at - started_at).total_seconds(), 3),
        "ended_at": fault.ended_at.isoformat() if fault.ended_at else None,
        "error": fault.error,
        "expects": outcome.expected.describe() if outcome.expected else None,
        "alert": _observation_dict(outcome.observation) if outcome.observation else None,
        "repeats": [_observation_dict(o) for o in outcome.repeats],
        "latency_s": None if outcome.latency_s is None else round(outcome.latency_s, 3),
    }


def _observation_dict(observation: Observation) -> dict[str, Any]:
    return {
        "at": observation.at.isoformat(),
        "charger_id": observation.charger_id,
        "fault_kind": observation.fault_kind,
        "code": observation.code,
        "subject": observation.what,
    }


def _sessions_dict(run: ScenarioRun) -> dict[str, Any]:
    failed = [o for o in run.sessions if isinstance(o, SessionFailure)]
    return {
        "completed": len(run.sessions) - len(failed),
        "failed": [
            {"charger_id": f.charger_id, "connector_id": f.connector_id, "error": f.error} for f in failed
        ],
    }


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def stderr_stepper() -> Say:
    """Progress on stderr: stdout is the report (and JSON with --json)."""
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    return say
