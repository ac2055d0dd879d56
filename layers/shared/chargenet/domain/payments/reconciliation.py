"""Reconciliation: whether a paid CDR and what the provider (Stripe) took for it agree.

A CDR of a pay-link session should have taken its total incl. VAT (nothing below the provider's
minimum charge), less what operators refunded afterwards; the provider's refunds should be the
ones recorded. Pure: the facts come from the payment records and the provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chargenet.domain.billing import BillingRecord
from chargenet.domain.money import from_minor_units, to_minor_units
from chargenet.domain.payments.model import Payment, Reason, Settlement
from chargenet.domain.payments.settlement import minimum_minor


def money(minor: int | None, currency: str) -> str | None:
    """An amount in minor units as operators read it ("12.50 EUR"); None stays None."""
    return None if minor is None else f"{from_minor_units(minor, currency)} {currency}"


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


def mismatch(record: BillingRecord, paid: Sequence[tuple[Payment, StripeMoney | None]]) -> Mismatch | None:
    """The CDR's mismatch with Stripe, None when they agree."""
    found = problems(record, paid)
    if not found:
        return None
    return Mismatch(
        cdr_id=record.cdr_id,
        charger_id=record.charger_id,
        connector_id=record.connector_id,
        cdr_total=f"{record.total_incl_vat} {record.currency}",
        payments=tuple(p.payment_id for p, _ in paid),
        problems=tuple(found),
    )
