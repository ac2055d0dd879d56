"""localstripe's gaps, filled: object shapes, capture/refund limits, idempotency, form encoding."""

from __future__ import annotations

import threading
import time

import pytest

from chargenet_local.httpserve import Response, json_response
from chargenet_local.stripe_gaps import (
    IdempotencyCache,
    Ledger,
    capture_refusal,
    normalise,
    refund_refusal,
)
from chargenet_local.stripe_local import decode_form, encode_form


def localstripe_charge(*, captured: bool, refunds: list[dict] | None = None) -> dict:
    refunds = refunds or []
    return {
        "id": "ch_1",
        "object": "charge",
        "amount": 5000,
        "captured": captured,
        "status": "succeeded",
        "amount_refunded": sum(r["amount"] for r in refunds),
        "refunds": {"object": "list", "data": refunds, "has_more": False, "total_count": len(refunds)},
    }


def localstripe_intent(status: str, charge: dict | None) -> dict:
    """A PaymentIntent as localstripe 1.15 exports it: the whole charge embedded, `charges` still there."""
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 5000,
        "currency": "eur",
        "status": status,
        "latest_charge": charge,
        "charges": {"object": "list", "data": [charge] if charge else []},
    }


def test_an_authorised_intent_reports_what_is_capturable():
    intent = normalise(localstripe_intent("requires_capture", localstripe_charge(captured=False)), Ledger())

    assert intent["amount_capturable"] == 5000
    assert intent["amount_received"] == 0
    assert intent["latest_charge"] == "ch_1"  # an id unless expanded, as Stripe answers
    assert "charges" not in intent


def test_latest_charge_stays_an_object_when_expanded():
    raw = localstripe_intent("requires_capture", localstripe_charge(captured=False))

    intent = normalise(raw, Ledger(), ["latest_charge"])

    assert intent["latest_charge"]["id"] == "ch_1"
    assert intent["latest_charge"]["amount_captured"] == 0


def test_a_partial_capture_is_not_a_refund():
    release = {"id": "re_release", "object": "refund", "amount": 1790}
    ledger = Ledger()
    ledger.record_capture("ch_1", 1790, ["re_release"])
    raw = localstripe_intent("succeeded", localstripe_charge(captured=True, refunds=[release]))

    intent = normalise(raw, ledger, ["latest_charge"])

    charge = intent["latest_charge"]
    assert intent["amount_received"] == 3210
    assert intent["amount_capturable"] == 0
    assert (charge["amount_captured"], charge["amount_refunded"], charge["refunded"]) == (3210, 0, False)
    assert charge["refunds"]["data"] == []


def test_refunds_after_a_partial_capture_count_against_the_captured_amount():
    release = {"id": "re_release", "object": "refund", "amount": 1790}
    refund = {"id": "re_real", "object": "refund", "amount": 3210}
    ledger = Ledger()
    ledger.record_capture("ch_1", 1790, ["re_release"])

    charge = normalise(localstripe_charge(captured=True, refunds=[release, refund]), ledger)

    assert (charge["amount_refunded"], charge["refunded"]) == (3210, True)
    assert [r["id"] for r in charge["refunds"]["data"]] == ["re_real"]


def test_fields_localstripe_cannot_hold_are_shown_on_the_intent():
    ledger = Ledger()
    ledger.record_intent("pi_1", payment_method_types=["swish"], description="Charging at CP-1")

    intent = normalise(localstripe_intent("succeeded", localstripe_charge(captured=True)), ledger)

    assert intent["payment_method_types"] == ["swish"]
    assert intent["description"] == "Charging at CP-1"
    assert intent["cancellation_reason"] is None
    assert intent["amount_received"] == 5000


def test_errors_get_stripes_types_and_codes():
    declined = {"error": {"type": "invalid_request_error", "code": "card_declined", "message": "declined"}}
    missing = {"error": {"type": "invalid_request_error", "message": "Not Found"}}

    assert normalise(declined, Ledger())["error"]["type"] == "card_error"
    assert normalise(missing, Ledger())["error"]["code"] == "resource_missing"


@pytest.mark.parametrize(
    ("status", "amount", "code"),
    [
        ("requires_capture", 5001, "amount_too_large"),
        ("requires_capture", 0, "amount_too_large"),
        ("succeeded", None, "payment_intent_unexpected_state"),
        ("canceled", 100, "payment_intent_unexpected_state"),
    ],
)
def test_impossible_captures_are_refused(status, amount, code):
    intent = normalise(
        localstripe_intent(status, localstripe_charge(captured=status == "succeeded")), Ledger()
    )

    refusal = capture_refusal(intent, amount)

    assert refusal is not None and refusal.status == 400
    assert refusal.body["error"]["code"] == code
    assert refusal.body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("amount", [None, 1, 5000])
