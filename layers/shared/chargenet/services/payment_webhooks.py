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
from typing import Any, Protocol

from chargenet.services.payments import PaymentAuthorizations


class WebhookVerifier(Protocol):
    def verify(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The event, when the signature is genuine and fresh; raises WebhookRejected otherwise."""
        ...


class ProcessedEvents(Protocol):
    def seen(self, event_id: str) -> bool: ...

    def remember(self, event_id: str, at: datetime) -> None: ...


class SubscriptionEvents(Protocol):
    """The subscription side (chargenet.services.subscriptions.SubscriptionBilling)."""

    def card_saved(self, id_tag: str, checkout_session_id: str) -> object | None: ...

    def invoice_changed(self, id_tag: str, period: str, invoice_id: str) -> object | None: ...


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


@dataclass(frozen=True)
class ProviderWebhooks:
    verifier: WebhookVerifier
    events: ProcessedEvents
    authorizations: PaymentAuthorizations
    clock: Callable[[], datetime]
    subscriptions: SubscriptionEvents | None = None

    def receive(self, payload: bytes, signature: str | None) -> WebhookOutcome:
        event = self.verifier.verify(payload, signature)
        if self.events.seen(event["id"]):
            return WebhookOutcome.DUPLICATE
        outcome = self._dispatch(event)
        # Remembered only once handled: a failure is answered 5xx and the provider sends it again.
        self.events.remember(event["id"], self.clock())
        return outcome

    def _dispatch(self, event: Mapping[str, Any]) -> WebhookOutcome:
        kind = event["type"]
        obj = (event.get("data") or {}).get("object") or {}
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
            result = self.authorizations.hold_cancelled(payment_id, obj["id"])
        else:
            intent_id = _intent_id(obj)
            if intent_id is None:
                return WebhookOutcome.IGNORED  # a checkout without a payment (setup mode)
            paid_at = datetime.fromtimestamp(int(event["created"]), UTC)
            result = self.authorizations.money_secured(payment_id, intent_id, paid_at)
        return WebhookOutcome.HANDLED if result is not None else WebhookOutcome.UNKNOWN_PAYMENT

    def _subscription_event(self, kind: str, obj: Mapping[str, Any]) -> WebhookOutcome | None:
        """A saved card (setup-mode checkout) or a settled invoice of a subscriber; None for others."""
        if self.subscriptions is None:
            return None
        metadata = obj.get("metadata") or {}
        if kind == "checkout.session.completed" and obj.get("mode") == "setup":
            tag = metadata.get("subscriber_tag")
            result = self.subscriptions.card_saved(tag, obj["id"]) if tag else None
        elif kind in INVOICE_SETTLED and metadata.get("id_tag") and metadata.get("period"):
            result = self.subscriptions.invoice_changed(metadata["id_tag"], metadata["period"], obj["id"])
        else:
            return None
        return WebhookOutcome.HANDLED if result is not None else WebhookOutcome.UNKNOWN_PAYMENT


def _payment_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata") or {}
    return metadata.get("payment_id") or obj.get("client_reference_id")


def _intent_id(obj: Mapping[str, Any]) -> str | None:
    """A checkout session names its intent (an id, or the expanded object); an intent is one."""
    if obj.get("object") == "payment_intent":
        return obj.get("id")
    intent = obj.get("payment_intent")
    return intent.get("id") if isinstance(intent, Mapping) else intent
