"""Stripe webhooks: stripe's own verification, signatures computed by hand, dedupe and ordering."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from chargenet.adapters.stripe_gateway import StripeWebhookVerifier
from chargenet.domain.payments import PaymentProviderUnavailable, PaymentState, WebhookRejected
from chargenet.services.payments import WebhookOutcome
from tests.payment_fakes import PaymentWorld

SECRET = "whsec_test_0123456789abcdef"


def sign(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(kind: str, obj: dict, event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()


@pytest.fixture
def world() -> PaymentWorld:
    world = PaymentWorld()
    # The services' clock is real time here: stripe's tolerance check uses the wall clock too.
    world.clock.now = world.clock.now.fromtimestamp(time.time(), world.clock.now.tzinfo)
    world.add_charger()
    return world


@pytest.fixture
def hooks(world):
    return world.webhooks(StripeWebhookVerifier(secret=lambda: SECRET))


def checkout_completed(world: PaymentWorld, event_id: str = "evt_1", email: str | None = None) -> bytes:
    from chargenet.domain.payments import CheckoutMethod

    world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, "https://pay.example")
    request = world.gateway.requests[-1]
    intent_id = world.gateway.pay(request)
    obj = {
        "id": "cs_1",
        "object": "checkout.session",
        "payment_intent": intent_id,
        "client_reference_id": request.payment_id,
        "metadata": {"payment_id": request.payment_id},
        "payment_status": "unpaid",  # a manual-capture hold is not paid yet: we ask the intent
        "customer_details": {"email": email, "name": None},
    }
    return event("checkout.session.completed", obj, event_id)


def test_a_signed_checkout_completion_authorizes_and_starts_the_charger(world, hooks) -> None:
    payload = checkout_completed(world)
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.HANDLED
    assert world.payments.only().state is PaymentState.AUTHORIZED
    assert [frame[2] for frame in world.sent_frames()] == ["RemoteStartTransaction"]


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "No Stripe-Signature"),
        ("", "No Stripe-Signature"),
        ("garbage", "Unable to extract timestamp"),
        ("t=123", "No signatures found with expected scheme"),
    ],
)
def test_unsigned_events_are_rejected(world, hooks, signature, reason) -> None:
    payload = checkout_completed(world)
    with pytest.raises(WebhookRejected, match=reason):
        hooks.receive(payload, signature)
    assert world.payments.only().state is PaymentState.CHECKOUT_OPEN
    assert world.events.ids == set()


def test_a_signature_with_another_secret_is_rejected(world, hooks) -> None:
    payload = checkout_completed(world)
    with pytest.raises(WebhookRejected, match="No signatures found matching"):
        hooks.receive(payload, sign(payload, secret="whsec_someone_else"))


def test_a_tampered_body_is_rejected(world, hooks) -> None:
    payload = checkout_completed(world)
    signature = sign(payload)
    with pytest.raises(WebhookRejected):
        hooks.receive(payload.replace(b"unpaid", b"paid  "), signature)


def test_a_stale_timestamp_is_rejected_even_when_correctly_signed(world, hooks) -> None:
    payload = checkout_completed(world)
    with pytest.raises(WebhookRejected, match="tolerance"):
        hooks.receive(payload, sign(payload, at=int(time.time()) - 301))
    assert hooks.receive(payload, sign(payload, at=int(time.time()) - 290)) is WebhookOutcome.HANDLED


def test_a_replayed_event_id_is_handled_once(world, hooks) -> None:
    payload = checkout_completed(world)
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.HANDLED
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.DUPLICATE
    assert len(world.channel.sent) == 1


def test_an_unknown_event_type_is_acknowledged_and_ignored(world, hooks) -> None:
    payload = event("customer.created", {"id": "cus_1", "object": "customer"}, "evt_9")
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.IGNORED
    assert world.events.ids == {"evt_9"}


def test_an_event_for_a_payment_that_is_not_ours_is_acknowledged(world, hooks) -> None:
    payload = event("payment_intent.canceled", {"id": "pi_x", "object": "payment_intent", "metadata": {}})
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.UNKNOWN_PAYMENT


def test_the_intent_event_before_the_checkout_event_starts_the_charger_once(world, hooks) -> None:
    completed = checkout_completed(world, "evt_2")
    payment = world.payments.only()
    capturable = event(
        "payment_intent.amount_capturable_updated",
        {
            "id": f"pi_{payment.payment_id}",
            "object": "payment_intent",
            "metadata": {"payment_id": payment.payment_id},
        },
        "evt_1",
    )
    assert hooks.receive(capturable, sign(capturable)) is WebhookOutcome.HANDLED
    assert hooks.receive(completed, sign(completed)) is WebhookOutcome.HANDLED
    assert world.payments.only().state is PaymentState.AUTHORIZED
    assert len(world.channel.sent) == 1


def test_an_expired_checkout_cancels_the_open_payment(world, hooks) -> None:
    checkout_completed(world)
    payment = world.payments.only()
    payload = event(
        "checkout.session.expired",
        {"id": "cs_1", "object": "checkout.session", "metadata": {"payment_id": payment.payment_id}},
        "evt_3",
    )
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.HANDLED
    assert world.payments.only().state is PaymentState.CANCELLED


def test_without_a_real_secret_nothing_is_accepted(world) -> None:
    """The template's random placeholder (or an empty value) never verifies anything."""
    for placeholder in ("", "Zx81randomplaceholder"):
        hooks = world.webhooks(StripeWebhookVerifier(secret=lambda value=placeholder: value))
        payload = checkout_completed(world)
        with pytest.raises(PaymentProviderUnavailable, match="webhook secret is not set"):
            hooks.receive(payload, sign(payload, secret=placeholder or "x"))


