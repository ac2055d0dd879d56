"""Fuzzing the Stripe webhook through the payments API handler: whatever arrives, a clear answer.

Generated inputs go through the real handler (functions/payments_api, API Gateway v2 events),
the real ProviderWebhooks and stripe's own signature check, with the payment services wired to
in-memory fakes (tests/payment_fakes.py) and a recording subscription side. The properties:
the handler never raises; every answer is JSON; a rejected input is a 400 and changes nothing
(payments, processed event ids, frames sent to chargers, tags, Stripe calls, subscribers); a 2xx
comes only for a correctly signed event.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargenet.adapters.stripe_gateway import StripeWebhookVerifier
from chargenet.services.payments import ACTED_ON, ProviderWebhooks
from tests.payment_fakes import PaymentWorld
from tests.unit.test_payments_api import api, call  # noqa: F401  (the module fixture)
from tests.unit.test_payments_webhooks import SECRET, checkout_completed, event, sign

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
EVENT_TYPES = [*sorted(ACTED_ON), "checkout.session.created", "charge.refunded", "", "x" * 300]


class RecordingSubscriptions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def card_saved(self, id_tag: str, checkout_session_id: str) -> object | None:
        self.calls.append(("card_saved", id_tag, checkout_session_id))
        return None

    def invoice_changed(self, id_tag: str, period: str, invoice_id: str) -> object | None:
        self.calls.append(("invoice_changed", id_tag, period, invoice_id))
        return None


class Harness:
    """One world per example, with a payment waiting for its checkout completion."""

    def __init__(self, api_module: Any) -> None:
        self.api = api_module
        self.world = PaymentWorld()
        self.world.clock.now = self.world.clock.now.fromtimestamp(time.time(), self.world.clock.now.tzinfo)
        self.world.add_charger()
        self.valid_event = json.loads(checkout_completed(self.world))
        self.subscriptions = RecordingSubscriptions()
        hooks = ProviderWebhooks(
            StripeWebhookVerifier(secret=lambda: SECRET),
            self.world.events,
            self.world.authorizations,
            self.world.clock,
            subscriptions=self.subscriptions,
        )
        api_module.provider_webhooks = lambda: hooks

    def state(self) -> Any:
        world = self.world
        return copy.deepcopy(
            (
                world.payments.payments,
                world.events.ids,
                world.channel.sent,
                world.pending.calls,
                world.tags.tags,
                world.gateway.calls,
                world.alarm.failed_payments,
                self.subscriptions.calls,
            )
        )

    def post(self, body: bytes, signature: str | None) -> dict:
        headers = {} if signature is None else {"stripe-signature": signature}
        before = self.state()
        response = call(self.api, "POST", "/stripe/webhook", body, headers)
        assert response["headers"]["Content-Type"] == "application/json"
        answer = json.loads(response["body"])
        assert response["statusCode"] in {200, 400}, answer
        if response["statusCode"] == 400:
            assert answer["error"] in {"invalid_signature"}, answer
            assert self.state() == before, "a rejected webhook changed state"
        return response


@pytest.fixture
def harness(api):  # noqa: F811
    original = api.provider_webhooks
    yield Harness(api)
    api.provider_webhooks = original


@FUZZ
@given(body=st.binary(max_size=2000), signature=st.none() | st.text(max_size=200))
def test_arbitrary_bytes_with_any_signature_header_are_refused(harness, body, signature):
    assert harness.post(body, signature)["statusCode"] == 400


signatures = st.one_of(
    st.just(""),
    st.text(max_size=120),
    st.builds(lambda t, v: f"t={t},v1={v}", st.text(max_size=15), st.text(max_size=70)),
    st.builds(lambda t: f"t={t}", st.integers()),
    st.builds(lambda v: f"v1={v}", st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
)


@FUZZ
@given(signature=signatures, age_s=st.integers(min_value=301, max_value=10**9))
def test_a_genuine_event_with_a_wrong_missing_or_stale_signature_is_refused(harness, signature, age_s):
    body = json.dumps(harness.valid_event).encode()
    assert harness.post(body, signature)["statusCode"] == 400
    # Older than the 300 s tolerance (stripe checks age only: a future time needs the secret too).
    stale = sign(body, at=int(time.time()) - age_s)
    assert harness.post(body, stale)["statusCode"] == 400
    assert harness.post(body, sign(body, "whsec_another_secret"))["statusCode"] == 400
    assert harness.post(body + b" ", sign(body))["statusCode"] == 400


@FUZZ
@given(document=json_values)
def test_signed_json_of_any_shape_is_answered_and_only_events_are_accepted(harness, document):
    body = json.dumps(document).encode()
    response = harness.post(body, sign(body))
    if response["statusCode"] == 200:
        assert isinstance(document, dict) and isinstance(document.get("id"), str)


def _set(document: dict, path: tuple[str, ...], value: Any) -> dict:
    mutated = copy.deepcopy(document)
    target = mutated
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return mutated


_DELETE = object()
FIELDS = [
    ("id",),
    ("type",),
    ("created",),
    ("data",),
    ("data", "object"),
    ("data", "object", "id"),
    ("data", "object", "object"),
    ("data", "object", "mode"),
    ("data", "object", "metadata"),
    ("data", "object", "payment_intent"),
    ("data", "object", "client_reference_id"),
]


@FUZZ
@given(
    path=st.sampled_from(FIELDS),
    value=json_values | st.just(_DELETE),
    kind=st.sampled_from(EVENT_TYPES),
    metadata=st.dictionaries(
        st.sampled_from(["payment_id", "subscriber_tag", "id_tag", "period"]), json_values, max_size=4
    ),
)
def test_signed_events_with_wrong_types_in_fields_change_nothing_when_refused(
    harness, path, value, kind, metadata
):
    document = _set(harness.valid_event, ("type",), kind)
    document = _set(document, ("data", "object", "metadata"), metadata)
    document = _set(document, path, value)
    body = json.dumps(document).encode()
    harness.post(body, sign(body))


@FUZZ
@given(kind=st.text(max_size=60).filter(lambda k: k not in ACTED_ON), obj=json_values)
def test_unknown_event_types_are_acknowledged_and_only_remembered(harness, kind, obj):
    body = event(kind, {"id": "x", "payload": obj}, event_id=f"evt_{time.monotonic_ns()}")
    before = harness.state()
    response = harness.post(body, sign(body))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["outcome"] == "ignored"
    after = harness.state()
    assert after[0] == before[0] and after[2:] == before[2:]  # only the event id was added
    assert len(after[1]) == len(before[1]) + 1


@pytest.mark.parametrize("size", [256 * 1024, 6 * 1024 * 1024])
def test_huge_bodies_are_answered(harness, size):
    junk = b"{" * size
    assert harness.post(junk, sign(junk))["statusCode"] == 400
    padded = json.dumps({**harness.valid_event, "padding": "x" * size}).encode()
    assert harness.post(padded, "t=1,v1=" + "0" * 64)["statusCode"] == 400
    assert harness.post(padded, sign(padded))["statusCode"] == 200


def test_regression_signed_events_of_the_wrong_shape_were_unhandled_exceptions(harness):
    """Before the event's shape was checked, these crashed the handler (a 500 with a traceback)
    or reached the payment services: a non-string type (unhashable list), a string where the
    data object was expected, metadata that is a list, a non-numeric or out-of-range created."""
    broken = [
        _set(harness.valid_event, ("type",), ["checkout.session.completed"]),
        _set(harness.valid_event, ("data",), "x"),
        _set(harness.valid_event, ("data", "object", "metadata"), ["payment_id"]),
        _set(harness.valid_event, ("data", "object"), [1, 2]),
        _set(harness.valid_event, ("created",), "soon"),
        _set(harness.valid_event, ("created",), 10**20),
        _set(
            _set(harness.valid_event, ("type",), "payment_intent.canceled"), ("data", "object", "id"), _DELETE
        ),
        _set(harness.valid_event, ("data", "object", "metadata"), {"payment_id": {"$ne": ""}}),
    ]
    for document in broken:
        body = json.dumps(document).encode()
        response = harness.post(body, sign(body))
        assert response["statusCode"] == 400, document
        assert "expected shape" in json.loads(response["body"])["message"]


def test_regression_a_non_ascii_or_null_body_signature_case_is_a_400(harness):
    """Found by the fuzz test: a non-ASCII Stripe-Signature made stripe's compare_digest raise
    TypeError, a signed `null` body crashed stripe.Event construction, and a body that is not
    UTF-8 crashed Powertools' decoded_body: all three were 500s with a traceback."""
    body = json.dumps(harness.valid_event).encode()
    assert harness.post(body, "t=0,v1=\x80")["statusCode"] == 400
    assert harness.post(b"null", sign(b"null"))["statusCode"] == 400
    assert harness.post(b"\x80\xff", sign(b"\x80\xff"))["statusCode"] == 400
