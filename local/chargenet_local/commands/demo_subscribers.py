"""The demo's subscribers: drivers who charge by RFID tag at member prices and pay a monthly invoice.

The operator adds a plan (a monthly fee and a member tariff) and the subscribers with the CLI's own
`plan add` and `subscriber add`; each subscriber saves a card on the local hosted setup page, one
card is declined there, so that driver's tag stays blocked. The others charge by tag on two
simulated chargers, each CDR becomes a usage line (invoice item) in Stripe, and the month is
invoiced as the operator's `subscriber invoice` (SubscriptionInvoicingFunction's code) does. The
summary reconciles each paid invoice with the CDR totals incl. VAT plus the monthly fee.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from chargenet.domain.payments.reconciliation import money
from chargenet_cli import subscriber_cmd
from chargenet_cli.errors import CliError
from chargenet_cli.output import table
from chargenet_local.commands.demo_payments import (
    CARD,
    DECLINED_CARD,
    HTTP_TIMEOUT_S,
    RATED_POWER_W,
    provision_chargers,
    until,
)
from chargenet_local.stack import StackState

# Not CP-…: the demo's fleet listing is every CP- charger. Three, so that no charger's calls (one at a
# time) hold up the others' sessions.
SUBSCRIBER_CHARGERS = ("SUB-01", "SUB-02", "SUB-03")
PLAN_ID = "member"
CURRENCY = "EUR"
MONTHLY_FEE = "9.00"
MEMBER_TARIFF = {
    "country_code": "NL",
    "party_id": "CNT",
    "id": "member-energy",
    "currency": CURRENCY,
    "tariff_alt_text": [{"language": "en", "text": "members: 0.28/kWh, no start or idle fee, 25% VAT"}],
    "elements": [{"price_components": [{"type": "ENERGY", "price": "0.28", "vat": "25", "step_size": 1}]}],
    "last_updated": "2026-01-01T00:00:00Z",
}
# A reading every 10 simulated minutes: three or four per visit keep the backend's load light.
METER_INTERVAL_S = 600


@dataclass(frozen=True)
class Visit:
    """One charge by tag: where, and how much the battery takes (at 22 kW, about half an hour)."""

    charger_id: str
    connector_id: int
    battery_kwh: float
    start_soc: float
    target_soc: float


@dataclass(frozen=True)
class Member:
    email: str
    tag_prefix: str  # the tag shown masked: its first four characters
    card: dict[str, str]
    visits: tuple[Visit, ...]


MEMBERS = (
    # Two visits in a row on one connector: two usage lines on one invoice.
    Member("ada@example.com", "ADA-", CARD, (Visit("SUB-01", 1, 40, 50, 75), Visit("SUB-01", 1, 60, 30, 50))),
    Member("ben@example.com", "BEN-", CARD, (Visit("SUB-02", 1, 77, 30, 45),)),
    Member("cleo@example.com", "CLO-", CARD, (Visit("SUB-03", 1, 60, 20, 40),)),
    # Declined on the setup page: still pending, so the charger's Authorize is answered Blocked.
    Member("dan@example.com", "DAN-", DECLINED_CARD, (Visit("SUB-02", 2, 60, 20, 50),)),
)


@dataclass(frozen=True)
class SignedUp:
    member: Member
    id_tag: str
    customer_id: str
    card_saved: bool


@dataclass(frozen=True)
class Charged:
    """A subscriber's billed session and its CDR, whose usage line is at Stripe."""

    member: Member
    session: Any  # chargenet.domain.models.SessionRecord
    record: Any  # chargenet.domain.billing.BillingRecord


