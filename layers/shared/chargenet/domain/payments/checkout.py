"""Opening a payment: the hosted checkout it asks the provider for, the authorization that
secures the money, and the checkout that ends with nothing taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chargenet.domain.payments.config import PaymentConfig
from chargenet.domain.payments.errors import InvalidTransition, NotAuthorized, PaymentError
from chargenet.domain.payments.identifiers import checkout_key, token_digest
from chargenet.domain.payments.model import (
    SWISH,
    CheckoutMethod,
    Payment,
    PaymentState,
    Reason,
    Settlement,
    changed,
    transition,
)


def new_payment(
    config: PaymentConfig,
    *,
    payment_id: str,
    token: str,
    id_tag: str,
    charger_id: str,
    connector_id: int,
    currency: str,
    method: CheckoutMethod,
    now: datetime,
) -> Payment:
    hold = config.hold_minor(currency)
    if hold is None or method not in config.methods_for(currency):
        raise PaymentError(f"{method.value} payments in {currency} are not offered")
    return Payment(
        payment_id=payment_id,
        token_digest=token_digest(token),
        charger_id=charger_id,
        connector_id=connector_id,
        currency=currency,
        settlement=method.settlement,
        hold_minor=hold,
        id_tag=id_tag,
        state=PaymentState.CHECKOUT_OPEN,
        created_at=now,
        updated_at=now,
    )


@dataclass(frozen=True)
class CheckoutRequest:
    """What the provider's hosted checkout is asked for."""

    payment_id: str
    idempotency_key: str
    currency: str
    amount_minor: int
    settlement: Settlement
    method_types: tuple[str, ...]
    description: str
    success_url: str
    cancel_url: str
    expires_at: datetime


@dataclass(frozen=True)
class CheckoutCreated:
    checkout_session_id: str
    url: str


@dataclass(frozen=True)
class CheckoutFacts:
    checkout_session_id: str
    status: str  # open | complete | expired
    payment_intent_id: str | None


@dataclass(frozen=True)
class IntentFacts:
    """A provider payment (Stripe PaymentIntent) as it is now."""

    intent_id: str
    status: str
    currency: str  # upper case
    amount_capturable: int
    amount_received: int


def checkout_request(
    payment: Payment, config: PaymentConfig, *, success_url: str, cancel_url: str, now: datetime
) -> CheckoutRequest:
    methods = config.hold_methods if payment.settlement is Settlement.HOLD else (SWISH,)
    return CheckoutRequest(
        payment_id=payment.payment_id,
        idempotency_key=checkout_key(payment),
        currency=payment.currency,
        amount_minor=payment.hold_minor,
        settlement=payment.settlement,
        method_types=tuple(methods),
        description=_description(payment),
        success_url=success_url,
        cancel_url=cancel_url,
        expires_at=now + config.checkout_ttl,
    )


def _description(payment: Payment) -> str:
    what = "hold" if payment.settlement is Settlement.HOLD else "prepayment"
    return f"Charging at {payment.charger_id} connector {payment.connector_id} ({what})"


def checkout_opened(payment: Payment, created: CheckoutCreated, now: datetime) -> Payment:
    if payment.state is not PaymentState.CHECKOUT_OPEN:
        raise InvalidTransition(
            f"payment {payment.payment_id} is {payment.state.value}: its checkout is over"
        )
    return changed(payment, now, checkout_session_id=created.checkout_session_id)


def authorize(payment: Payment, intent: IntentFacts, now: datetime) -> Payment:
    """Money secured: a hold awaiting capture, or a prepay received. NotAuthorized otherwise."""
    if intent.currency != payment.currency:
        raise NotAuthorized(
            f"intent {intent.intent_id} is in {intent.currency}, payment in {payment.currency}"
        )
    if payment.settlement is Settlement.HOLD:
        if intent.status != "requires_capture" or intent.amount_capturable <= 0:
            raise NotAuthorized(f"intent {intent.intent_id} is {intent.status}: no hold to capture")
        # Never more than asked for: the capture is bounded by what we showed the driver.
        held = min(intent.amount_capturable, payment.hold_minor)
        return transition(
            payment,
            PaymentState.AUTHORIZED,
            now,
            payment_intent_id=intent.intent_id,
            hold_minor=held,
            authorized_at=now,
        )
    if intent.status != "succeeded" or intent.amount_received <= 0:
        raise NotAuthorized(f"intent {intent.intent_id} is {intent.status}: the prepayment has not arrived")
    return transition(
        payment,
        PaymentState.AUTHORIZED,
        now,
        payment_intent_id=intent.intent_id,
        hold_minor=intent.amount_received,
        captured_minor=intent.amount_received,
        authorized_at=now,
    )


def authorization_late(paid_at: datetime | None, now: datetime, config: PaymentConfig) -> bool:
    """Money that arrives after the driver's start window (a webhook delayed by an outage, or found
    by polling) must not start a charger the driver may have left: it is given back instead."""
    return paid_at is None or now - paid_at > config.start_timeout


def checkout_ended(payment: Payment, reason: Reason, now: datetime) -> Payment:
    return transition(payment, PaymentState.CANCELLED, now, reason=reason)
