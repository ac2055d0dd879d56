"""The local Checkout Session API: creation checked as Stripe checks it, and the hosted page's card form."""

from __future__ import annotations

import time

import pytest

from chargenet_local.checkout import PageError, build_session, parse_card
from chargenet_local.stripe_local import StripeError

NOW = 1_800_000_000
PAGE = "http://127.0.0.1:9/c/pay/"


def params(**overrides):
    base = {
        "mode": "payment",
        "success_url": "https://example.test/ok?cs={CHECKOUT_SESSION_ID}",
        "line_items": [
            {
                "price_data": {
                    "currency": "EUR",
                    "unit_amount": "2500",
                    "product_data": {"name": "Charging"},
                },
                "quantity": "2",
            }
        ],
        "payment_intent_data": {
            "capture_method": "manual",
            "description": "Charging at CP-1",
            "metadata": {"session": "s-1"},
        },
        "metadata": {"charger": "CP-1"},
        "client_reference_id": "ref-1",
    }
    return {**base, **overrides}


def test_a_payment_session_has_stripes_shape():
    session = build_session(params(), page_url=PAGE, now=NOW)

    obj = session.obj
    assert obj["id"].startswith("cs_test_")
    assert obj["object"] == "checkout.session"
    assert obj["url"] == f"{PAGE}{obj['id']}"
    assert (obj["status"], obj["payment_status"]) == ("open", "unpaid")
    assert (obj["amount_total"], obj["currency"]) == (5000, "eur")
    assert obj["payment_intent"] is None  # created when the customer pays, as Stripe does
    assert obj["expires_at"] == NOW + 24 * 3600
    assert obj["metadata"] == {"charger": "CP-1"}
    assert obj["client_reference_id"] == "ref-1"
    assert obj["payment_method_types"] == ["card"]
    assert session.capture_method == "manual"
    assert session.intent_data["metadata"] == {"session": "s-1"}


def test_a_setup_session_needs_no_payment():
    session = build_session(
        {"mode": "setup", "success_url": "https://example.test/ok", "customer": "cus_1", "currency": "sek"},
        page_url=PAGE,
        now=NOW,
    )

    assert session.obj["payment_status"] == "no_payment_required"
    assert session.obj["amount_total"] is None
    assert session.obj["customer"] == "cus_1"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "subscription"}, "mode"),
        ({"success_url": None}, "success_url"),
        ({"customer": "cus_1", "customer_email": "a@b.test"}, "only specify one"),
        ({"line_items": None}, "line_items is required"),
        ({"shipping_options": []}, "unknown parameter: shipping_options"),
        (
            {"payment_intent_data": {"setup_future_usage": "off_session"}},
            "payment_intent_data[setup_future_usage]",
        ),
        ({"payment_intent_data": {"capture_method": "later"}}, "capture_method"),
        ({"line_items": [{"price": "price_1", "quantity": "1"}]}, "Prices are not emulated"),
        ({"payment_method_types": ["card", "ideal"]}, "ideal"),
        ({"payment_method_types": ["swish"]}, "swish support"),
        ({"expires_at": str(NOW + 60)}, "30 minutes"),
        ({"expires_at": str(NOW + 25 * 3600)}, "24 hours"),
    ],
)
def test_invalid_sessions_are_refused(overrides, message):
    with pytest.raises(StripeError) as refused:
        build_session(params(**overrides), page_url=PAGE, now=NOW)

    assert refused.value.status == 400
    assert message in refused.value.body["error"]["message"]


def test_totals_below_stripes_minimum_are_refused():
    cheap = [
        {
            "price_data": {"currency": "sek", "unit_amount": "299", "product_data": {"name": "x"}},
            "quantity": "1",
        }
    ]

    with pytest.raises(StripeError, match="at least 300"):
        build_session(params(line_items=cheap, payment_intent_data=None), page_url=PAGE, now=NOW)


def test_swish_is_offered_in_sek():
    sek = [
        {
            "price_data": {"currency": "sek", "unit_amount": "50000", "product_data": {"name": "x"}},
            "quantity": "1",
        }
    ]

    session = build_session(
        params(line_items=sek, payment_method_types=["card", "swish"]), page_url=PAGE, now=NOW
    )

    assert session.obj["payment_method_types"] == ["card", "swish"]


TODAY = time.struct_time((2026, 11, 26, 0, 0, 0, 3, 330, 0))


def test_a_card_is_read_from_the_form():
    card = parse_card({"card_number": "4242 4242 4242 4242", "expiry": "12 / 30", "cvc": "123"}, TODAY)

    assert (card.number, card.exp_month, card.exp_year, card.cvc) == ("4242424242424242", 12, 2030, "123")


def test_the_generic_decline_card_is_charged_as_localstripes_declining_card():
    card = parse_card({"card_number": "4000000000000002", "expiry": "12/30", "cvc": "123"}, TODAY)

    assert card.for_charging().number == "4000000000000341"
    assert card.as_params()["number"] == "4000000000000002"  # declined when attached, by localstripe itself


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"card_number": "4242424242424241", "expiry": "12/30", "cvc": "123"}, "number is invalid"),
        ({"card_number": "4242", "expiry": "12/30", "cvc": "123"}, "number is invalid"),
        ({"card_number": "4242424242424242", "expiry": "13/30", "cvc": "123"}, "incomplete"),
        ({"card_number": "4242424242424242", "expiry": "10/26", "cvc": "123"}, "in the past"),
        ({"card_number": "4242424242424242", "expiry": "12/30", "cvc": "12"}, "security code"),
    ],
)
def test_bad_card_details_are_shown_on_the_page(form, message):
    with pytest.raises(PageError, match=message):
        parse_card(form, TODAY)
