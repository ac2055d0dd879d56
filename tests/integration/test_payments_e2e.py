"""A driver pays through the link, end to end on the local stack: pay page -> Checkout (local hosted
page, localstripe behind) -> signed webhook -> RemoteStartTransaction to the charger -> session ->
CDR -> capture of exactly the CDR total incl. VAT."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
import requests

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from tests.integration.conftest import RawCharger, eventually
from tests.integration.payment_flow import (
    TEST_CARD,
    Charger,
    api_key,
    assign_tariff,
    captured_payment,
    drive_paid_session,
)


@pytest.fixture
def payable_charger(stack, new_charger):
    credentials = new_charger()
    assign_tariff(credentials.charger_id)
    return credentials


def test_a_driver_pays_charges_and_exactly_the_cdr_total_is_captured(payable_charger, stack) -> None:
    session_url = asyncio.run(drive_paid_session(stack, payable_charger))
    payment = captured_payment(session_url)
    record = DynamoCdrStore().get(payment.session_id)
    assert str(record.total_incl_vat) == "5.63"  # 0.63 start fee + 10 kWh x 0.40 x 1.25
    assert payment.captured_minor == 563 <= payment.hold_minor == 5000
    receipt = requests.get(session_url, timeout=30).text
    assert "Receipt" in receipt and re.search(r"Amount charged: <strong>5\.63 EUR", receipt)

    # What the payment provider holds: the intent captured for exactly that amount.
    intent = requests.get(
        f"{stack.stripe_api_base}/v1/payment_intents/{payment.payment_intent_id}",
        auth=(api_key(stack), ""),
        timeout=30,
    ).json()
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 563)


def test_non_ascii_path_parameters_reach_the_function_decoded_and_get_a_json_400(stack) -> None:
    # API Gateway decodes the path before the function sees it: so does the local front now.
    for connector in ("%C2%B2", "%D9%A1"):  # superscript two, Arabic-Indic one
        response = requests.get(f"{stack.api_url}/pay/CP-1/{connector}", timeout=30)
        assert (response.status_code, response.json()["error"]) == (400, "bad_request")


def test_a_large_checkout_form_is_refused_413_before_it_is_parsed(payable_charger, stack) -> None:
    response = requests.post(
        f"{stack.api_url}/pay/{payable_charger.charger_id}/1/checkout",
        data=b"method=card&x=" + b"a" * 4_400_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
        timeout=30,
    )
    assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")


def test_stripe_sends_the_driver_back_to_the_configured_url_whatever_host_the_request_named(
    payable_charger, stack
) -> None:
    async def pay_with_a_forged_host() -> str:
        charger_id = payable_charger.charger_id
        async with RawCharger(payable_charger) as link:
            await Charger(link).status("Preparing", datetime.now(UTC))
            pay_page = f"{stack.api_url}/pay/{charger_id}/1"
            await asyncio.to_thread(eventually, lambda: "<form" in requests.get(pay_page, timeout=30).text)
            checkout = await asyncio.to_thread(
                requests.post,
                f"{pay_page}/checkout",
                data={"method": "card"},
                headers={"Host": "evil.example", "X-Forwarded-Proto": "http"},
                allow_redirects=False,
                timeout=30,
            )
            assert checkout.status_code == 303, checkout.text
            paid = await asyncio.to_thread(
                requests.post, checkout.headers["Location"], data=TEST_CARD, allow_redirects=False, timeout=30
            )
            assert paid.status_code == 303, paid.text
            return paid.headers["Location"]

    assert asyncio.run(pay_with_a_forged_host()).startswith(f"{stack.api_url}/session/")
