"""`chargenet payment list|show|settle`, `chargenet refund`, `chargenet qr`, `chargenet reconcile`:
through the operator API (/ops/v1, chargenet.services.operator_payments), signed in
(`chargenet login`), so what operators see and do is what the functions do, and is audited.
"""

from __future__ import annotations

import argparse
import io
import urllib.parse
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.operator_api import OperatorApi
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table

FAILED = "failed"


def register(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("payment", help="drivers' payments (pay link)").add_subparsers(
        dest="payment_command", required=True
    )
    listing = sub.add_parser("list", help="every payment")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_payments)
    show = sub.add_parser("show", help="one payment: state, amounts, session, CDR total, Stripe ids")
    show.add_argument("payment_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=show_payment)
    settle = sub.add_parser(
        "settle", help="settle a failed payment: capture its CDR total (or release the hold with --cancel)"
    )
    settle.add_argument("session_id")
    settle.add_argument("--cancel", action="store_true", help="release the hold (refund a prepay) instead")
    settle.set_defaults(run=settle_payment)

    refund = commands.add_parser("refund", help="refund a paid session, in part or in full")
    refund.add_argument("session_id")
    refund.add_argument("--amount", help="in major units (12.50); default: all that is left of the capture")
    refund.set_defaults(run=refund_session)

    qr = commands.add_parser("qr", help="the QR code of a connector's pay link")
    qr.add_argument("charger_id")
    qr.add_argument("connector_id", type=int)
    kind = qr.add_mutually_exclusive_group()
    kind.add_argument("--svg", action="store_true")
    kind.add_argument("--png", action="store_true")
    qr.add_argument("--output", type=Path, help="write to FILE (default: the terminal)")
    qr.set_defaults(run=print_qr)

    reconcile = commands.add_parser(
        "reconcile", help="CDRs paid through the link whose Stripe state does not match (exit 1 if any)"
    )
    reconcile.add_argument("--since", required=True, type=_date, help="ISO date or date-time (UTC if naive)")
    reconcile.add_argument("--json", action="store_true")
    reconcile.set_defaults(run=reconcile_cdrs)


# ------------------------------------------------------------------ list and show
def all_payments(client: OperatorApi) -> list[dict[str, Any]]:
    return sorted(client.paginate("/payments", action="list payments"), key=lambda v: v["created_at"])


def list_payments(args: argparse.Namespace) -> str:
    views = all_payments(api(args))
    if args.json:
        return as_json(views)
    keys = ["payment_id", "state", "charger_id", "connector_id", "held", "captured", "refunded"]
    rows = [[v[k] for k in keys] + [v["session_id"], v["cdr_total_incl_vat"]] for v in views]
    headers = ["PAYMENT", "STATE", "CHARGER", "PORT", "HELD", "CAPTURED", "REFUNDED", "SESSION", "CDR TOTAL"]
    failed = sum(v["state"] == FAILED for v in views)
    hint = f"\n{failed} failed: {SETTLE_HINT}" if failed else ""
    return table(headers, rows) + hint


def show_payment(args: argparse.Namespace) -> str:
    view = api(args).get(f"/payments/{_segment(args.payment_id)}", action="show payments")
    if args.json:
        return as_json(view)
    lines = [f"{key}: {'-' if value is None else value}" for key, value in view.items()]
    if view["state"] == FAILED:
        lines.append(f"hint: {SETTLE_HINT}")
    return "\n".join(lines)


# ------------------------------------------------------------------ settling a failed payment
SETTLE_HINT = "settle with `chargenet payment settle SESSION` (or release the hold with --cancel)"


def settle_payment(args: argparse.Namespace) -> str:
    body = {"session_id": args.session_id, "cancel": bool(args.cancel)}
    answer = api(args).post("/settlements", body, action="settle payments")
    updated = answer["payment"]
    settled = f"payment {updated['payment_id']} (session {args.session_id}) {updated['state']}"
    if answer["cdr_total_incl_vat"] is not None:
        settled += f": CDR total {answer['cdr_total_incl_vat']} incl. VAT"
    return (
        f"{settled}; captured {updated['captured']}, refunded {updated['refunded']}, kept {updated['kept']}"
    )


# ------------------------------------------------------------------ refund
def refund_session(args: argparse.Namespace) -> str:
    # One id per command: the API refunds it once however often the request reaches it.
    body: dict[str, Any] = {"session_id": args.session_id, "request_id": uuid.uuid4().hex}
    if args.amount is not None:
        body["amount"] = args.amount
    answer = api(args).post("/refunds", body, action="refund payments")
    updated = answer["payment"]
    return (
        f"refunded {answer['refunded']} of payment {updated['payment_id']} (session {args.session_id}): "
        f"captured {updated['captured']}, refunded {updated['refunded']} in all"
    )


# ------------------------------------------------------------------ QR code
def print_qr(args: argparse.Namespace) -> str:
    import segno

    path = f"/pay-links/{_segment(args.charger_id)}/{args.connector_id}"
    url = str(api(args).get(path, action="read pay links")["url"])
    # Error correction M survives a scuffed sticker; a border of 4 modules is the standard's quiet zone.
    code = segno.make(url, error="m")
    kind = "svg" if args.svg else "png" if args.png else None
    if args.output is not None:
        code.save(args.output, kind=kind, scale=8, border=4)
        return f"{url}\nwritten to {args.output}"
    if kind == "png":
        raise UsageError("a PNG is binary: give --output FILE")
    if kind == "svg":
        buffer = io.BytesIO()
        code.save(buffer, kind="svg", scale=8, border=4)
        return buffer.getvalue().decode()
    text = io.StringIO()
    code.terminal(out=text, compact=True)
    return f"{text.getvalue()}{url}"


# ------------------------------------------------------------------ reconciliation
def reconcile(client: OperatorApi, since: datetime) -> tuple[int, list[dict[str, Any]]]:
    """How many paid CDRs ended since `since`, and those whose Stripe state does not match: the
    API checks one page of CDRs per request, the pages followed here."""
    query: dict[str, Any] = {"since": since.isoformat()}
    checked, mismatches = 0, []
    while True:
        page = client.get("/reconcile", query, action="reconcile")
        checked += page["checked"]
        mismatches += page["items"]
        if not page.get("next"):
            return checked, mismatches
        query = {**query, "next": page["next"]}


def mismatch_table(mismatches: Iterable[dict[str, Any]]) -> str:
    rows = [
        (m["cdr_id"], m["charger_id"], m["connector_id"], m["cdr_total"], problem)
        for m in mismatches
        for problem in m["problems"]
    ]
    return table(["CDR", "CHARGER", "PORT", "CDR TOTAL", "PROBLEM"], rows)


def reconcile_cdrs(args: argparse.Namespace) -> str:
    checked, mismatches = reconcile(api(args), args.since)
    if args.json:
        report = as_json({"checked": checked, "mismatches": mismatches})
    elif mismatches:
        report = mismatch_table(mismatches)
    else:
        report = f"{checked} paid CDRs since {args.since:%Y-%m-%d %H:%M}: all match Stripe"
    if not mismatches:
        return report
    # The listing is the result (stdout); the exit status tells scripts something is wrong.
    print(report)
    raise CliError(f"{len(mismatches)} of {checked} paid CDRs do not match Stripe")


def _segment(value: str) -> str:
    """A path segment: the server checks the id, the client only keeps it one segment."""
    return urllib.parse.quote(value, safe="")


def _date(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date: {value}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
