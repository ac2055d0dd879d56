"""A driver pays through the link, end to end on the local stack: pay page -> Checkout (local hosted
page, localstripe behind) -> signed webhook -> RemoteStartTransaction to the charger -> session ->
CDR -> capture of exactly the CDR total incl. VAT."""

from __future__ import annotations

import asyncio
import re

import pytest
import requests

from tests.integration.payment_flow import api_key, assign_tariff, captured_payment, drive_paid_session


@pytest.fixture
def payable_charger(stack, new_charger):
    credentials = new_charger()
    assign_tariff(credentials.charger_id)
    return credentials


def test_a_driver_pays_charges_and_exactly_the_cdr_total_is_captured(payable_charger, stack) -> None:
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore

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
