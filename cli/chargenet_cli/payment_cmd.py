"""`chargenet payment list|show|settle`, `chargenet refund`, `chargenet qr`, `chargenet reconcile`.

Money moves only through the product's services (PaymentSettlements: the refund rules, the
idempotency keys) and Stripe is read only through the product's gateway, so what operators
see is what the functions see, on the local stack as in the cloud.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chargenet.domain.billing import BillingRecord
from chargenet.domain.money import from_minor_units, parse_decimal, round_money, to_minor_units
from chargenet.domain.payments import (
    Payment,
    PaymentError,
    PaymentProviderError,
    PaymentState,
    Reason,
    Settlement,
    is_payment_tag,
    minimum_minor,
)
from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.output import as_json, table
from chargenet_local.stack import StackState

if TYPE_CHECKING:
    from chargenet.adapters.stripe_gateway import StripeGateway
    from chargenet.services.payments import PaymentSettlements


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


# ------------------------------------------------------------------ composition
def _payments() -> Any:
    from chargenet.adapters.payments_dynamodb import DynamoPaymentStore

    return DynamoPaymentStore()


def gateway(state: StackState) -> StripeGateway:
    """The product's Stripe gateway with the deployment's key (locally: the Checkout front)."""
    from chargenet.adapters.stripe_gateway import StripeGateway, read_secret

    arn = state.secrets.get("StripeApiKeySecret")
    if not arn:
        raise CliError("the stack has no Stripe key secret (StripeApiKeySecret)")
    return StripeGateway(api_key=lambda: read_secret(arn), api_base=state.stripe_api_base or None)


def _settlements(state: StackState) -> PaymentSettlements:
    from chargenet.adapters.payment_metrics import EmfPaymentAlarm
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory
    from chargenet.domain.clock import utc_now
    from chargenet.domain.payments import load_config
    from chargenet.services.payments import PaymentSettlements

    return PaymentSettlements(
        _payments(), gateway(state), DynamoTagDirectory(), EmfPaymentAlarm(), load_config(os.environ), utc_now
    )


def all_payments() -> list[Payment]:
    return sorted(_payments().in_states(list(PaymentState)), key=lambda p: p.created_at)


def _cdr(session_id: str | None) -> BillingRecord | None:
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore

    # A session's CDR carries the session's id.
    return DynamoCdrStore().get(session_id) if session_id else None


# ------------------------------------------------------------------ list and show
def money(minor: int | None, currency: str) -> str | None:
    return None if minor is None else f"{from_minor_units(minor, currency)} {currency}"


def payment_view(payment: Payment, record: BillingRecord | None) -> dict[str, Any]:
    c = payment.currency
    return {
        "payment_id": payment.payment_id,
        "state": payment.state.value,
        "reason": payment.reason.value if payment.reason else None,
        "charger_id": payment.charger_id,
        "connector_id": payment.connector_id,
        "method": payment.settlement.value,
        "held": money(payment.hold_minor, c),
        "captured": money(payment.captured_minor, c),
        "refunded": money(payment.refunded_minor, c),
        "kept": money(payment.kept_minor, c),
        "uncollected": money(payment.uncollected_minor, c),
        "session_id": payment.session_id,
        "cdr_total_incl_vat": f"{record.total_incl_vat} {record.currency}" if record else None,
        "stripe_checkout_session": payment.checkout_session_id,
        "stripe_payment_intent": payment.payment_intent_id,
        "failure": payment.failure,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
    }


def list_payments(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    views = [payment_view(p, _cdr(p.session_id)) for p in all_payments()]
    if args.json:
        return as_json(views)
    keys = ["payment_id", "state", "charger_id", "connector_id", "held", "captured", "refunded"]
    rows = [[v[k] for k in keys] + [v["session_id"], v["cdr_total_incl_vat"]] for v in views]
    headers = ["PAYMENT", "STATE", "CHARGER", "PORT", "HELD", "CAPTURED", "REFUNDED", "SESSION", "CDR TOTAL"]
    failed = sum(v["state"] == PaymentState.FAILED.value for v in views)
    hint = f"\n{failed} failed: {SETTLE_HINT}" if failed else ""
    return table(headers, rows) + hint


def show_payment(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    payment = _payments().get(args.payment_id)
    if payment is None:
        raise CliError(f"no payment {args.payment_id}")
    view = payment_view(payment, _cdr(payment.session_id))
    if args.json:
        return as_json(view)
    lines = [f"{key}: {'-' if value is None else value}" for key, value in view.items()]
    if payment.state is PaymentState.FAILED:
        lines.append(f"hint: {SETTLE_HINT}")
    return "\n".join(lines)


# ------------------------------------------------------------------ settling a failed payment
SETTLE_HINT = "settle with `chargenet payment settle SESSION` (or release the hold with --cancel)"


def settle_payment(args: argparse.Namespace) -> str:
    state = local_env.connect(args.home)
    payment = payment_of_session(args.session_id)
    record = None if args.cancel else _cdr(args.session_id)
    if not args.cancel and record is None:
        raise CliError(
            f"session {args.session_id} has no CDR: nothing to capture (--cancel releases the hold)"
        )
    settlements = _settlements(state)
    try:
        if record is None:
            updated = settlements.release_failed(payment.payment_id)
        else:
            updated = settlements.settle_failed(payment.payment_id, record)
    except PaymentError as exc:  # not failed, the hold gone at Stripe, another session's: the services' rules
        raise CliError(f"settle refused: {exc}") from exc
    except PaymentProviderError as exc:
        raise CliError(f"Stripe did not settle: {exc} (payment {payment.payment_id} stays failed)") from exc
    c = updated.currency
    settled = f"payment {updated.payment_id} (session {args.session_id}) {updated.state.value}"
    if record is not None:
        due = money(to_minor_units(record.total_incl_vat, c), c)
        settled += f": CDR total {due} incl. VAT"
    return (
        f"{settled}; captured {money(updated.captured_minor, c)}, "
        f"refunded {money(updated.refunded_minor, c)}, kept {money(updated.kept_minor, c)}"
    )


# ------------------------------------------------------------------ refund
def payment_of_session(session_id: str) -> Payment:
    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore

    session = DynamoSessionStore().get(session_id)
    if session is None:
        raise CliError(f"no session {session_id}")
    payment = _payments().by_tag(session.id_tag) if is_payment_tag(session.id_tag) else None
    if payment is None or payment.session_id not in (None, session_id):
        raise CliError(f"session {session_id} was not paid through the pay link")
    return payment


def _minor_amount(amount: str, currency: str) -> int:
    try:
        value = parse_decimal(amount)
    except (ValueError, ArithmeticError) as exc:
        raise UsageError(f"--amount must be a decimal amount in {currency}, got {amount!r}") from exc
    if value != round_money(value, currency):
        raise UsageError(f"--amount {amount}: more decimals than {currency} has")
    return to_minor_units(value, currency)


def refund_session(args: argparse.Namespace) -> str:
    state = local_env.connect(args.home)
    payment = payment_of_session(args.session_id)
    amount = None if args.amount is None else _minor_amount(args.amount, payment.currency)
    try:
        updated = _settlements(state).refund(payment.payment_id, amount)
    except PaymentError as exc:  # more than is left, nothing captured: the services' rules
        raise CliError(f"refund refused: {exc}") from exc
    except PaymentProviderError as exc:
        raise CliError(f"Stripe did not refund: {exc}") from exc
    c = updated.currency
    given = updated.refunded_minor - payment.refunded_minor
    return (
        f"refunded {money(given, c)} of payment {updated.payment_id} (session {args.session_id}): "
        f"captured {money(updated.captured_minor, c)}, refunded {money(updated.refunded_minor, c)} in all"
    )


# ------------------------------------------------------------------ QR code
def pay_url(state: StackState, charger_id: str, connector_id: int) -> str:
    if not state.api_url:
        raise CliError("the stack serves no HTTP API: no pay link")
    return f"{state.api_url}/pay/{charger_id}/{connector_id}"


def print_qr(args: argparse.Namespace) -> str:
    import segno

    state = local_env.connect(args.home)
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    if DynamoChargerRegistry().get(args.charger_id) is None:
        raise CliError(f"no charger {args.charger_id}")
    url = pay_url(state, args.charger_id, args.connector_id)
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
@dataclass(frozen=True)
class StripeMoney:
    """What Stripe says of one payment's intent."""

    intent_id: str
    status: str
    received_minor: int
    refunded_minor: int


