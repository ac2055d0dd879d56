"""`chargenet report uptime`: NEVI uptime per connector (port), from the operator API
(GET /reports/uptime, a page of chargers at a time).

The figures are chargenet.domain.uptime's, computed by the API from the availability history
(docs/faults.md); the CLI checks the month, prints and formats. A month in progress counts only up
to now.
"""

from __future__ import annotations

import argparse
import csv
import io
from datetime import datetime

from chargenet.domain.clock import utc_now
from chargenet.domain.uptime import ReportPeriod, UptimeReport, report_period
from chargenet_cli.errors import UsageError
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table

CSV_FIELDS = [
    "charger_id",
    "connector_id",
    "period",
    "outage_min",
    "excluded_min",
    "uptime_percent",
    "meets_97",
]


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


def show_uptime(args: argparse.Namespace) -> str:
    now = utc_now()
    try:
        period = report_period(args.month, args.twelve_months, now)
    except ValueError as error:
        raise UsageError(f"--month {error}") from None
    params = {"month": args.month, "twelve_months": "true" if args.twelve_months else None}
    found = api(args).paginate("/reports/uptime", params, action="read reports")
    rows = sorted(
        (UptimeReport.model_validate(row) for row in found), key=lambda r: (r.charger_id, r.connector_id)
    )
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
