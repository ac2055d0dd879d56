"""`chargenet session list|show|settle`, `chargenet cdr list|show|export`, `chargenet tag add|list`."""

from __future__ import annotations

import argparse
import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import Any

from chargenet.domain.models import SessionRecord, TagStatus, mask_tag
from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
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


def _sessions() -> Any:
    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore

    return DynamoSessionStore()


def _cdrs() -> Any:
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore

    return DynamoCdrStore()


def session_view(session: SessionRecord) -> dict[str, Any]:
    view = session.model_dump(mode="json", exclude={"id_tag", "tariff_json"})
    view["id_tag"] = session.masked_tag
    return view


def list_sessions(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    sessions = [s for s in _sessions().list() if args.state in (None, s.state)]
    if args.json:
        return as_json([session_view(s) for s in sessions])
    return sessions_table(sessions)


def sessions_table(sessions: list[SessionRecord]) -> str:
    rows = [
        (
            s.session_id,
            s.charger_id,
            s.connector_id,
            s.masked_tag,
            s.state,
            f"{s.energy_wh / 1000:.3f}",
            f"{s.peak_power_w / 1000:.1f}",
            round(s.charging_seconds / 60),
            round(s.parking_seconds / 60),
            f"{s.started_at:%Y-%m-%d %H:%M}",
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
    local_env.connect(args.home)
    session = _sessions().get(args.session_id)
    if session is None:
        raise CliError(f"no session {args.session_id}")
    view = session_view(session)
    if args.json:
        return as_json(view)
    return "\n".join(f"{key}: {value}" for key, value in view.items())


def settle_session(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    from chargenet.domain.clock import utc_now
    from chargenet.domain.sessions import EventKind, SessionEvent
    from chargenet.services.ocpp.session_log import refresh

    store = _sessions()
    session = store.get(args.session_id)
    if session is None:
        raise CliError(f"no session {args.session_id}")
    if session.state != "needs_review":
        raise CliError(f"session {args.session_id} is {session.state}, not needs_review")
    if args.use_reading is not None and args.use_reading < 0:
        raise UsageError("--use-reading must be a register value in Wh (0 or more)")
    event = SessionEvent(
        kind=EventKind.SETTLE, at=utc_now(), settle_reading_wh=args.use_reading, void=args.void
    )
    store.append(session.session_id, event)
    facts = refresh(store, session)
    return f"session {session.session_id} settled: {facts.state.value}, {facts.energy_wh} Wh to bill"


def cdr_row(record: Any) -> tuple:
    return (
        record.cdr_id,
        record.charger_id,
        record.connector_id,
        f"{record.start_date_time:%Y-%m-%d %H:%M}",
        f"{Decimal(record.energy_wh) / 1000:.3f}",
        f"{record.total_excl_vat} {record.currency}",
        f"{record.total_incl_vat} {record.currency}",
    )


def list_cdrs(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    records = _cdrs().list()
    if args.json:
        return as_json([r.ocpi for r in records])
    return table(
        ["CDR", "CHARGER", "PORT", "START", "KWH", "EXCL VAT", "INCL VAT"], [cdr_row(r) for r in records]
    )


def show_cdr(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    record = _cdrs().get(args.cdr_id)
    if record is None:
        raise CliError(f"no CDR {args.cdr_id}")
    return as_json(record.ocpi)


def credit_cdr(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    from chargenet.domain.billing import credit_record
    from chargenet.domain.clock import utc_now

    cdrs = _cdrs()
    original = cdrs.get(args.cdr_id)
    if original is None:
        raise CliError(f"no CDR {args.cdr_id}")
    if original.credit_reference_id is not None:
        raise CliError(f"{args.cdr_id} is itself a credit record")
    credit = credit_record(original, args.reason, utc_now())
    if not cdrs.create(credit):
        raise CliError(f"CDR {args.cdr_id} already has a credit record ({credit.cdr_id})")
    return f"credit record {credit.cdr_id}: {credit.total_incl_vat} {credit.currency} incl. VAT"


def list_orphan_stops(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    orphans = [
        {
            "charger_id": o.charger_id,
            "transaction_id": int(o.transaction_id),
            "received_at": o.received_at.isoformat(),
            "payload": o.payload,
        }
        for o in _sessions().orphan_stops()
    ]
    if args.json:
        return as_json(orphans)
    return table(
        ["CHARGER", "TRANSACTION", "RECEIVED"],
        [(o["charger_id"], o["transaction_id"], o["received_at"]) for o in orphans],
    )


def export_cdrs(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    records = _cdrs().list()
    if args.format == "ocpi":
        return as_json([r.ocpi for r in records])
    sessions = {s.session_id: s for s in _sessions().list()}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["session", "charger", "port", "start", "end", "energy_kwh", "peak_kw", "cost_incl_vat", "currency"]
    )
    for r in records:
        peak = sessions[r.session_id].peak_power_w if r.session_id in sessions else 0
        writer.writerow(
            [
                r.session_id,
                r.charger_id,
                r.connector_id,
                r.start_date_time.isoformat(),
                r.end_date_time.isoformat(),
                f"{Decimal(r.energy_wh) / 1000:.3f}",
                f"{Decimal(peak) / 1000:.1f}",
                r.total_incl_vat,
                r.currency,
            ]
        )
    return out.getvalue().rstrip("\n")


def _tags() -> Any:
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory

    return DynamoTagDirectory()


def add_tag(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    if not 1 <= len(args.id_tag) <= 20:
        raise UsageError("an OCPP 1.6 idTag has 1 to 20 characters")
    if args.max_concurrent < 1:
        raise UsageError("--max-concurrent must be at least 1")
    if args.expires is not None and args.expires.tzinfo is None:
        raise UsageError("--expires needs a time zone offset, e.g. 2027-01-01T00:00:00+00:00")
    _tags().put(args.id_tag, TagStatus(args.status), args.max_concurrent, args.expires)
    return f"tag {mask_tag(args.id_tag)}: {args.status}, up to {args.max_concurrent} concurrent session(s)"


def list_tags(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    tags = [
        {
            "id_tag": mask_tag(t.id_tag),
            "status": t.status,
            "max_concurrent_sessions": int(t.max_concurrent_sessions),
            "expires_at": t.expires_at.isoformat() if t.expires_at else None,
            "active_sessions": len(t.active_sessions or ()),
        }
        for t in _tags().list()
    ]
    if args.json:
        return as_json(tags)
    return table(
        ["TAG", "STATUS", "MAX", "ACTIVE", "EXPIRES"],
        [
            (t["id_tag"], t["status"], t["max_concurrent_sessions"], t["active_sessions"], t["expires_at"])
            for t in tags
        ],
    )