def run_subscribers(state: StackState, speed: float, say: Callable[[str], None]) -> str:
    """Plan, sign-ups, charging by tag, usage lines, the monthly invoices; the reconciled summary."""
    import stripe

    home = Path(state.home)
    try:
        tariff_id = _member_tariff(say)
        plan = _args(home, plan_id=PLAN_ID, monthly_fee=MONTHLY_FEE, currency=CURRENCY, tariff=tariff_id)
        say("subscribers: " + subscriber_cmd.add_plan(plan))
        signed_up = _sign_up(home, say)
        client = _stripe(state)
        charged = [
            _billed(client, signed, truth, say) for signed, truth in _charge(state, speed, signed_up, say)
        ]
        billed = f"{dt.datetime.now(dt.UTC):%Y-%m}"
        invoicing = _args(home, period=billed, grace_days=subscriber_cmd.DEFAULT_GRACE_DAYS, json=True)
        outcomes = json.loads(subscriber_cmd.run_invoicing(invoicing))
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()) if outcome != "period")
        say(f"subscribers: monthly invoicing {billed} (as SubscriptionInvoicingFunction): {counts}")
        return _summary(client, billed, signed_up, charged)
    except stripe.StripeError as error:  # the demo's own reads of the Stripe emulator
        raise CliError(f"subscribers: Stripe: {error}") from error


def _args(home: Path, **values: Any) -> argparse.Namespace:
    """The arguments `chargenet --home HOME <command> ...` would give the command's function."""
    return argparse.Namespace(home=home, **values)


def _member_tariff(say: Callable[[str], None]) -> str:
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTariffBook
    from chargenet.domain.clock import utc_now
    from chargenet.domain.tariffs import describe, load_tariff, price_display

    tariff = load_tariff(json.dumps(MEMBER_TARIFF))
    DynamoTariffBook().store(tariff.id, tariff.model_dump_json(exclude_none=True), utc_now())
    say(f"subscribers: member tariff {tariff.id}: " + "; ".join(describe(price_display(tariff, utc_now()))))
    return tariff.id


def _sign_up(home: Path, say: Callable[[str], None]) -> list[SignedUp]:
    """Each member added by the operator saves a card on the hosted setup page; those saved are active."""
    from chargenet.adapters.subscriptions_dynamodb import DynamoSubscriberStore
    from chargenet.domain.models import mask_tag
    from chargenet.domain.subscriptions import SubscriberState

    signed_up = []
    for member in MEMBERS:
        # A fresh tag each run: a demo re-run on a kept stack signs up new subscribers.
        id_tag = f"{member.tag_prefix}{secrets.token_hex(4).upper()}"
        added = json.loads(
            subscriber_cmd.add_subscriber(
                _args(home, email=member.email, tag=id_tag, plan=PLAN_ID, json=True)
            )
        )
        hosted = requests.post(
            added["setup_url"],
            data={**member.card, "email": member.email},
            allow_redirects=False,
            timeout=HTTP_TIMEOUT_S,
        )
        if hosted.status_code not in (303, 402):
            raise CliError(f"subscribers: the hosted setup page answered {hosted.status_code}")
        saved = hosted.status_code == 303
        outcome = "card saved" if saved else "card declined, the tag stays blocked"
        say(f"  {member.email} (tag {mask_tag(id_tag)}): setup link, {outcome}")
        signed_up.append(SignedUp(member, id_tag, added["customer_id"], saved))
    store = DynamoSubscriberStore()
    for signed in signed_up:
        if signed.card_saved:
            tag = signed.id_tag
            until(
                lambda tag=tag: (s := store.get(tag)) is not None and s.state is SubscriberState.ACTIVE,
                f"activation of {signed.member.email}'s subscription",
            )
    say(f"subscribers: {sum(s.card_saved for s in signed_up)} active, tags accepted at member prices")
    return signed_up


