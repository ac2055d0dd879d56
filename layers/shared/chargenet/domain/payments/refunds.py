"""An operator's refund, partial or full: never more than the driver paid."""

from __future__ import annotations

from datetime import datetime

from chargenet.domain.payments.errors import RefundRefused
from chargenet.domain.payments.identifiers import refund_key
from chargenet.domain.payments.model import Payment, PaymentState, transition
from chargenet.domain.payments.settlement import MoneyAction, MoneyCall


def plan_refund(payment: Payment, amount_minor: int | None = None) -> MoneyCall:
    """A refund of `amount_minor` (all that is left when None): never more than was kept."""
    if payment.state not in (PaymentState.CAPTURED, PaymentState.REFUNDED):
        raise RefundRefused(f"payment {payment.payment_id} is {payment.state.value}: nothing was taken")
    refundable = payment.kept_minor
    amount = refundable if amount_minor is None else amount_minor
    if amount <= 0 or amount > refundable:
        raise RefundRefused(
            f"refund {amount} of payment {payment.payment_id}: must be 1 to {refundable} (what is left of the capture)"
        )
    return MoneyCall(MoneyAction.REFUND, amount, refund_key(payment, payment.refund_count + 1))


def refunded(payment: Payment, call: MoneyCall, now: datetime, request_id: str | None = None) -> Payment:
    """The refund recorded; `request_id` (an operator's request) is remembered, so it applies once."""
    requests = (
        payment.refund_requests
        if request_id is None
        else {**payment.refund_requests, request_id: call.amount_minor}
    )
    return transition(
        payment,
        PaymentState.REFUNDED,
        now,
        refunded_minor=payment.refunded_minor + call.amount_minor,
        refund_count=payment.refund_count + 1,
        refund_requests=requests,
    )
