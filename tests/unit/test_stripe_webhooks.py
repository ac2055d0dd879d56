"""The local Stripe's events: shape, signature (checked by the stripe library), delivery with retries."""

from __future__ import annotations

import json
import queue
import time

import pytest
import stripe

from chargenet_local.httpserve import HttpServer, Request, Response
from chargenet_local.stripe_webhooks import (
    WebhookSender,
    new_event,
    signature_header,
    signature_valid,
)

SECRET = "whsec_local_test"


def test_event_has_stripes_shape():
    event = new_event("checkout.session.completed", {"id": "cs_test_1", "object": "checkout.session"})
    assert event["id"].startswith("evt_")
    assert event["object"] == "event"
    assert event["type"] == "checkout.session.completed"
    assert event["livemode"] is False
    assert event["api_version"] == stripe.api_version
    assert abs(event["created"] - time.time()) < 5
    assert event["data"]["object"]["id"] == "cs_test_1"


def test_the_stripe_library_verifies_the_signature():
    payload = json.dumps(new_event("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"}))
    header = signature_header(payload.encode(), SECRET, int(time.time()))

    event = stripe.Webhook.construct_event(payload, header, SECRET)

    assert event.type == "payment_intent.succeeded"
    assert event.data.object.id == "pi_1"


def test_signature_format():
    header = signature_header(b"{}", SECRET, 1700000000)
    timestamp, signature = header.split(",")
    assert timestamp == "t=1700000000"
    assert signature.startswith("v1=") and len(signature) == 3 + 64


@pytest.mark.parametrize(
    ("payload", "secret", "age_s"),
    [(b'{"tampered": true}', SECRET, 0), (b"{}", "whsec_other", 0), (b"{}", SECRET, 301)],
)
def test_tampered_wrong_secret_or_stale_events_are_refused(payload, secret, age_s):
    header = signature_header(b"{}", SECRET, int(time.time()) - age_s)

    assert not signature_valid(payload, header, secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.decode(), header, secret)


def test_a_valid_signature_is_accepted():
    assert signature_valid(b"{}", signature_header(b"{}", SECRET, int(time.time())), SECRET)
    assert not signature_valid(b"{}", "garbage", SECRET)


class _Receiver:
    """An endpoint answering with the given statuses in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: queue.Queue[Request] = queue.Queue()
        self.server = HttpServer(self.handle)

    def handle(self, request: Request) -> Response:
        self.received.put(request)
        return Response(self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
def sender():
    sender = WebhookSender(attempts=3, first_delay_s=0.05)
    yield sender
    sender.close()


def test_delivery_is_retried_until_accepted(sender):
    receiver = _Receiver([500, 503])
    receiver.server.start()
    try:
        endpoint = sender.add(f"{receiver.server.url}/hook", SECRET)
        sender.send(new_event("checkout.session.completed", {"id": "cs_test_1"}))
        attempts = [receiver.received.get(timeout=5) for _ in range(3)]
    finally:
        receiver.server.stop()

    assert endpoint.id.startswith("we_")
    for attempt in attempts:
        event = stripe.Webhook.construct_event(attempt.body, attempt.header("stripe-signature"), SECRET)
        assert event.data.object.id == "cs_test_1"
        assert attempt.header("content-type").startswith("application/json")
    assert receiver.received.empty()


def test_only_subscribed_endpoints_receive_an_event(sender):
    receiver = _Receiver([])
    receiver.server.start()
    try:
        sender.add(f"{receiver.server.url}/expired", SECRET, ["checkout.session.expired"])
        removed = sender.add(f"{receiver.server.url}/removed", SECRET)
        sender.remove(removed.id)
        sender.send(new_event("checkout.session.completed", {"id": "cs_test_1"}))
        sender.send(new_event("checkout.session.expired", {"id": "cs_test_2"}))
        first = receiver.received.get(timeout=5)
        time.sleep(0.2)
    finally:
        receiver.server.stop()

    assert first.path == "/expired"
    assert json.loads(first.body)["type"] == "checkout.session.expired"
    assert receiver.received.empty()
