"""What the payment services need from the world: the payment store, the provider (Stripe),
the tag directory, the failure alarm, sessions and billing records, and for webhooks the
signature check, the processed-event log and the subscription side. The adapters implement them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import SessionRecord, TagStatus
from chargenet.domain.payments import (
    CheckoutCreated,
    CheckoutFacts,
    CheckoutRequest,
    IntentFacts,
    Payment,
    PaymentState,
)
from chargenet.domain.sessions import SessionEvent


class PaymentStore(Protocol):
    def create(self, payment: Payment) -> bool:
        """Store a new payment; False when the id exists."""
        ...

    def save(self, payment: Payment) -> bool:
        """Store the change unless the stored version is not `payment.version - 1` (someone else won)."""
        ...

    def get(self, payment_id: str) -> Payment | None: ...

    def by_token(self, token_digest: str) -> Payment | None: ...

    def by_tag(self, id_tag: str) -> Payment | None: ...

    def in_states(
        self, states: Sequence[PaymentState], created_before: datetime | None = None
    ) -> list[Payment]:
        """The payments in `states`; with `created_before`, only those created earlier."""
        ...

    def reserve_checkout(
        self, charger_id: str, connector_id: int, payment_id: str, now: datetime, until: datetime, slots: int
    ) -> bool:
        """Hold one of the connector's `slots` checkout slots for `payment_id` until `until` (a slot
        whose hold has passed is free again), atomically; False when every slot is held."""
        ...


class PaymentGateway(Protocol):
    """The payment provider (Stripe). Raises the domain's PaymentProviderError family."""

    def create_checkout(self, request: CheckoutRequest) -> CheckoutCreated: ...

    def checkout(self, checkout_session_id: str) -> CheckoutFacts: ...

    def intent(self, intent_id: str) -> IntentFacts: ...

    def set_receipt_email(self, intent_id: str, email: str) -> None: ...

    def capture(self, intent_id: str, amount_minor: int, idempotency_key: str) -> None: ...

    def cancel(self, intent_id: str, idempotency_key: str) -> None: ...

    def refund(self, intent_id: str, amount_minor: int, idempotency_key: str) -> None: ...


class TagIssuer(Protocol):
    """The tag directory's write side (DynamoTagDirectory.put)."""

    def put(
        self, id_tag: str, status: TagStatus, max_concurrent: int, expires_at: datetime | None
    ) -> None: ...


class PaymentAlarm(Protocol):
    def failed(self, payment: Payment) -> None:
        """A payment's money could not be settled (its first deferral, or the failed state): count
        it where the alarm watches."""
        ...


class SessionReader(Protocol):
    def get(self, session_id: str) -> SessionRecord | None: ...

    def events(self, session_id: str) -> list[SessionEvent]: ...


class CdrReader(Protocol):
    def get(self, cdr_id: str) -> BillingRecord | None: ...


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
