"""DynamoDB adapters for payments: the payment records and the provider events already handled.

Every change is a put conditional on the version the change was computed from, so two paths
(a webhook and the sweep, a retry and the capture stream) can never both apply a transition.
Lookups by token and tag go through keys-only indexes, then a consistent read of the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chargenet.adapters.dynamodb import conditional_failed
from chargenet.adapters.tables import TableModel, table_meta
from chargenet.domain.payments import Payment, PaymentState
from chargenet.services.payments.ports import PaymentStore, ProcessedEvents

EVENT_MEMORY = timedelta(days=7)  # Stripe retries a webhook for up to 3 days


class _ByToken(GlobalSecondaryIndex["PaymentItem"]):
    class Meta:
        index_name = "by-token"
        projection = KeysOnlyProjection()

    token_digest = UnicodeAttribute(hash_key=True)


class _ByTag(GlobalSecondaryIndex["PaymentItem"]):
    class Meta:
        index_name = "by-tag"
        projection = KeysOnlyProjection()

    id_tag = UnicodeAttribute(hash_key=True)


class _ByState(GlobalSecondaryIndex["PaymentItem"]):
    class Meta:
        index_name = "by-state"
        projection = AllProjection()

    state = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class PaymentItem(TableModel):
    Meta = table_meta("payments")
    by_token = _ByToken()
    by_tag = _ByTag()
    by_state = _ByState()

    payment_id = UnicodeAttribute(hash_key=True)
    token_digest = UnicodeAttribute()
    id_tag = UnicodeAttribute()
    state = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    version = NumberAttribute()
    body = UnicodeAttribute()  # the whole record; the attributes above are its keys and indexes

    @classmethod
    def of(cls, payment: Payment) -> PaymentItem:
        return cls(
            payment.payment_id,
            token_digest=payment.token_digest,
            id_tag=payment.id_tag,
            state=payment.state.value,
            created_at=payment.created_at,
            version=payment.version,
            body=payment.model_dump_json(),
        )

    def to_domain(self) -> Payment:
        return Payment.model_validate_json(self.body)


# Payment ids are hex (uuid4): no payment has a key starting with this.
SLOT_PREFIX = "checkout-slot#"


class CheckoutSlotItem(TableModel):
    """One of a connector's checkout slots, kept in the payments table: a conditional put takes it
    atomically, whatever the concurrency. It has none of the indexed attributes, so no index (and
    no listing of payments) ever sees it; a connector has at most `slots` of them, reused."""

    Meta = table_meta("payments")

    payment_id = UnicodeAttribute(hash_key=True)  # SLOT_PREFIX + "<charger>#<connector>#<n>"
    held_by = UnicodeAttribute()  # the payment whose checkout holds it
    held_until = NumberAttribute()  # epoch seconds: the checkout's expiry


class DynamoPaymentStore(PaymentStore):
    """Implements chargenet.services.payments.PaymentStore."""

    def create(self, payment: Payment) -> bool:
        return _put(PaymentItem.of(payment), PaymentItem.payment_id.does_not_exist())

    def save(self, payment: Payment) -> bool:
        return _put(PaymentItem.of(payment), PaymentItem.version == payment.version - 1)

    def get(self, payment_id: str) -> Payment | None:
        try:
            return PaymentItem.get(payment_id, consistent_read=True).to_domain()
        except DoesNotExist:
            return None

    def by_token(self, token_digest: str) -> Payment | None:
        return self._first(PaymentItem.by_token.query(token_digest, limit=1))

    def by_tag(self, id_tag: str) -> Payment | None:
        return self._first(PaymentItem.by_tag.query(id_tag, limit=1))

    def _first(self, keys: Iterable[PaymentItem]) -> Payment | None:
        for item in keys:
            return self.get(item.payment_id)
        return None

    def in_states(
        self, states: Sequence[PaymentState], created_before: datetime | None = None
    ) -> list[Payment]:
        # On the index's sort key: the items after the cutoff are never read (nor paid for).
        newer = PaymentItem.created_at < created_before if created_before is not None else None
        return [
            item.to_domain()
            for state in states
            for item in PaymentItem.by_state.query(state.value, range_key_condition=newer)
        ]

    def reserve_checkout(
        self, charger_id: str, connector_id: int, payment_id: str, now: datetime, until: datetime, slots: int
    ) -> bool:
        free = CheckoutSlotItem.payment_id.does_not_exist() | (
            CheckoutSlotItem.held_until <= int(now.timestamp())
        )
        for number in range(slots):
            slot = CheckoutSlotItem(
                f"{SLOT_PREFIX}{charger_id}#{connector_id}#{number}",
                held_by=payment_id,
                held_until=int(until.timestamp()),
            )
            if _put(slot, free):
                return True
        return False


def _put(item: Model, condition: Condition | None) -> bool:
    try:
        item.save(condition=condition)
    except PutError as error:
        if conditional_failed(error):
            return False
        raise
    return True


class ProcessedEventItem(TableModel):
    Meta = table_meta("payment_events")

    event_id = UnicodeAttribute(hash_key=True)
    processed_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute()  # TTL


class DynamoProcessedEvents(ProcessedEvents):
    """Implements chargenet.services.payments.ports.ProcessedEvents."""

    def seen(self, event_id: str) -> bool:
        try:
            ProcessedEventItem.get(event_id, consistent_read=True)
        except DoesNotExist:
            return False
        return True

    def remember(self, event_id: str, at: datetime) -> None:
        ProcessedEventItem(event_id, processed_at=at, expires_at=int((at + EVENT_MEMORY).timestamp())).save()
