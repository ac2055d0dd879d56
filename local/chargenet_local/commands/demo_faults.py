"""The demo's fault part: scripted faults reach operators as alerts, then the fleet's health.

Runs scenarios/demo.yaml (a ground fault, an outage, an overreading meter and a healthy
charger) while the demo's own fleet is still connected, so that only the injected faults
are news, and prints what the on-call received (the local stand-in for the alert e-mails) and
the health of every charger (through the operator API, as the signed-in admin).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chargenet_local.stack import StackState, default_template

DEMO_SCENARIO = Path("scenarios") / "demo.yaml"
# The template's defaults (2 min to reconnect, majors paged after 10 min, the fault sweep
# every minute) would outlast the demo.
DEMO_PARAMETERS = "OfflineGraceSeconds=5 MajorAlertDelaySeconds=10"
DEMO_SCHEDULE_EVERY_S = "5"


def run_faults(state: StackState, fleet_ids: Sequence[str], say: Callable[[str], None]) -> str:
    """The scenario's report, the alerts about its chargers and the health of those and of the fleet.

    The demo's other scenes run at the same time on chargers of their own (a refused firmware
    image is a major fault, chargers leaving are outages): their alerts are theirs, not this
    scenario's, so neither its false alerts nor what operators received count them.
    """
    from chargenet_cli import operator_profile
    from chargenet_cli.fault_cmd import alerts_table
    from chargenet_cli.health_cmd import fleet_health, health_table
    from chargenet_cli.operator_api import for_profile
    from chargenet_local.alert_sink import describe
    from chargenet_local.commands import scenario_cmd

    since = dt.datetime.now(dt.UTC)
    scenario = scenario_cmd.read(default_template().parent / DEMO_SCENARIO)
    own = set(scenario.chargers.charger_ids)
    shown = own | set(fleet_ids)
    health: list[str] = []
    client = for_profile(operator_profile.local_profile(Path(state.home)))

    def fleet_still_connected() -> None:
        rows = [row for row in fleet_health(client) if row["charger_id"] in shown]
        health.append(health_table(rows))

    report = scenario_cmd.execute(state, scenario, say, fleet_still_connected)
    # An alert about no stored fault ("" charger) stays a false alert: nothing explains it.
    report = dataclasses.replace(
        report, false_alerts=[o for o in report.false_alerts if o.charger_id in own or not o.charger_id]
    )
    received = [describe(alert) for alert in _alerts_about(Path(state.home), own, since)]
    return "\n\n".join(
        [
            report.as_text(),
            f"operators received {len(received)} alerts about the scenario's chargers:\n"
            + alerts_table(received),
            "fleet health, the scenario's chargers still connected:\n" + health[0],
        ]
    )


def _alerts_about(home: Path, charger_ids: set[str], since: dt.datetime) -> list[dict[str, Any]]:
    """The fault alerts in the local inbox since `since` whose fault is on one of these chargers."""
    from chargenet.adapters.faults_dynamodb import DynamoFaultStore
    from chargenet_local.alert_sink import read_inbox

    faults = DynamoFaultStore()
    chargers: dict[str, str | None] = {}  # fault id -> its charger: a fault's charger never changes

    def charger_of(fault_id: str) -> str | None:
        if fault_id not in chargers:
            stored = faults.get(fault_id) if fault_id else None
            chargers[fault_id] = stored[0].charger_id if stored else None
        return chargers[fault_id]

    return [
        alert
        for alert in read_inbox(home)
        if dt.datetime.fromisoformat(alert["received_at"]) >= since
        and charger_of(alert.get("attributes", {}).get("fault_id", "")) in charger_ids
    ]