def test_a_body_that_is_not_an_event_is_rejected(hooks) -> None:
    payload = b'{"hello": "world"}'
    with pytest.raises(WebhookRejected, match="not a Stripe event"):
        hooks.receive(payload, sign(payload))


# ------------------------------------------------------------------ the receipt e-mail
def test_the_receipt_goes_to_the_email_entered_at_checkout(world, hooks) -> None:
    payload = checkout_completed(world, email="driver@example.com")
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.HANDLED
    payment = world.payments.only()
    assert world.gateway.receipt_emails == {payment.payment_intent_id: "driver@example.com"}
    assert [frame[2] for frame in world.sent_frames()] == ["RemoteStartTransaction"]


def test_without_an_email_no_receipt_address_is_set(world, hooks) -> None:
    payload = checkout_completed(world)
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.HANDLED
    assert world.gateway.receipt_emails == {}


def test_the_receipt_is_set_even_when_the_intent_event_authorized_first(world, hooks) -> None:
    completed = checkout_completed(world, "evt_2", email="driver@example.com")
    payment = world.payments.only()
    intent_id = f"pi_{payment.payment_id}"
    capturable = event(
        "payment_intent.amount_capturable_updated",
        {"id": intent_id, "object": "payment_intent", "metadata": {"payment_id": payment.payment_id}},
        "evt_1",
    )
    assert hooks.receive(capturable, sign(capturable)) is WebhookOutcome.HANDLED
    assert world.gateway.receipt_emails == {}  # an intent event carries no e-mail
    assert hooks.receive(completed, sign(completed)) is WebhookOutcome.HANDLED
    assert world.gateway.receipt_emails == {intent_id: "driver@example.com"}


def test_a_failed_receipt_call_is_retried_by_the_redelivery_without_a_second_start(world, hooks) -> None:
    payload = checkout_completed(world, email="driver@example.com")
    world.gateway.receipt_failures.append(PaymentProviderUnavailable("APIConnectionError: timed out"))
    with pytest.raises(PaymentProviderUnavailable):
        hooks.receive(payload, sign(payload))
    assert world.events.ids == set()  # not remembered: the provider sends it again
    assert hooks.receive(payload, sign(payload)) is WebhookOutcome.HANDLED
    assert list(world.gateway.receipt_emails.values()) == ["driver@example.com"]
    assert [frame[2] for frame in world.sent_frames()] == ["RemoteStartTransaction"]


def test_a_malformed_email_field_is_rejected_before_anything_happens(world, hooks) -> None:
    payload = checkout_completed(world).replace(b'"email": null', b'"email": 42')
    with pytest.raises(WebhookRejected, match="customer_details"):
        hooks.receive(payload, sign(payload))
    assert world.payments.only().state is PaymentState.CHECKOUT_OPEN
