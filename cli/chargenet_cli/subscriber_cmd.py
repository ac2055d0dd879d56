"""`chargenet subscriber add|list|show|invoice` and `chargenet plan add|list`: drivers who charge by
RFID tag and are invoiced monthly through Stripe."""

from __future__ import annotations

import argparse
import os
from decimal import Decimal, InvalidOperation
from typing import Any

from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
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
        default=DEFAULT_GRACE_DAYS,
        help=f"days a failed payment leaves the tag working (default {DEFAULT_GRACE_DAYS})",
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


def _connect(args: argparse.Namespace, grace_days: int = DEFAULT_GRACE_DAYS) -> str:
    """Point the adapters at the local stack (as the template does for the functions); the API URL."""
    state = local_env.connect(args.home)
    os.environ.update(
        {
            "SUBSCRIBERS_TABLE": state.tables["SubscribersTable"],
            "STRIPE_SECRET_ARN": state.secrets["StripeApiKeySecret"],
            "SUBSCRIPTION_GRACE_DAYS": str(grace_days),
        }
    )
    return state.api_url


def add_plan(args: argparse.Namespace) -> str:
    _connect(args)
    from chargenet.composition.subscriptions import subscriber_desk
    from chargenet.domain.subscriptions import Plan, SubscriptionError

    try:
        fee = Decimal(args.monthly_fee)
        plan = Plan(
            plan_id=args.plan_id, monthly_fee=fee, currency=args.currency.upper(), tariff_id=args.tariff
        )
        subscriber_desk().add_plan(plan)
    except SubscriptionError as error:
        raise UsageError(str(error)) from error
    except (InvalidOperation, ValueError) as error:  # pydantic's ValidationError: its last line says why
        raise UsageError(f"invalid plan: {str(error).splitlines()[-1].strip()}") from error
    return f"plan {plan.plan_id}: {plan.monthly_fee} {plan.currency} a month, member tariff {plan.tariff_id}"


def list_plans(args: argparse.Namespace) -> str:
    _connect(args)
    from chargenet.adapters.subscriptions_dynamodb import DynamoSubscriberStore

    plans = DynamoSubscriberStore().plans()
    if args.json:
        return as_json([p.model_dump(mode="json") for p in plans])
    return table(
        ["PLAN", "MONTHLY FEE", "CURRENCY", "MEMBER TARIFF"],
        [(p.plan_id, p.monthly_fee, p.currency, p.tariff_id) for p in plans],
    )


def add_subscriber(args: argparse.Namespace) -> str:
    api_url = _connect(args)
    from chargenet.composition.subscriptions import subscriber_desk
    from chargenet.domain.payments import PaymentProviderError
    from chargenet.domain.subscriptions import SubscriptionError

    try:
        subscriber = subscriber_desk().add_subscriber(
            args.email, args.tag, args.plan, api_url or "https://example.invalid"
        )
    except SubscriptionError as error:
        raise UsageError(str(error)) from error
    except PaymentProviderError as error:
        raise CliError(f"Stripe: {error}") from error
    if args.json:
        return as_json(subscriber.model_dump(mode="json"))
    return (
        f"subscriber {subscriber.id_tag} ({subscriber.state.value}): save the card at {subscriber.setup_url}"
    )


def list_subscribers(args: argparse.Namespace) -> str:
    _connect(args)
    from chargenet.adapters.subscriptions_dynamodb import DynamoSubscriberStore

    subscribers = DynamoSubscriberStore().subscribers()
    if args.json:
        return as_json([s.model_dump(mode="json") for s in subscribers])
    return table(
        ["TAG", "EMAIL", "PLAN", "STATE", "TAG STATUS", "PAST DUE SINCE"],
        [
            (s.id_tag, s.email, s.plan_id, s.state.value, s.tag_status.value, s.past_due_since)
            for s in subscribers
        ],
    )


def show_subscriber(args: argparse.Namespace) -> str:
    _connect(args)
    from chargenet.adapters.subscriptions_dynamodb import DynamoSubscriberStore

    store = DynamoSubscriberStore()
    subscriber = store.get(args.tag)
    if subscriber is None:
        raise CliError(f"no subscriber with tag {args.tag}")
    runs = store.invoice_runs(args.tag)
    shown: dict[str, Any] = {**subscriber.model_dump(mode="json"), "tag_status": subscriber.tag_status.value}
    if args.json:
        return as_json({**shown, "invoices": [r.model_dump(mode="json") for r in runs]})
    lines = [f"{key}: {value}" for key, value in shown.items()]
    rows = [(r.period, r.invoice_id, r.state.value) for r in runs]
    return "\n".join([*lines, "", table(["PERIOD", "INVOICE", "STATE"], rows)])


def run_invoicing(args: argparse.Namespace) -> str:
    _connect(args, args.grace_days)
    from chargenet.composition.subscriptions import subscription_billing
    from chargenet.domain.payments import PaymentProviderError
    from chargenet.domain.subscriptions import SubscriptionError, period

    try:
        billed = period(args.period)
        # The operator's run retries declined invoices (a new card may be saved by now).
        outcomes = subscription_billing().run(billed, retry_failed=True)
    except SubscriptionError as error:
        raise UsageError(str(error)) from error
    except PaymentProviderError as error:
        raise CliError(f"Stripe: {error}") from error
    if args.json:
        return as_json({"period": billed.name, **outcomes})
    return f"{billed.name}: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
