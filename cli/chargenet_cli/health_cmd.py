"""`chargenet fleet health`: every charger's connection, connectors and open faults on one screen,
from the operator API (GET /fleet/health, a page of chargers at a time)."""

from __future__ import annotations

import argparse
from typing import Any

from chargenet.domain.fleet_health import SEVERITY_ORDER
from chargenet_cli.operator_api import OperatorApi
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table


def register(commands: argparse._SubParsersAction) -> None:
    fleet = commands.add_parser("fleet", help="the fleet at a glance").add_subparsers(
        dest="fleet_command", required=True
    )
    health = fleet.add_parser("health", help="per charger: online, connectors, open faults")
    health.add_argument("--json", action="store_true")
    health.set_defaults(run=show_health)


def show_health(args: argparse.Namespace) -> str:
    rows = fleet_health(api(args))
    if args.json:
        return as_json(rows)
    return health_table(rows)


def fleet_health(client: OperatorApi) -> list[dict[str, Any]]:
    """Every charger's row (chargenet.domain.fleet_health), by charger id."""
    rows = client.paginate("/fleet/health", action="read the fleet's health")
    return sorted(rows, key=lambda r: str(r["charger_id"]))


def health_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        (
            r["charger_id"],
            r["site_id"] or None,
            "online" if r["online"] else "OFFLINE",
            " ".join(f"{n}:{s}" for n, s in sorted(r["connectors"].items(), key=lambda c: int(c[0]))) or None,
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
