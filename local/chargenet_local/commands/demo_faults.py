"""The demo's fault part: scripted faults reach operators as alerts, then the fleet's health.

Runs scenarios/demo.yaml (a ground fault, an outage, an overreading meter and a healthy
charger) while the demo's own fleet is still connected, so that only the injected faults
are news, and prints what the on-call received (the local stand-in for the alert e-mails) and
the health of every charger (through the operator API, as the signed-in admin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from chargenet_local.stack import StackState, default_template

DEMO_SCENARIO = Path("scenarios") / "demo.yaml"
# The template's defaults (2 min to reconnect, majors paged after 10 min, the fault sweep
# every minute) would outlast the demo.
DEMO_PARAMETERS = "OfflineGraceSeconds=5 MajorAlertDelaySeconds=10"
DEMO_SCHEDULE_EVERY_S = "5"


def run_faults(state: StackState, say: Callable[[str], None]) -> str:
    from chargenet_cli import operator_profile
    from chargenet_cli.fault_cmd import alerts_table
    from chargenet_cli.health_cmd import fleet_health, health_table
    from chargenet_cli.operator_api import for_profile
    from chargenet_local.alert_sink import describe, read_inbox
    from chargenet_local.commands import scenario_cmd

    since = dt.datetime.now(dt.UTC)
    scenario = scenario_cmd.read(default_template().parent / DEMO_SCENARIO)
    health: list[str] = []
    client = for_profile(operator_profile.local_profile(Path(state.home)))
    report = scenario_cmd.execute(
        state, scenario, say, lambda: health.append(health_table(fleet_health(client)))
    )
    received = [
        describe(alert)
        for alert in read_inbox(Path(state.home))
        if dt.datetime.fromisoformat(alert["received_at"]) >= since
    ]
    return "\n\n".join(
        [
            report.as_text(),
            f"operators received {len(received)} alerts:\n" + alerts_table(received),
            "fleet health, the scenario's chargers still connected:\n" + health[0],
        ]
    )