@dataclass(frozen=True)
class Mismatch:
    cdr_id: str
    charger_id: str
    connector_id: int
    cdr_total: str
    payments: tuple[str, ...]
    problems: tuple[str, ...]


def expected_minor(record: BillingRecord) -> int:
    """What the CDR should have taken: its total incl. VAT, nothing below Stripe's minimum charge."""
    due = to_minor_units(record.total_incl_vat, record.currency)
    return due if due >= minimum_minor(record.currency) else 0


def _settlement_refund(payment: Payment) -> int:
    """The part of the refunds that settled a prepay (the difference to the cost), not an operator's."""
    if payment.settlement is not Settlement.PREPAY or payment.due_minor is None:
        return 0
    take = 0 if payment.reason is Reason.BELOW_MINIMUM else payment.due_minor - payment.uncollected_minor
    return payment.captured_minor - take


def charged_for_cdr(payment: Payment, stripe: StripeMoney) -> int:
    """What Stripe took for the session itself: operator refunds recorded on the payment do not count."""
    operator_refunds = payment.refunded_minor - _settlement_refund(payment)
    return stripe.received_minor - stripe.refunded_minor + operator_refunds


def problems(record: BillingRecord, paid: Sequence[tuple[Payment, StripeMoney | None]]) -> list[str]:
    """Why the CDR and Stripe disagree (nothing when they match)."""
    c, expected = record.currency, expected_minor(record)
    taken = [(p, s) for p, s in paid if s is not None and s.received_minor > 0]
    if not taken:
        states = ", ".join(f"{p.payment_id} {p.state.value}" for p, _ in paid) or "no payment"
        return [f"uncaptured: {money(expected, c)} due, nothing taken ({states})"] if expected else []
    found = []
    if len(taken) > 1:
        found.append(f"captured twice: {', '.join(s.intent_id for _, s in taken)}")
    for payment, stripe in taken:
        if stripe.refunded_minor > stripe.received_minor:
            found.append(
                f"refunded more than captured on {stripe.intent_id}: "
                f"{money(stripe.refunded_minor, c)} of {money(stripe.received_minor, c)}"
            )
        if stripe.refunded_minor != payment.refunded_minor:
            found.append(
                f"refunds on {stripe.intent_id}: {money(stripe.refunded_minor, c)} at Stripe, "
                f"{money(payment.refunded_minor, c)} recorded"
            )
    charged = sum(charged_for_cdr(p, s) for p, s in taken)
    if charged != expected:
        found.append(f"amount differs: {money(charged, c)} taken, CDR total {money(expected, c)}")
    return found


