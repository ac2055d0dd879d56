"""The payments DynamoDB adapters against moto server, with the tables the template creates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chargenet.adapters.payments_dynamodb import SLOT_PREFIX, DynamoPaymentStore, DynamoProcessedEvents
from chargenet.domain import payments as p
from chargenet.domain.payments import CheckoutMethod, IntentFacts, PaymentConfig, PaymentState

# Now, not a fixed date: the shared stack's payment monitor sweeps while these tests run, and it
# would expire a checkout opened long ago, or time out a start authorized long ago, mid-test.
T0 = datetime.now(UTC)
CONFIG = PaymentConfig(holds={"EUR": Decimal("50.00")})


def new(payment_id: str, tag: str = "PAY0000000000000001") -> p.Payment:
    return p.new_payment(
        CONFIG,
        payment_id=payment_id,
        token=f"token-of-{payment_id}",
        id_tag=tag,
        charger_id="CP-1",
        connector_id=1,
        currency="EUR",
        method=CheckoutMethod.CARD,
        now=T0,
    )


def unique(name: str) -> str:
    # The stack is shared by the whole run: every test writes its own payments.
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_a_payment_is_created_once_and_read_back_whole(stack) -> None:
    store, payment_id = DynamoPaymentStore(), unique("pay")
    assert store.create(new(payment_id))
    assert not store.create(new(payment_id))
    assert store.get(payment_id) == new(payment_id)
    assert store.get(unique("nope")) is None


def test_changes_are_conditional_on_the_version_they_were_computed_from(stack) -> None:
    store, payment_id = DynamoPaymentStore(), unique("pay")
    store.create(new(payment_id))
    intent = IntentFacts("pi_1", "requires_capture", "EUR", 5000, 0)
    authorized = p.authorize(new(payment_id), intent, T0 + timedelta(seconds=5))
    assert store.save(authorized)
    assert not store.save(authorized)  # a second writer with the same base version loses
    cancelled = p.checkout_ended(new(payment_id), p.Reason.CHECKOUT_EXPIRED, T0)  # from the stale version 0
    assert not store.save(cancelled)
    assert store.get(payment_id).state is PaymentState.AUTHORIZED


def test_lookups_by_token_digest_tag_and_state(stack) -> None:
    store = DynamoPaymentStore()
    open_id, ended_id = unique("pay"), unique("pay")
    open_tag = f"PAY{uuid.uuid4().hex[:16].upper()}"
    store.create(new(open_id, open_tag))
    store.create(new(ended_id, f"PAY{uuid.uuid4().hex[:16].upper()}"))
    store.save(p.checkout_ended(store.get(ended_id), p.Reason.CHECKOUT_EXPIRED, T0))
    assert store.by_token(p.token_digest(f"token-of-{ended_id}")).payment_id == ended_id
    assert store.by_token(p.token_digest(unique("guess"))) is None
    assert store.by_tag(open_tag).payment_id == open_id
    open_ids = {x.payment_id for x in store.in_states(p.OPEN_STATES)}
    cancelled_ids = {x.payment_id for x in store.in_states([PaymentState.CANCELLED])}
    assert open_id in open_ids and ended_id not in open_ids
    assert ended_id in cancelled_ids and open_id not in cancelled_ids


def test_open_checkouts_are_listed_only_when_created_before_the_cutoff(stack) -> None:
    store, payment_id = DynamoPaymentStore(), unique("pay")
    store.create(new(payment_id))  # created at T0
    listed = {x.payment_id for x in store.in_states([PaymentState.CHECKOUT_OPEN], created_before=T0)}
    assert payment_id not in listed
    cutoff = T0 + timedelta(seconds=1)
    listed = {x.payment_id for x in store.in_states([PaymentState.CHECKOUT_OPEN], created_before=cutoff)}
    assert payment_id in listed


def test_a_connectors_checkout_slots_are_taken_atomically_and_free_again_when_they_expire(stack) -> None:
    store, charger = DynamoPaymentStore(), unique("CP")
    until = T0 + CONFIG.checkout_ttl
    taken = [store.reserve_checkout(charger, 1, unique("pay"), T0, until, 2) for _ in range(3)]
    assert taken == [True, True, False]
    assert store.reserve_checkout(charger, 2, unique("pay"), T0, until, 2)  # another connector
    assert store.reserve_checkout(charger, 1, unique("pay"), until, until + CONFIG.checkout_ttl, 2)
    assert not any(x.payment_id.startswith(SLOT_PREFIX) for x in store.in_states(list(PaymentState)))


def test_processed_events_are_remembered(stack) -> None:
    events = DynamoProcessedEvents()
    first, second = unique("evt"), unique("evt")
    assert not events.seen(first)
    events.remember(first, T0)
    assert events.seen(first) and not events.seen(second)