def _charge(
    state: StackState, speed: float, signed_up: Sequence[SignedUp], say: Callable[[str], None]
) -> list[tuple[SignedUp, Any]]:
    """Every member's visits on the subscribers' chargers; the sessions that ran, with their member.

    An active member's session must run and a pending member's tag must be refused: anything else
    fails the demo."""
    from chargenet_shim.sim.fleet import SessionFailure, run_sessions
    from chargenet_shim.sim.session import SessionPlan
    from chargenet_shim.sim.simclock import SimClock

    credentials = provision_chargers(state, SUBSCRIBER_CHARGERS, "SITE-SUB")
    by_tag = {s.id_tag: s for s in signed_up}
    by_connector = {(v.charger_id, v.connector_id): s for s in signed_up for v in s.member.visits}
    plans = [
        [
            SessionPlan(
                connector_id=visit.connector_id,
                id_tag=signed.id_tag,
                battery_kwh=visit.battery_kwh,
                start_soc=visit.start_soc,
                target_soc=visit.target_soc,
                max_power_kw=RATED_POWER_W / 1000,
                meter_interval_s=METER_INTERVAL_S,
            )
            for signed in signed_up
            for visit in signed.member.visits
            if visit.charger_id == charger_id
        ]
        for charger_id in SUBSCRIBER_CHARGERS
    ]
    say(f"subscribers: {sum(map(len, plans))} visits by tag on {', '.join(SUBSCRIBER_CHARGERS)}")
    outcomes = asyncio.run(run_sessions(credentials, plans, SimClock(speed=speed)))
    ran, wrong = [], []
    for outcome in outcomes:
        if isinstance(outcome, SessionFailure):
            signed = by_connector[(outcome.charger_id, outcome.connector_id)]
            refused = not signed.card_saved and "answered Blocked" in outcome.error
            where = f"{outcome.charger_id}/{outcome.connector_id}"
            if refused:
                say(f"  {where}: {signed.member.email}'s tag refused (Authorize: Blocked), no session")
            else:
                wrong.append(f"{where}: {signed.member.email}: {outcome.error}")
            continue
        signed = by_tag[outcome.id_tag]
        if not signed.card_saved:
            wrong.append(f"{outcome.charger_id}: {signed.member.email} charged without a saved card")
        say(
            f"  {outcome.charger_id}/{outcome.connector_id}: {signed.member.email} charged by tag, "
            f"{outcome.energy_wh / 1000:.2f} kWh, transaction {outcome.transaction_id}"
        )
        ran.append((signed, outcome))
    if wrong:
        raise CliError("subscribers: " + "; ".join(wrong))
    return ran


def _billed(client: Any, signed: SignedUp, truth: Any, say: Callable[[str], None]) -> Charged:
    """The session's CDR, once billed, and its usage line at Stripe, once the usage function made it."""
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore

    session_id, cdrs = str(truth.transaction_id), DynamoCdrStore()
    record = until(lambda: cdrs.get(session_id), f"CDR of session {session_id}")
    # Not invoice_items.list(pending=True): localstripe answers that with a 500. The usage line
    # carries its CDR's id, which is what the product keys it by anyway.
    item = until(
        lambda: next(
            (
                i
                for i in client.v1.invoice_items.list({"customer": signed.customer_id, "limit": 100}).data
                if i.metadata.to_dict().get("cdr_id") == record.cdr_id
            ),
            None,
        ),
        f"usage line for CDR {record.cdr_id} at Stripe",
    )
    say(
        f"  session {session_id}: CDR {record.total_incl_vat} {record.currency} incl. VAT, "
        f"usage line {item.id} on {signed.member.email}'s next invoice"
    )
    return Charged(signed.member, DynamoSessionStore().get(session_id), record)


def _stripe(state: StackState) -> Any:
    """A Stripe client with the deployment's key, to read what the emulator holds."""
    import stripe

    from chargenet.adapters.stripe_gateway import read_secret

    key = read_secret(state.secrets["StripeApiKeySecret"])
    return stripe.StripeClient(key, base_addresses={"api": state.stripe_api_base})