def test_captures_up_to_the_hold_pass(amount):
    intent = normalise(localstripe_intent("requires_capture", localstripe_charge(captured=False)), Ledger())

    assert capture_refusal(intent, amount) is None


def test_refunds_above_what_is_left_are_refused():
    ledger = Ledger()
    ledger.record_capture("ch_1", 1790, ["re_release"])
    release = {"id": "re_release", "object": "refund", "amount": 1790}
    partly = {"id": "re_1", "object": "refund", "amount": 1000}
    charge = normalise(localstripe_charge(captured=True, refunds=[release, partly]), ledger)

    assert refund_refusal(charge, 2210) is None
    assert refund_refusal(charge, None) is None
    refusal = refund_refusal(charge, 2211)
    assert refusal is not None and refusal.body["error"]["code"] == "amount_too_large"


def test_an_uncaptured_or_fully_refunded_charge_cannot_be_refunded():
    uncaptured = normalise(localstripe_charge(captured=False), Ledger())
    refunded = normalise(
        localstripe_charge(captured=True, refunds=[{"id": "re_1", "object": "refund", "amount": 5000}]),
        Ledger(),
    )

    assert refund_refusal(uncaptured, 100).body["error"]["code"] == "charge_not_refundable"
    assert refund_refusal(refunded, None).body["error"]["code"] == "charge_already_refunded"


# ------------------------------------------------------------------ idempotency
def counter() -> tuple[list[int], object]:
    calls: list[int] = []

    def compute() -> Response:
        calls.append(1)
        return json_response(200, {"n": len(calls)})

    return calls, compute


def test_the_same_key_replays_the_first_response():
    cache = IdempotencyCache()
    calls, compute = counter()

    first = cache.run("key-1", "/v1/refunds", b"amount=100", compute)
    second = cache.run("key-1", "/v1/refunds", b"amount=100", compute)
    other_path = cache.run("key-1", "/v1/customers", b"amount=100", compute)

    assert first.body == second.body == b'{"n": 1}'
    assert ("Idempotent-Replayed", "true") in second.headers
    assert other_path.body == b'{"n": 2}'
    assert len(calls) == 2


def test_a_key_reused_with_other_parameters_is_refused():
    cache = IdempotencyCache()
    _, compute = counter()
    cache.run("key-1", "/v1/refunds", b"amount=100", compute)

    reused = cache.run("key-1", "/v1/refunds", b"amount=200", compute)

    assert reused.status == 400
    assert b"idempotency_error" in reused.body


def test_keys_expire_after_the_ttl():
    now = [1000.0]
    cache = IdempotencyCache(ttl_s=24 * 3600, clock=lambda: now[0])
    calls, compute = counter()
    cache.run("key-1", "/v1/refunds", b"", compute)
    now[0] += 24 * 3600 + 1

    cache.run("key-1", "/v1/refunds", b"", compute)

    assert len(calls) == 2


def test_server_errors_are_not_kept():
    cache = IdempotencyCache()
    replies = [json_response(500, {}), json_response(200, {"ok": True})]

    first = cache.run("key-1", "/v1/refunds", b"", lambda: replies.pop(0))
    second = cache.run("key-1", "/v1/refunds", b"", lambda: replies.pop(0))

    assert (first.status, second.status) == (500, 200)


def test_a_concurrent_request_with_the_key_waits_for_the_first():
    cache = IdempotencyCache()
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> Response:
        calls.append(1)
        started.set()
        release.wait(5)
        return json_response(200, {"n": len(calls)})

    results: list[Response] = []
    first = threading.Thread(target=lambda: results.append(cache.run("k", "/v1/refunds", b"", slow)))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: results.append(cache.run("k", "/v1/refunds", b"", slow)))
    second.start()
    time.sleep(0.05)
    release.set()
    first.join(5)
    second.join(5)

    assert len(calls) == 1
    assert [r.body for r in results] == [b'{"n": 1}', b'{"n": 1}']


# ------------------------------------------------------------------ form encoding
def test_form_encoding_round_trips_stripes_nested_parameters():
    params = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {"currency": "eur", "unit_amount": 500, "product_data": {"name": "kWh"}},
                "quantity": 2,
            }
        ],
        "payment_intent_data": {"capture_method": "manual", "metadata": {"session": "s-1"}},
        "payment_method_types": ["card", "swish"],
        "confirm": True,
    }

    encoded = encode_form(params)

    assert "line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=eur" in encoded
    assert decode_form(encoded) == {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {"currency": "eur", "unit_amount": "500", "product_data": {"name": "kWh"}},
                "quantity": "2",
            }
        ],
        "payment_intent_data": {"capture_method": "manual", "metadata": {"session": "s-1"}},
        "payment_method_types": ["card", "swish"],
        "confirm": "true",
    }


def test_empty_brackets_append():
    assert decode_form("expand[]=line_items&expand[]=payment_intent") == {
        "expand": ["line_items", "payment_intent"]
    }