def stripe_money(stripe: StripeGateway, payment: Payment) -> StripeMoney | None:
    if payment.payment_intent_id is None:
        return None
    facts = stripe.intent(payment.payment_intent_id)
    return StripeMoney(
        facts.intent_id, facts.status, facts.amount_received, stripe.refunded_minor(facts.intent_id)
    )


@dataclass(frozen=True)
class PaidCdr:
    record: BillingRecord
    payments: tuple[Payment, ...]


def paid_cdrs(since: datetime) -> list[PaidCdr]:
    """The CDRs since `since` of sessions that ran on a pay-link tag, with every payment that names them."""
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore

    payments = all_payments()
    sessions = DynamoSessionStore()
    found = []
    for record in DynamoCdrStore().list():
        # Credit CDRs are settled by operator refunds, which the original's check already counts.
        if record.credit_reference_id is not None or record.end_date_time < since:
            continue
        session = sessions.get(record.session_id)
        if session is None or not is_payment_tag(session.id_tag):
            continue  # a subscriber's or an RFID session: not paid through the link
        mine = [p for p in payments if p.session_id == record.session_id or p.id_tag == session.id_tag]
        found.append(PaidCdr(record, tuple(mine)))
    return sorted(found, key=lambda paid: paid.record.end_date_time)


def reconcile(state: StackState, since: datetime) -> tuple[list[PaidCdr], list[Mismatch]]:
    """Every paid CDR since `since`, and those whose Stripe state does not match."""
    stripe = gateway(state)
    cdrs = paid_cdrs(since)
    mismatches = []
    for paid in cdrs:
        found = problems(paid.record, [(p, stripe_money(stripe, p)) for p in paid.payments])
        if found:
            r = paid.record
            mismatches.append(
                Mismatch(
                    cdr_id=r.cdr_id,
                    charger_id=r.charger_id,
                    connector_id=r.connector_id,
                    cdr_total=f"{r.total_incl_vat} {r.currency}",
                    payments=tuple(p.payment_id for p in paid.payments),
                    problems=tuple(found),
                )
            )
    return cdrs, mismatches


def mismatch_table(mismatches: Iterable[Mismatch]) -> str:
    rows = [
        (m.cdr_id, m.charger_id, m.connector_id, m.cdr_total, problem)
        for m in mismatches
        for problem in m.problems
    ]
    return table(["CDR", "CHARGER", "PORT", "CDR TOTAL", "PROBLEM"], rows)


def reconcile_cdrs(args: argparse.Namespace) -> str:
    state = local_env.connect(args.home)
    try:
        cdrs, mismatches = reconcile(state, args.since)
    except PaymentProviderError as exc:
        raise CliError(f"cannot read Stripe: {exc}") from exc
    if args.json:
        report = as_json({"checked": len(cdrs), "mismatches": [asdict(m) for m in mismatches]})
    elif mismatches:
        report = mismatch_table(mismatches)
    else:
        report = f"{len(cdrs)} paid CDRs since {args.since:%Y-%m-%d %H:%M}: all match Stripe"
    if not mismatches:
        return report
    # The listing is the result (stdout); the exit status tells scripts something is wrong.
    print(report)
    raise CliError(f"{len(mismatches)} of {len(cdrs)} paid CDRs do not match Stripe")


def _date(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date: {value}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