def _summary(client: Any, billed: str, signed_up: Sequence[SignedUp], charged: Sequence[Charged]) -> str:
    """Each subscriber's invoice line by line; what it paid against its CDR totals plus the fee."""
    from chargenet.adapters.subscriptions_dynamodb import DynamoSubscriberStore
    from chargenet.domain.models import mask_tag
    from chargenet.domain.money import from_minor_units

    store = DynamoSubscriberStore()
    fee = Decimal(MONTHLY_FEE)
    line_rows, rows, problems = [], [], []
    usage_total = paid_total = Decimal(0)
    active = [s for s in signed_up if s.card_saved]
    for signed in active:
        email, own = signed.member.email, [c for c in charged if c.member == signed.member]
        usage = sum((c.record.total_incl_vat for c in own), Decimal(0))
        run = store.invoice_run(signed.id_tag, billed)
        invoice = client.v1.invoices.retrieve(run.invoice_id) if run else None
        # The fee first, then the usage lines, in whichever order Stripe lists them.
        lines = sorted(invoice.lines.data if invoice else [], key=_usage_cdr)
        line_rows += [(email, invoice.id, line.description, _money(line.amount)) for line in lines]
        paid = Decimal(0)
        if invoice and invoice.status == "paid":
            paid = from_minor_units(invoice.amount_paid, CURRENCY)
        usage_total, paid_total = usage_total + usage, paid_total + paid
        run_state = run.state.value if run else "no invoice"
        amounts = (f"{amount} {CURRENCY}" for amount in (usage, fee, usage + fee, paid))
        rows.append((email, mask_tag(signed.id_tag), len(own), *amounts, run_state))
        problem = _invoice_problem(run_state, invoice, lines, own, usage + fee)
        if problem:
            problems.append(f"  {email}: {problem}")
    verdict = "MISMATCH" if problems else "OK"
    headers = ["SUBSCRIBER", "TAG", "SESSIONS", "USAGE INCL VAT", "FEE", "OWED", "PAID AT STRIPE", "INVOICE"]
    report = [
        f"subscribers' invoices for {billed} (monthly fee + a usage line per CDR, paid from the saved card):",
        table(["SUBSCRIBER", "INVOICE", "LINE", "AMOUNT"], line_rows),
        "",
        table(headers, rows),
        *(
            f"  {s.member.email}: card declined at setup, tag {mask_tag(s.id_tag)} refused, no invoice"
            for s in signed_up
            if not s.card_saved
        ),
        f"revenue from subscribers: {usage_total + fee * len(active)} {CURRENCY} = {usage_total} {CURRENCY}"
        f" usage incl. VAT from {len(charged)} sessions + {fee * len(active)} {CURRENCY} fees"
        f" from {len(active)} subscribers",
        f"reconciled with Stripe ({len(rows)} invoices, {paid_total} {CURRENCY} paid = CDR totals incl. VAT"
        f" + fees): {verdict}",
        *problems,
    ]
    if problems:
        raise CliError("\n".join(report))
    return "\n".join(report)


def _invoice_problem(
    run_state: str, invoice: Any, lines: Sequence[Any], charged: Sequence[Charged], owed: Decimal
) -> str | None:
    """Why the subscriber's invoice does not match its CDRs and fee, or None when it does."""
    from chargenet.domain.money import to_minor_units

    if invoice is None:
        return f"no invoice ({run_state})"
    if run_state != "paid" or invoice.status != "paid":
        return f"invoice {invoice.id} is {run_state} here, {invoice.status} at Stripe"
    if invoice.amount_paid != to_minor_units(owed, CURRENCY):
        return f"{_money(invoice.amount_paid)} paid at Stripe, {owed} {CURRENCY} owed"
    usage_cdrs = sorted(cdr for line in lines if (cdr := _usage_cdr(line)))
    if usage_cdrs != sorted(c.record.cdr_id for c in charged) or len(lines) != len(charged) + 1:
        return "the invoice's lines are not the monthly fee and one usage line per CDR"
    off_tariff = [c.session.session_id for c in charged if c.session.tariff_id != MEMBER_TARIFF["id"]]
    if off_tariff:
        return f"sessions {off_tariff} not priced with the member tariff"
    return None


def _usage_cdr(line: Any) -> str:
    """The CDR id a usage line carries; empty for the monthly fee."""
    return str(line.metadata.to_dict().get("cdr_id", ""))


def _money(minor: int) -> str:
    return str(money(minor, CURRENCY))
