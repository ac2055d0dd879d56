"""`chargenet fault list|show|ack|resolve|exclude` and `chargenet alert list` (what operators received)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chargenet.domain.faults import ExclusionReason, exclude
from chargenet_cli import local_env
from chargenet_cli.errors import CliError
from chargenet_cli.output import as_json, table


def register(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("fault", help="charger and connector faults").add_subparsers(
        dest="fault_command", required=True
    )
    listing = sub.add_parser("list", help="faults, newest episode first")
    listing.add_argument("--open", action="store_true", help="only faults not resolved")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_faults)
    show = sub.add_parser("show", help="one fault with its evidence")
    show.add_argument("fault_id")
    show.set_defaults(run=show_fault)
    ack = sub.add_parser("ack", help="take ownership: no more pages for this episode")
    ack.add_argument("fault_id")
    ack.add_argument("--by", required=True, help="who owns it")
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
    exclude.set_defaults(run=exclude_fault)
    alerts = commands.add_parser("alert", help="operator alerts").add_subparsers(
        dest="alert_command", required=True
    )
    inbox = alerts.add_parser("list", help="alerts operators received (local stack: the alert sink)")
    inbox.add_argument("--json", action="store_true")
    inbox.set_defaults(run=list_alerts)


def _store() -> Any:
    from chargenet.adapters.faults_dynamodb import DynamoFaultStore

    return DynamoFaultStore()


def list_faults(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    faults = [f for f in _store().list() if not args.open or f.state.value != "resolved"]
    if args.json:
        return as_json([f.model_dump(mode="json") for f in faults])
    rows = [
        (
            f.fault_id[:12],
            f.charger_id,
            f.connector_id,
            f.kind.value,
            f.code,
            f.severity.value,
            f.state.value,
            f"{f.first_seen:%Y-%m-%d %H:%M}",
            f.episode,
        )
        for f in faults
    ]
    return table(["FAULT", "CHARGER", "PORT", "KIND", "CODE", "SEVERITY", "STATE", "SINCE", "EPISODE"], rows)


def _find(fault_id: str) -> tuple[Any, list[Any]]:
    store = _store()
    matches = [f for f in store.list() if f.fault_id.startswith(fault_id)]
    if len(matches) != 1:
        raise CliError(f"no fault {fault_id}" if not matches else f"{fault_id} matches several faults")
    stored = store.get(matches[0].fault_id)
    assert stored is not None
    return stored


def show_fault(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    fault, alerts = _find(args.fault_id)
    return as_json({**fault.model_dump(mode="json"), "alerts": [a.model_dump(mode="json") for a in alerts]})


def _change(args: argparse.Namespace, change: Any, verb: str) -> str:
    local_env.connect(args.home)
    from chargenet.composition.faults import fault_tracker

    fault_id = _find(args.fault_id)[0].fault_id
    try:
        changed = fault_tracker().operator_change(fault_id, change)
    except RuntimeError:
        raise CliError("the fault keeps changing while you update it; run the command again") from None
    if changed is None:
        raise CliError(f"no fault {args.fault_id}")
    before, after = changed
    if after == before:
        return f"fault {fault_id[:12]} unchanged ({before.state.value})"
    return f"fault {fault_id[:12]} {verb}"


def ack_fault(args: argparse.Namespace) -> str:
    from chargenet.domain.clock import utc_now
    from chargenet.domain.faults import acknowledge

    return _change(args, lambda fault: acknowledge(fault, utc_now(), args.by), f"acknowledged by {args.by}")


def resolve_fault(args: argparse.Namespace) -> str:
    from chargenet.domain.clock import utc_now
    from chargenet.domain.faults import resolve

    return _change(args, lambda fault: resolve(fault, utc_now()), "resolved")


def exclude_fault(args: argparse.Namespace) -> str:
    reason = None if args.clear else ExclusionReason(args.reason)
    verb = f"excluded from uptime ({reason.value})" if reason else "no longer excluded from uptime"
    return _change(args, lambda fault: exclude(fault, reason), verb)


def list_alerts(args: argparse.Namespace) -> str:
    from chargenet_local.alert_sink import describe, read_inbox

    state = local_env.connect(args.home)
    alerts = [describe(alert) for alert in read_inbox(Path(state.home))]
    if args.json:
        return as_json(alerts)
    return alerts_table(alerts)


def alerts_table(alerts: list[dict[str, Any]]) -> str:
    """Described alerts (alert_sink.describe) as operators read them."""
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
