"""`chargenet report uptime`: NEVI uptime per connector (port) from the availability history.

Every connector's statuses and every fault episode come from HistoryTable, the faults as
they stand now from FaultsTable (they win over their archived copy); the arithmetic is
chargenet.domain.uptime's. A month in progress counts only up to now.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
from collections.abc import Iterable
from datetime import datetime

from chargenet.domain.clock import utc_now
from chargenet.domain.faults import Fault
from chargenet.domain.uptime import (
    ReportPeriod,
    StatusPoint,
    UptimeReport,
    month_period,
    previous_12_months,
    uptime_report,
)
from chargenet_cli import local_env
from chargenet_cli.errors import UsageError
from chargenet_cli.output import as_json, table

_MONTH = re.compile(r"([12]\d{3})-(0[1-9]|1[0-2])")
CSV_FIELDS = [
    "charger_id",
    "connector_id",
    "period",
    "outage_min",
    "excluded_min",
    "uptime_percent",
    "meets_97",
]

Port = tuple[str, int]


def register(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("report", help="regulatory reports").add_subparsers(
        dest="report_command", required=True
    )
    uptime = sub.add_parser("uptime", help="NEVI uptime per connector: outage, exclusions, the 97%% bar")
    uptime.add_argument("--month", required=True, help="YYYY-MM")
    uptime.add_argument(
        "--twelve-months",
        action="store_true",
        help="the twelve months ending with --month (NEVI's window) instead of the month alone",
    )
    output = uptime.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--csv", action="store_true")
    uptime.set_defaults(run=show_uptime)


def report_period(month: str, twelve_months: bool, now: datetime) -> ReportPeriod:
    match = _MONTH.fullmatch(month)
    if not match:
        raise UsageError(f"--month must be YYYY-MM (e.g. 2026-10), not {month!r}")
    year, number = int(match[1]), int(match[2])
    if month_period(year, number).start > now:
        raise UsageError(f"{month} has not started yet")
    return previous_12_months(year, number) if twelve_months else month_period(year, number)


def latest_episodes(archived: Iterable[Fault], current: Iterable[Fault]) -> list[Fault]:
    """Each episode once; the fault record as it stands now wins over its archived copy."""
    episodes = {(f.fault_id, f.episode): f for f in archived}
    episodes.update({(f.fault_id, f.episode): f for f in current})
    return list(episodes.values())


def _report_inputs(period: ReportPeriod) -> tuple[list[StatusPoint], list[Fault], list[Port]]:
    """Statuses, fault episodes, and the ports known by the end of the period."""
    from chargenet.adapters.dynamodb import DynamoChargerRegistry
    from chargenet.adapters.faults_dynamodb import DynamoFaultStore
    from chargenet.adapters.history_dynamodb import DynamoHistory

    registry, history, faults = DynamoChargerRegistry(), DynamoHistory(), DynamoFaultStore()
    statuses: list[StatusPoint] = []
    episodes: list[Fault] = []
    ports: list[Port] = []
    for charger in registry.list():
        charger_id = charger.charger_id
        for connector in registry.connectors(charger_id):
            timeline = history.timeline(charger_id, connector.connector_id, period.start, period.end)
            statuses += timeline
            # A connector that first reported after the period did not exist in it: no row.
            if timeline and connector.connector_id > 0:
                ports.append((charger_id, connector.connector_id))
        current = [fault for fault, _ in faults.of_charger(charger_id)]
        episodes += latest_episodes(history.episodes(charger_id), current)
    return statuses, episodes, ports


def show_uptime(args: argparse.Namespace) -> str:
    now = utc_now()
    period = report_period(args.month, args.twelve_months, now)
    local_env.connect(args.home)
    statuses, episodes, ports = _report_inputs(period)
    rows = uptime_report(period, statuses, episodes, as_of=now, connectors=ports)
    if args.json:
        return as_json([row.model_dump(mode="json") for row in rows])
    if args.csv:
        return as_csv(rows)
    return as_table(period, rows, now)


def as_csv(rows: list[UptimeReport]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        fields = row.model_dump(mode="json")
        writer.writerow({**fields, "meets_97": "true" if row.meets_97 else "false"})
    return out.getvalue().rstrip("\n")


def as_table(period: ReportPeriod, rows: list[UptimeReport], now: datetime) -> str:
    until = f" (in progress, up to {now:%Y-%m-%d %H:%M} UTC)" if now < period.end else ""
    body = table(
        ["CHARGER", "PORT", "OUTAGE MIN", "EXCLUDED MIN", "UPTIME %", "MEETS 97%"],
        [
            (
                r.charger_id,
                r.connector_id,
                r.outage_min,
                r.excluded_min,
                r.uptime_percent,
                "yes" if r.meets_97 else "no",
            )
            for r in rows
        ],
    )
    return f"NEVI uptime {period.label}{until}\n{body}"
