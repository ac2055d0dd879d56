"""`chargenet subscriber add|list|show|invoice` and `chargenet plan add|list`: drivers who charge by
RFID tag and are invoiced monthly through Stripe, through the operator API (signed in)."""

from __future__ import annotations

import argparse
import urllib.parse
from typing import Any

from chargenet.domain.subscriptions import TAG_STATUS, SubscriberState
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table

DEFAULT_GRACE_DAYS = 3  # the template's SubscriptionGraceDays default


def register(commands: argparse._SubParsersAction) -> None:
    subscriber = commands.add_parser("subscriber", help="RFID subscribers invoiced monthly")
    sub = subscriber.add_subparsers(dest="subscriber_command", required=True)
    add = sub.add_parser(
        "add", help="create the Stripe customer; prints the hosted link where the card is saved"
    )
    add.add_argument("--email", required=True)
    add.add_argument("--tag", required=True, help="the RFID tag (refused until the card is saved)")
    add.add_argument("--plan", default="basic", help="plan id (default: basic)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(run=add_subscriber)
    listing = sub.add_parser("list", help="every subscriber with its state")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_subscribers)
    show = sub.add_parser("show", help="one subscriber and its invoices")
    show.add_argument("tag")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=show_subscriber)
    invoice = sub.add_parser(
        "invoice", help="run the monthly invoicing now (fee + usage, charged to the saved card; idempotent)"
    )
    invoice.add_argument("--period", required=True, help="YYYY-MM")
    invoice.add_argument(
        "--grace-days",
        type=int,
        help="days a failed payment leaves the tag working (default: the deployment's "
        f"SubscriptionGraceDays, {DEFAULT_GRACE_DAYS} unless changed)",
    )
    invoice.add_argument("--json", action="store_true")
    invoice.set_defaults(run=run_invoicing)

    plan = commands.add_parser("plan", help="subscription plans: a monthly fee and a member tariff")
    plans = plan.add_subparsers(dest="plan_command", required=True)
    plan_add = plans.add_parser("add", help="create or replace a plan")
    plan_add.add_argument("plan_id")
    plan_add.add_argument("--monthly-fee", required=True, help="e.g. 9.00")
    plan_add.add_argument("--currency", required=True, help="e.g. EUR")
    plan_add.add_argument("--tariff", required=True, help="the member tariff's id (chargenet tariff set)")
    plan_add.set_defaults(run=add_plan)
    plan_list = plans.add_parser("list", help="every plan")
    plan_list.add_argument("--json", action="store_true")
    plan_list.set_defaults(run=list_plans)


def add_plan(args: argparse.Namespace) -> str:
    body = {"monthly_fee": args.monthly_fee, "currency": args.currency, "tariff": args.tariff}
    path = f"/plans/{urllib.parse.quote(args.plan_id, safe='')}"
    plan = api(args).put(path, body, action="add plans")
    return f"plan {plan['plan_id']}: {plan['monthly_fee']} {plan['currency']} a month, member tariff {plan['tariff_id']}"


def list_plans(args: argparse.Namespace) -> str:
    plans = list(api(args).paginate("/plans", action="list plans"))
    if args.json:
        return as_json(plans)
    return table(
        ["PLAN", "MONTHLY FEE", "CURRENCY", "MEMBER TARIFF"],
        [(p["plan_id"], p["monthly_fee"], p["currency"], p["tariff_id"]) for p in plans],
    )


def add_subscriber(args: argparse.Namespace) -> str:
    body = {"email": args.email, "tag": args.tag, "plan": args.plan}
    subscriber = api(args).post("/subscribers", body, action="add subscribers")
    if getattr(args, "json", False):
        return as_json(subscriber)
    return f"subscriber {subscriber['id_tag']} ({subscriber['state']}): save the card at {subscriber['setup_url']}"


def list_subscribers(args: argparse.Namespace) -> str:
    subscribers = list(api(args).paginate("/subscribers", action="list subscribers"))
    if args.json:
        return as_json(subscribers)
    return table(
        ["TAG", "EMAIL", "PLAN", "STATE", "TAG STATUS", "PAST DUE SINCE"],
        [
            (s["id_tag"], s["email"], s["plan_id"], s["state"], _tag_status(s), _moment(s["past_due_since"]))
            for s in subscribers
        ],
    )


def show_subscriber(args: argparse.Namespace) -> str:
    shown: dict[str, Any] = api(args).get(
        f"/subscribers/{urllib.parse.quote(args.tag, safe='')}", action="show subscribers"
    )
    runs = shown.pop("invoices")
    if args.json:
        return as_json({**shown, "invoices": runs})
    lines = [f"{key}: {value}" for key, value in shown.items()]
    rows = [(r["period"], r["invoice_id"], r["state"]) for r in runs]
    return "\n".join([*lines, "", table(["PERIOD", "INVOICE", "STATE"], rows)])


def run_invoicing(args: argparse.Namespace) -> str:
    """The API invoices one page of subscribers per request; the pages are followed here."""
    client = api(args)
    body: dict[str, Any] = {"period": args.period}
    if args.grace_days is not None:
        body["grace_days"] = args.grace_days
    query: dict[str, Any] = {}
    outcomes: dict[str, int] = {}
    while True:
        page = client.request("POST", "/invoice-runs", params=query, body=body, action="run invoicing")
        for outcome, count in page["outcomes"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
        if not page.get("next"):
            break
        query = {"next": page["next"]}
    if args.json:
        return as_json({"period": page["period"], **outcomes})
    return f"{page['period']}: " + ", ".join(
        f"{count} {outcome}" for outcome, count in sorted(outcomes.items())
    )


def _tag_status(subscriber: dict[str, Any]) -> str:
    return TAG_STATUS[SubscriberState(subscriber["state"])].value


def _moment(value: str | None) -> str | None:
    """As the listing printed it before: a date-time with a space, not ISO's T."""
    return None if value is None else value.replace("T", " ")
