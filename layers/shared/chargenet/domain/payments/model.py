"""The payment record and its state machine: states, settlement kinds, checkout methods, reasons.

Every change of a payment goes through `transition` (a new state the machine allows) or
`changed` (the same state, new facts): both increment `version`, which writes are conditional on.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chargenet.domain.payments.errors import InvalidTransition

# Stripe's minimum charge amounts (SPEC section 6); a currency without one cannot be sold.
MINIMUM_CHARGE: dict[str, Decimal] = {
    "SEK": Decimal("3.00"),
    "EUR": Decimal("0.50"),
    "USD": Decimal("0.50"),
}
# Checkout payment method types that support a manual-capture hold. Apple Pay and Google Pay are
# wallets on the "card" type in Checkout, so they need no entry of their own.
HOLD_METHOD_TYPES = frozenset({"card", "link"})
SWISH = "swish"
SWISH_CURRENCY = "SEK"


class PaymentState(StrEnum):
    CHECKOUT_OPEN = "checkout_open"
    AUTHORIZED = "authorized"  # money secured (hold or prepay); the charger is asked to start
    CHARGING = "charging"  # a session runs on the payment's tag
    CAPTURED = "captured"  # settled: the amount due was taken
    CANCELLED = "cancelled"  # nothing taken: checkout abandoned, charger never started, below minimum
    REFUNDED = "refunded"  # settled with a refund (Swish difference, operator refund), partial or full
    FAILED = "failed"  # the money could not be settled: operators act (PaymentFailures alarm)


TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    PaymentState.CHECKOUT_OPEN: frozenset({PaymentState.AUTHORIZED, PaymentState.CANCELLED}),
    PaymentState.AUTHORIZED: frozenset(
        {PaymentState.CHARGING, PaymentState.CANCELLED, PaymentState.REFUNDED, PaymentState.FAILED}
    ),
    PaymentState.CHARGING: frozenset(
        {PaymentState.CAPTURED, PaymentState.CANCELLED, PaymentState.REFUNDED, PaymentState.FAILED}
    ),
    PaymentState.CAPTURED: frozenset({PaymentState.REFUNDED}),
    PaymentState.REFUNDED: frozenset({PaymentState.REFUNDED}),  # a further partial refund
    # An operator may settle a failed payment once the cause is fixed.
    PaymentState.FAILED: frozenset({PaymentState.CAPTURED, PaymentState.CANCELLED, PaymentState.REFUNDED}),
    PaymentState.CANCELLED: frozenset(),
}
# Money is (or may still be) held for the driver in these states.
OPEN_STATES = (PaymentState.CHECKOUT_OPEN, PaymentState.AUTHORIZED, PaymentState.CHARGING)


class Settlement(StrEnum):
    HOLD = "hold"  # manual capture
    PREPAY = "prepay"  # paid up front (Swish), the difference refunded


class CheckoutMethod(StrEnum):
    """The choices on the pay page."""

    CARD = "card"  # card, wallets, Link: a hold
    SWISH = "swish"  # prepay

    @property
    def settlement(self) -> Settlement:
        return Settlement.PREPAY if self is CheckoutMethod.SWISH else Settlement.HOLD


class Reason(StrEnum):
    """Why a payment ended the way it did; shown to drivers and operators."""

    CHECKOUT_EXPIRED = "checkout_expired"
    CHECKOUT_FAILED = "checkout_failed"
    CHARGER_REFUSED = "charger_refused"
    START_TIMEOUT = "start_timeout"
    AUTHORIZATION_LATE = "authorization_late"  # the money arrived after the driver's start window
    BELOW_MINIMUM = "below_minimum"
    SESSION_COST = "session_cost"
    SESSION_VOIDED = "session_voided"  # the operator voided the session: nothing is owed
    HOLD_EXPIRY = "hold_expiry"  # settled from the running cost before the card network's window closed
    HOLD_LOST = "hold_lost"  # the provider cancelled the hold (e.g. it expired)
    CAPTURE_FAILED = "capture_failed"
    OPERATOR_REFUND = "operator_refund"
    OPERATOR_RELEASE = "operator_release"  # an operator released a failed payment's money


class Payment(BaseModel):
    """One driver's payment for one charging session on one connector."""

    model_config = ConfigDict(frozen=True)

    payment_id: str
    token_digest: str  # sha256 of the driver's token: the token itself is never stored
    charger_id: str
    connector_id: int
    currency: str
    settlement: Settlement
    hold_minor: int  # the hold, or the prepay, in minor units
    id_tag: str  # the OCPP idTag RemoteStartTransaction gives the charger
    state: PaymentState
    version: int = 0  # every saved change increments it: writes are conditional on it
    created_at: datetime
    updated_at: datetime
    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    authorized_at: datetime | None = None
    start_message_id: str | None = None
    start_sent_at: datetime | None = None
    session_id: str | None = None
    stop_requested_at: datetime | None = None
    due_minor: int | None = None  # the session's cost incl. VAT, as settled
    captured_minor: int = 0  # money taken: the capture, or the prepay received
    refunded_minor: int = 0
    refund_count: int = 0
    # An operator's refund requests already applied (request id -> minor units): a retried
    # request finds its id here and refunds nothing more.
    refund_requests: dict[str, int] = Field(default_factory=dict)
    uncollected_minor: int = 0  # cost above the hold (the cap came too late): not taken
    capture_attempts: int = 0
    next_attempt_at: datetime | None = None
    reason: Reason | None = None
    failure: str | None = None  # the provider's last error, for operators

    @property
    def kept_minor(self) -> int:
        """What the driver finally paid."""
        return self.captured_minor - self.refunded_minor


def transition(payment: Payment, to: PaymentState, now: datetime, **changes: Any) -> Payment:
    """The payment in state `to` with `changes`; InvalidTransition when the state machine forbids it."""
    if to not in TRANSITIONS[payment.state]:
        raise InvalidTransition(f"payment {payment.payment_id}: {payment.state.value} -> {to.value}")
    return changed(payment, now, state=to, **changes)


def changed(payment: Payment, now: datetime, **changes: Any) -> Payment:
    """The payment with `changes` in the same state: a new version, as every saved change is."""
    return payment.model_copy(update={**changes, "version": payment.version + 1, "updated_at": now})
