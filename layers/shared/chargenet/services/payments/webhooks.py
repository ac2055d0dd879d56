"""Provider webhooks: verified always, handled once per event id, in any order.

Events repeat and arrive out of order, so none is trusted for the state of the money: each one
only says which payment to look at, and the payment services ask the provider for the current
state and change the record with conditional writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chargenet.domain.payments import WebhookRejected
from chargenet.services.payments.authorizations import PaymentAuthorizations
from chargenet.services.payments.ports import ProcessedEvents, SubscriptionEvents, WebhookVerifier


class WebhookOutcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # an event type we do not act on
    UNKNOWN_PAYMENT = "unknown_payment"  # not one of our payments (another integration on the account)


SECURED = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
    }
)
CHECKOUT_CLOSED = frozenset({"checkout.session.expired", "checkout.session.async_payment_failed"})
INTENT_CANCELED = "payment_intent.canceled"
# Either says "look at this invoice again": the invoice's state as Stripe has it now decides.
INVOICE_SETTLED = frozenset({"invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"})
ACTED_ON = SECURED | CHECKOUT_CLOSED | {INTENT_CANCELED} | INVOICE_SETTLED
# The last second a datetime holds: a later `created` is no event time.
_MAX_EPOCH_S = 253_402_300_799


class _Shape(BaseModel):
    # Strict: a signed event with a number where Stripe sends a string is malformed, not coerced.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _IntentRef(_Shape):
    id: str


class _CustomerDetails(_Shape):
    email: str | None = None


class Subject(_Shape):
    """The fields of the event's object that say which payment, intent or subscriber it is about."""

    id: str
    object: str | None = None
    mode: str | None = None
    client_reference_id: str | None = None
    metadata: dict[str, str] | None = None
    payment_intent: str | _IntentRef | None = None
    customer_details: _CustomerDetails | None = None  # a completed checkout: what the driver entered


class _Data(_Shape):
    object: dict[str, Any]


class ProviderEvent(_Shape):
    """A verified event, checked for the shape the handlers read before anything is looked up."""

    id: str = Field(min_length=1)
    type: str
    created: int = Field(ge=0, le=_MAX_EPOCH_S)
    data: _Data

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> tuple[ProviderEvent, Subject | None]:
        """The event and, for a type acted on, its subject; WebhookRejected for any other shape."""
        try:
            parsed = cls.model_validate(event)
            subject = Subject.model_validate(parsed.data.object) if parsed.type in ACTED_ON else None
        except ValidationError as error:
            # Field names only: the values are the sender's.
            fields = sorted({".".join(map(str, e["loc"])) for e in error.errors()})
            raise WebhookRejected(
                f"the event does not have the expected shape ({', '.join(fields)})"
            ) from None
        return parsed, subject


@dataclass(frozen=True)
class ProviderWebhooks:
    verifier: WebhookVerifier
    events: ProcessedEvents
    authorizations: PaymentAuthorizations
    clock: Callable[[], datetime]
    subscriptions: SubscriptionEvents | None = None

    def receive(self, payload: bytes, signature: str | None) -> WebhookOutcome:
        event, subject = ProviderEvent.parse(self.verifier.verify(payload, signature))
        if self.events.seen(event.id):
            return WebhookOutcome.DUPLICATE
        outcome = WebhookOutcome.IGNORED if subject is None else self._dispatch(event, subject)
        # Remembered only once handled: a failure is answered 5xx and the provider sends it again.
        self.events.remember(event.id, self.clock())
        return outcome

    def _dispatch(self, event: ProviderEvent, obj: Subject) -> WebhookOutcome:
        kind = event.type
        if (subscribed := self._subscription_event(kind, obj)) is not None:
            return subscribed
        payment_id = _payment_id(obj)
        if kind not in SECURED | CHECKOUT_CLOSED | {INTENT_CANCELED}:
            return WebhookOutcome.IGNORED
        if payment_id is None:
            return WebhookOutcome.UNKNOWN_PAYMENT
        if kind in CHECKOUT_CLOSED:
            result = self.authorizations.checkout_closed(payment_id)
        elif kind == INTENT_CANCELED:
            result = self.authorizations.hold_cancelled(payment_id, obj.id)
        else:
            intent_id = _intent_id(obj)
            if intent_id is None:
                return WebhookOutcome.IGNORED  # a checkout without a payment (setup mode)
            paid_at = datetime.fromtimestamp(event.created, UTC)
            result = self.authorizations.money_secured(payment_id, intent_id, paid_at)
            # After the start, which the driver waits for; a failure here is answered 5xx and the
            # redelivery sets it then (money_secured changes nothing the second time).
            if result is not None and (email := _checkout_email(kind, obj)):
                self.authorizations.receipt_to(payment_id, intent_id, email)
        return WebhookOutcome.HANDLED if result is not None else WebhookOutcome.UNKNOWN_PAYMENT

    def _subscription_event(self, kind: str, obj: Subject) -> WebhookOutcome | None:
        """A saved card (setup-mode checkout) or a settled invoice of a subscriber; None for others."""
        if self.subscriptions is None:
            return None
        metadata = obj.metadata or {}
        if kind == "checkout.session.completed" and obj.mode == "setup":
            tag = metadata.get("subscriber_tag")
            result = self.subscriptions.card_saved(tag, obj.id) if tag else None
        elif kind in INVOICE_SETTLED and metadata.get("id_tag") and metadata.get("period"):
            result = self.subscriptions.invoice_changed(metadata["id_tag"], metadata["period"], obj.id)
        else:
            return None
        return WebhookOutcome.HANDLED if result is not None else WebhookOutcome.UNKNOWN_PAYMENT


def _payment_id(obj: Subject) -> str | None:
    return (obj.metadata or {}).get("payment_id") or obj.client_reference_id


def _checkout_email(kind: str, obj: Subject) -> str | None:
    """The e-mail the driver entered on the hosted page: only a completed checkout carries it."""
    if kind != "checkout.session.completed" or obj.customer_details is None:
        return None
    return obj.customer_details.email or None


def _intent_id(obj: Subject) -> str | None:
    """A checkout session names its intent (an id, or the expanded object); an intent is one."""
    if obj.object == "payment_intent":
        return obj.id
    intent = obj.payment_intent
    return intent.id if isinstance(intent, _IntentRef) else intent
