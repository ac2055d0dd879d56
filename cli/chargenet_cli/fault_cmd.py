"""`chargenet fault list|show|ack|resolve|exclude` and `chargenet alert list` (the alerts operators were
sent), over the operator API (docs/operators.md)."""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from typing import Any

from chargenet.domain.faults import ExclusionReason
from chargenet_cli.errors import CliError
from chargenet_cli.operator_api import OperatorApi
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table

# A whole fault id (chargenet.domain.faults.fault_id); anything shorter is a prefix, as tables print.
FULL_FAULT_ID = re.compile(r"[0-9a-f]{20}")


def register(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("fault", help="charger and connector faults").add_subparsers(
        dest="fault_command", required=True
    )
    listing = sub.add_parser("list", help="faults, oldest episode first")
    listing.add_argument("--open", action="store_true", help="only faults not resolved")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_faults)
    show = sub.add_parser("show", help="one fault with its evidence and alerts")
    show.add_argument("fault_id")
    show.set_defaults(run=show_fault)
    ack = sub.add_parser("ack", help="take ownership: no more pages for this episode")
    ack.add_argument("fault_id")
    ack.add_argument("--by", help="who takes it on, if not you (into the audit note: the fault records you)")
    ack.add_argument("--note", help="why, for the audit trail")
    ack.set_defaults(run=ack_fault)
    resolve = sub.add_parser("resolve", help="mark a fault resolved (e.g. after an on-site repair)")
    resolve.add_argument("fault_id")
    resolve.set_defaults(run=resolve_fault)
    exclude = sub.add_parser(
        "exclude", help="exclude this episode's outage from NEVI uptime (23 CFR 680.116)"
    )
    exclude.add_argument("fault_id")
    reason = exclude.add_mutually_exclusive_group(required=True)
    reason.add_argument("--reason", choices=[r.value for r in ExclusionReason], help="why it does not count")
    reason.add_argument("--clear", action="store_true", help="withdraw the exclusion")
    exclude.add_argument("--note", help="evidence or ticket, for the audit trail")
    exclude.set_defaults(run=exclude_fault)
    alerts = commands.add_parser("alert", help="operator alerts").add_subparsers(
        dest="alert_command", required=True
    )
    inbox = alerts.add_parser("list", help="fault alerts operators were sent, oldest first")
    inbox.add_argument("--since", help="ISO date or date and time (UTC unless it has an offset)")
    inbox.add_argument("--json", action="store_true")
    inbox.set_defaults(run=list_alerts)


def list_faults(args: argparse.Namespace) -> str:
    params = {"open": "true" if args.open else None}
    found = api(args).paginate("/faults", params, action="list faults")
    faults = sorted(found, key=lambda f: _at(f["first_seen"]))
    if args.json:
        return as_json(faults)
    rows = [
        (
            f["fault_id"][:12],
            f["charger_id"],
            f["connector_id"],
            f["kind"],
            f["code"],
            f["severity"],
            f["state"],
            f"{_at(f['first_seen']):%Y-%m-%d %H:%M}",
            f["episode"],
        )
        for f in faults
    ]
    return table(["FAULT", "CHARGER", "PORT", "KIND", "CODE", "SEVERITY", "STATE", "SINCE", "EPISODE"], rows)


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _fault_id(client: OperatorApi, given: str) -> str:
    """The whole id of the fault `given` names: itself, or the one fault whose id starts with it."""
    if FULL_FAULT_ID.fullmatch(given):
        return given
    matches = [
        f["fault_id"]
        for f in client.paginate("/faults", action="list faults")
        if given and f["fault_id"].startswith(given)
    ]
    if len(matches) != 1:
        raise CliError(f"no fault {given}" if not matches else f"{given} matches several faults")
    return str(matches[0])


def show_fault(args: argparse.Namespace) -> str:
    client = api(args)
    return as_json(client.get(f"/faults/{_fault_id(client, args.fault_id)}", action="read faults"))


def _change(args: argparse.Namespace, verb: str, body: dict[str, Any], action: str) -> str:
    client = api(args)
    fault_id = _fault_id(client, args.fault_id)
    after = client.post(f"/faults/{fault_id}/{verb}", body, action=action)
    if not after["changed"]:
        return f"fault {fault_id[:12]} unchanged ({after['state']})"
    return f"fault {fault_id[:12]} " + _done(verb, after)


def _done(verb: str, after: dict[str, Any]) -> str:
    if verb == "ack":
        return f"acknowledged by {after['acknowledged_by']}"
    if verb == "exclude":
        reason = after["excluded_reason"]
        return f"excluded from uptime ({reason})" if reason else "no longer excluded from uptime"
    return "resolved"


def ack_fault(args: argparse.Namespace) -> str:
    parts = [f"owner: {args.by}" if args.by else None, args.note]
    note = "; ".join(p for p in parts if p) or None
    return _change(args, "ack", {"note": note} if note else {}, "acknowledge faults")


def resolve_fault(args: argparse.Namespace) -> str:
    return _change(args, "resolve", {}, "resolve faults")


def exclude_fault(args: argparse.Namespace) -> str:
    body = {"reason": None if args.clear else args.reason, "note": args.note}
    return _change(args, "exclude", body, "exclude faults from uptime")


def list_alerts(args: argparse.Namespace) -> str:
    found = api(args).paginate("/alerts", {"since": args.since}, action="list alerts")
    alerts = sorted(found, key=lambda a: _at(a["received_at"]))
    if args.json:
        return as_json(alerts)
    return alerts_table(alerts)


def alerts_table(alerts: list[dict[str, Any]]) -> str:
    """Alerts as operators read them: the API's, or the local stack's inbox (alert_sink.describe),
    which also holds CloudWatch alarm notifications."""
    return table(
        ["RECEIVED", "SEVERITY", "KIND", "SUBJECT"],
        [
            (
                a["received_at"],
                a["severity"],
                f"alarm {a['alarm']['state']}" if "alarm" in a else a["kind"],
                a["subject"],
            )
            for a in alerts
        ],
    )
