"""Stripe fails while a paid session's total is captured, on the real local stack: the product's
Stripe client goes through the fault proxy (chargenet_local.stripe_faults), which answers 500s,
holds requests past the client's timeout, resets connections, or lets a capture through and then
answers 500. Whatever happens, the driver pays exactly the CDR total, once, under one idempotency
key; a failure that persists is visible and alarmed, and captured once Stripe is back. Stripe's
side is read from the emulator itself (stack.stripe_api_base, not through the proxy)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.payments_dynamodb import DynamoPaymentStore
from chargenet_local.template import STACK_NAME
from tests.integration.conftest import eventually
from tests.integration.payment_flow import (
    TEST_CARD,
    api_key,
    assign_tariff,
    captured_payment,
    drive_paid_session,
)
from tests.integration.test_alarms_e2e import alarms_raised, metric_sum

PAYMENT_FAILURES_ALARM = f"{STACK_NAME}-payment-failures"
CDR_TOTAL_MINOR = 563  # payment_flow's session: 0.63 start fee + 10 kWh x 0.40 x 1.25


class Faults:
    """The proxy's control interface, its rules armed for one driver's PaymentIntent only: the
    proxy serves the whole stack, where other tests' payments may still be settling."""

    def __init__(self, url: str) -> None:
        self.url = url

    def arm(self, *rules: tuple[str, int | None]) -> Callable[[str], None]:
        """For drive_paid_session's `before_stop`: (mode, times) rules on this session's capture."""

        def arm_for(session_url: str) -> None:
            capture = rf"^/v1/payment_intents/{payment_of(session_url).payment_intent_id}/capture$"
            for mode, times in rules:
                rule = {"method": "POST", "path": capture, "mode": mode, "times": times}
                reply = requests.post(self.url, json=rule, timeout=10)
                assert reply.status_code == 201, reply.text

        return arm_for

    def rules(self) -> list[dict[str, Any]]:
        return requests.get(self.url, timeout=10).json()["rules"]

    def clear(self) -> None:
        requests.delete(self.url, timeout=10).raise_for_status()


@pytest.fixture
def faults(stack) -> Iterator[Faults]:
    faults = Faults(stack.stripe_faults_url)
    faults.clear()
    yield faults
    faults.clear()  # the tests after this one meet a healthy Stripe


@pytest.fixture
def payable_charger(stack, new_charger):
    credentials = new_charger()
    assign_tariff(credentials.charger_id)
    return credentials


def intent_at_stripe(stack, intent_id: str) -> dict[str, Any]:
    reply = requests.get(
        f"{stack.stripe_api_base}/v1/payment_intents/{intent_id}",
        params={"expand[]": "latest_charge"},
        auth=(api_key(stack), ""),
        timeout=30,
    )
    reply.raise_for_status()
    return reply.json()


def assert_captured_once_for_the_cdr_total(stack, payment) -> dict[str, Any]:
    from chargenet.domain.money import to_minor_units

    record = DynamoCdrStore().get(payment.session_id)
    total = to_minor_units(record.total_incl_vat, record.currency)
    assert payment.captured_minor == total == CDR_TOTAL_MINOR
    intent = intent_at_stripe(stack, payment.payment_intent_id)
    charge = intent["latest_charge"]
    assert (intent["status"], intent["amount_received"]) == ("succeeded", total)
    assert (charge["amount_captured"], charge["amount_refunded"]) == (total, 0)
    return intent


def payment_of(session_url: str) -> Any:
    from chargenet.domain.payments import token_digest

    return DynamoPaymentStore().by_token(token_digest(session_url.rsplit("/", 1)[1]))


def injected_keys(faults: Faults) -> list[str | None]:
    return [key for rule in faults.rules() for key in rule["idempotency_keys"]]


def test_two_500s_then_success_capture_once_with_one_key_and_the_receipt_to_the_driver(
    stack, faults, payable_charger
) -> None:
    session = drive_paid_session(stack, payable_charger, before_stop=faults.arm(("500", 2)))
    payment = captured_payment(asyncio.run(session))
    intent = assert_captured_once_for_the_cdr_total(stack, payment)
    assert injected_keys(faults) == [f"capture-{payment.payment_id}"] * 2
    assert payment.capture_attempts == 0  # the quick retries inside the capture got through
    # Stripe's receipt goes to the e-mail the driver entered on the hosted page.
    assert intent["receipt_email"] == TEST_CARD["email"]


def test_a_capture_that_took_effect_but_answered_500_is_not_taken_twice(
    stack, faults, payable_charger
) -> None:
    session = drive_paid_session(stack, payable_charger, before_stop=faults.arm(("500_after", 1)))
    payment = captured_payment(asyncio.run(session))
    # The first capture reached Stripe; its retry, under the same key, got the stored result.
    assert injected_keys(faults) == [f"capture-{payment.payment_id}"]
    assert_captured_once_for_the_cdr_total(stack, payment)


def test_a_timeout_and_a_reset_connection_are_retried_with_the_same_key(
    stack, faults, payable_charger
) -> None:
    # Held past the client's timeout and never forwarded, then a connection reset.
    session = drive_paid_session(stack, payable_charger, before_stop=faults.arm(("timeout", 1), ("reset", 1)))
    payment = captured_payment(asyncio.run(session))
    assert [(rule["mode"], rule["injected"]) for rule in faults.rules()] == [("timeout", 1), ("reset", 1)]
    assert injected_keys(faults) == [f"capture-{payment.payment_id}"] * 2
    assert_captured_once_for_the_cdr_total(stack, payment)


def test_a_persistent_failure_is_visible_and_alarmed_and_captured_once_stripe_is_back(
    stack, faults, payable_charger
) -> None:
    from chargenet.domain.payments import PaymentState, token_digest

    failures_before = metric_sum("PaymentFailures", "chargenet", [])
    session_url = asyncio.run(
        drive_paid_session(stack, payable_charger, before_stop=faults.arm(("500", None)))
    )
    payments = DynamoPaymentStore()
    token = token_digest(session_url.rsplit("/", 1)[1])

    retrying = eventually(
        lambda: (p := payments.by_token(token)) and p.capture_attempts >= 1 and p, timeout=60
    )
    # Visible: still holding the money, the provider's error and the next attempt on the record.
    assert retrying.state is PaymentState.CHARGING and retrying.captured_minor == 0
    assert "APIError" in (retrying.failure or "")
    assert retrying.next_attempt_at is not None and retrying.next_attempt_at > datetime.now(UTC)
    assert intent_at_stripe(stack, retrying.payment_intent_id)["status"] == "requires_capture"
    # Alarmed: the PaymentFailures metric reaches the payment-failures alarm and the operators.
    eventually(lambda: metric_sum("PaymentFailures", "chargenet", []) > failures_before, timeout=30)
    raised = eventually(lambda: alarms_raised(stack.home, PAYMENT_FAILURES_ALARM), timeout=30)
    assert "PaymentFailures" in raised[PAYMENT_FAILURES_ALARM]["message"]

    faults.clear()  # Stripe is back
    # The sweep's backoff (two minutes after the first deferral) passes: only the clock is moved.
    payment = payments.get(retrying.payment_id)
    assert payment.state is PaymentState.CHARGING
    due = payment.model_copy(update={"next_attempt_at": datetime.now(UTC), "version": payment.version + 1})
    assert payments.save(due)

    captured = captured_payment(session_url)  # by the scheduled sweep, with the same key
    assert captured.state is PaymentState.CAPTURED
    assert_captured_once_for_the_cdr_total(stack, captured)
