"""`chargenet fleet health`: every charger's connection, connectors and open faults on one screen."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from chargenet_cli import local_env
from chargenet_cli.output import as_json, table

SEVERITY_ORDER = ("safety_critical", "major", "minor", "info")


def register(commands: argparse._SubParsersAction) -> None:
    fleet = commands.add_parser("fleet", help="the fleet at a glance").add_subparsers(
        dest="fleet_command", required=True
    )
    health = fleet.add_parser("health", help="per charger: online, connectors, open faults")
    health.add_argument("--json", action="store_true")
    health.set_defaults(run=show_health)


def show_health(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    rows = fleet_health()
    if args.json:
        return as_json(rows)
    return health_table(rows)


def fleet_health() -> list[dict[str, Any]]:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry
    from chargenet.adapters.faults_dynamodb import DynamoFaultStore

    registry = DynamoChargerRegistry()
    open_faults = [f for f in DynamoFaultStore().list() if f.state.value != "resolved"]
    rows = []
    for charger in registry.list():
        faults = sorted(
            (f for f in open_faults if f.charger_id == charger.charger_id),
            key=lambda f: SEVERITY_ORDER.index(f.severity.value),
        )
        rows.append(
            {
                "charger_id": charger.charger_id,
                "site_id": charger.site_id,
                "online": charger.online,
                "connectors": {c.connector_id: c.status for c in registry.connectors(charger.charger_id)},
                "open_faults": dict(Counter(f.severity.value for f in faults)),
                "worst": f"{faults[0].code} (connector {faults[0].connector_id})" if faults else None,
            }
        )
    return rows


def health_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        (
            r["charger_id"],
            r["site_id"] or None,
            "online" if r["online"] else "OFFLINE",
            " ".join(f"{n}:{s}" for n, s in sorted(r["connectors"].items())) or None,
            _counts(r["open_faults"]),
            r["worst"],
        )
        for r in rows
    ]
    healthy = sum(1 for r in rows if r["online"] and not r["open_faults"])
    summary = f"{healthy}/{len(rows)} chargers online without open faults"
    return table(["CHARGER", "SITE", "LINK", "CONNECTORS", "OPEN FAULTS", "WORST"], lines) + "\n" + summary


def _counts(by_severity: dict[str, int]) -> str | None:
    parts = [f"{by_severity[s]} {s.replace('_', '-')}" for s in SEVERITY_ORDER if s in by_severity]
    return ", ".join(parts) or None
