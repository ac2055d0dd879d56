"""`chargenet session list|show|settle|orphans`, `chargenet cdr list|show|credit|export`, `chargenet tag
add|list`, over the operator API (docs/operators.md): listings are followed page by page."""

from __future__ import annotations

import argparse
import csv
import io
import urllib.parse
from datetime import datetime
from decimal import Decimal
from typing import Any

from chargenet.domain.models import TagStatus
from chargenet.services.operator_sessions import EXPORT_COLUMNS
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table


def register(commands: argparse._SubParsersAction) -> None:
    _register_sessions(commands)
    _register_cdrs(commands)
    _register_tags(commands)


def _register_sessions(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("session", help="charging sessions").add_subparsers(
        dest="session_command", required=True
    )
    listing = sub.add_parser("list", help="every session")
    listing.add_argument(
        "--state", help="only sessions in this state (active, stopped, needs_review, billed...)"
    )
    listing.add_argument("--charger", help="only sessions of this charger")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_sessions)
    show = sub.add_parser("show", help="one session with its review reasons")
    show.add_argument("session_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=show_session)
    settle = sub.add_parser("settle", help="settle a session under review: bill a chosen reading, or void it")
    settle.add_argument("session_id")
    choice = settle.add_mutually_exclusive_group(required=True)
    choice.add_argument("--use-reading", type=int, metavar="WH", help="energy register (Wh) to bill up to")
    choice.add_argument("--void", action="store_true", help="bill nothing for this session")
    settle.set_defaults(run=settle_session)
    orphans = sub.add_parser("orphans", help="StopTransactions that matched no session of their charger")
    orphans.add_argument("--json", action="store_true")
    orphans.set_defaults(run=list_orphan_stops)


def _register_cdrs(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("cdr", help="billing records (OCPI 2.2.1 CDRs)").add_subparsers(
        dest="cdr_command", required=True
    )
    listing = sub.add_parser("list", help="every CDR")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_cdrs)
    show = sub.add_parser("show", help="one CDR in OCPI 2.2.1 shape")
    show.add_argument("cdr_id")
    show.set_defaults(run=show_cdr)
    credit = sub.add_parser("credit", help="cancel a CDR with a credit CDR (the CDR itself never changes)")
    credit.add_argument("cdr_id")
    credit.add_argument("--reason", required=True)
    credit.set_defaults(run=credit_cdr)
    export = sub.add_parser("export", help="all CDRs as OCPI JSON, or sessions as CSV")
    export.add_argument("--format", choices=["ocpi", "csv"], default="ocpi")
    export.set_defaults(run=export_cdrs)


def _register_tags(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("tag", help="RFID tags").add_subparsers(dest="tag_command", required=True)
    add = sub.add_parser("add", help="add or update a tag")
    add.add_argument("id_tag")
    add.add_argument(
        "--status",
        choices=[s.value for s in TagStatus if s is not TagStatus.CONCURRENT_TX],
        default=TagStatus.ACCEPTED.value,
    )
    add.add_argument("--max-concurrent", type=int, default=1, help="sessions the tag's plan allows at once")
    add.add_argument("--expires", type=datetime.fromisoformat, help="ISO 8601 with offset")
    add.set_defaults(run=add_tag)
    listing = sub.add_parser("list", help="every tag (ids masked)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_tags)


def _path(*parts: str) -> str:
    """An API path with each id quoted: an id is one path segment whatever it holds."""
    return "/" + "/".join(urllib.parse.quote(part, safe="") for part in parts)


def list_sessions(args: argparse.Namespace) -> str:
    params = {"state": args.state, "charger": args.charger}
    found = api(args).paginate("/sessions", params, action="list sessions")
    sessions = sorted(found, key=lambda s: str(s["started_at"]))
    if args.json:
        return as_json(sessions)
    return sessions_table(sessions)


def sessions_table(sessions: list[dict[str, Any]]) -> str:
    rows = [
        (
            s["session_id"],
            s["charger_id"],
            s["connector_id"],
            s["id_tag"],
            s["state"],
            f"{s['energy_wh'] / 1000:.3f}",
            f"{s['peak_power_w'] / 1000:.1f}",
            round(s["charging_seconds"] / 60),
            round(s["parking_seconds"] / 60),
            f"{datetime.fromisoformat(s['started_at']):%Y-%m-%d %H:%M}",
        )
        for s in sessions
    ]
    headers = [
        "SESSION",
        "CHARGER",
        "PORT",
        "TAG",
        "STATE",
        "KWH",
        "PEAK KW",
        "CHARGE MIN",
        "IDLE MIN",
        "START",
    ]
    return table(headers, rows)


def show_session(args: argparse.Namespace) -> str:
    view = api(args).get(_path("sessions", args.session_id), action="show sessions")
    if args.json:
        return as_json(view)
    return "\n".join(f"{key}: {value}" for key, value in view.items())


def settle_session(args: argparse.Namespace) -> str:
    choice = {"void": True} if args.void else {"use_reading_wh": args.use_reading}
    settled = api(args).post(_path("sessions", args.session_id, "settle"), choice, action="settle sessions")
    return f"session {settled['session_id']} settled: {settled['state']}, {settled['energy_wh']} Wh to bill"


def cdr_row(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        record["cdr_id"],
        record["charger_id"],
        record["connector_id"],
        f"{datetime.fromisoformat(record['start_date_time']):%Y-%m-%d %H:%M}",
        f"{Decimal(record['energy_wh']) / 1000:.3f}",
        f"{record['total_excl_vat']} {record['currency']}",
        f"{record['total_incl_vat']} {record['currency']}",
    )


def list_cdrs(args: argparse.Namespace) -> str:
    found = api(args).paginate("/cdrs", action="list CDRs")
    records = sorted(found, key=lambda r: datetime.fromisoformat(r["start_date_time"]))
    if args.json:
        return as_json([r["ocpi"] for r in records])
    return table(
        ["CDR", "CHARGER", "PORT", "START", "KWH", "EXCL VAT", "INCL VAT"], [cdr_row(r) for r in records]
    )


def show_cdr(args: argparse.Namespace) -> str:
    return as_json(api(args).get(_path("cdrs", args.cdr_id), action="show CDRs")["ocpi"])


def credit_cdr(args: argparse.Namespace) -> str:
    credit = api(args).post(
        _path("cdrs", args.cdr_id, "credit"), {"reason": args.reason}, action="credit CDRs"
    )
    return f"credit record {credit['cdr_id']}: {credit['total_incl_vat']} {credit['currency']} incl. VAT"


def list_orphan_stops(args: argparse.Namespace) -> str:
    orphans = list(api(args).paginate("/sessions/orphans", action="list orphan stops"))
    if args.json:
        return as_json(orphans)
    return table(
        ["CHARGER", "TRANSACTION", "RECEIVED"],
        [(o["charger_id"], o["transaction_id"], o["received_at"]) for o in orphans],
    )


def export_cdrs(args: argparse.Namespace) -> str:
    """The export assembled from the API's pages, oldest CDR first."""
    pages = api(args).paginate("/cdrs/export", {"format": args.format}, action="export CDRs")
    if args.format == "ocpi":
        return as_json(sorted(pages, key=lambda cdr: datetime.fromisoformat(cdr["start_date_time"])))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(sorted(pages, key=lambda row: datetime.fromisoformat(row["start"])))
    return out.getvalue().rstrip("\r\n")


def add_tag(args: argparse.Namespace) -> str:
    """The tag id goes in the request body only, never in a URL; it comes back masked."""
    body = {
        "id_tag": args.id_tag,
        "status": args.status,
        "max_concurrent_sessions": args.max_concurrent,
        "expires_at": args.expires.isoformat() if args.expires else None,
    }
    tag = api(args).post("/tags", body, action="add tags")
    return (
        f"tag {tag['id_tag']}: {tag['status']}, up to {tag['max_concurrent_sessions']} concurrent session(s)"
    )


def list_tags(args: argparse.Namespace) -> str:
    tags = sorted(api(args).paginate("/tags", action="list tags"), key=lambda t: str(t["id_tag"]))
    if args.json:
        return as_json(tags)
    return table(
        ["TAG", "STATUS", "MAX", "ACTIVE", "EXPIRES"],
        [
            (t["id_tag"], t["status"], t["max_concurrent_sessions"], t["active_sessions"], t["expires_at"])
            for t in tags
        ],
    )
