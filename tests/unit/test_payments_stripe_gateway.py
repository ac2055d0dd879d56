"""The Stripe adapter against a stub Stripe API on 127.0.0.1: parameters, idempotency keys, errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from chargenet.adapters import stripe_gateway
from chargenet.adapters.stripe_gateway import StripeGateway
from chargenet.domain.payments import (
    CheckoutRequest,
    PaymentDeclined,
    PaymentProviderError,
    PaymentProviderUnavailable,
    Settlement,
)
from tests.payment_fakes import T0

ROOT = Path(__file__).resolve().parents[2]

ERRORS = {
    "pi_declined": (
        402,
        {"type": "card_error", "code": "card_declined", "message": "Your card was declined."},
    ),
    "pi_down": (500, {"type": "api_error", "message": "Something went wrong"}),
    "pi_canceled": (400, {"type": "invalid_request_error", "code": "payment_intent_unexpected_state"}),
}


class StubStripe(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict, dict]] = []

    def log_message(self, *_: object) -> None:
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Stripe-Should-Retry", "false")  # no client retries: each test sees one call
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        self.requests.append((method, self.path, form, dict(self.headers)))
        if "pi_hung" in self.path:
            time.sleep(2)  # longer than the client waits in the test below
            return self._answer(200, {})
        for intent, (status, error) in ERRORS.items():
            if intent in self.path:
                return self._answer(status, {"error": error})
        if self.path.startswith("/v1/checkout/sessions"):
            return self._answer(
                200,
                {
                    "id": "cs_1",
                    "object": "checkout.session",
                    "url": "https://co/cs_1",
                    "status": "complete",
                    "payment_intent": "pi_1",
                },
            )
        return self._answer(
            200,
            {
                "id": "pi_1",
                "object": "payment_intent",
                "status": "requires_capture",
                "currency": "eur",
                "amount_capturable": 5000,
                "amount_received": 0,
            },
        )

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


@pytest.fixture
def gateway() -> Iterator[StripeGateway]:
    StubStripe.requests = []
    server = HTTPServer(("127.0.0.1", 0), StubStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StripeGateway(
            api_key=lambda: "sk_test_local_123", api_base=f"http://127.0.0.1:{server.server_port}"
        )
    finally:
        server.shutdown()


def request(settlement: Settlement = Settlement.HOLD) -> CheckoutRequest:
    return CheckoutRequest(
        payment_id="pay1",
        idempotency_key="checkout-pay1",
        currency="EUR",
        amount_minor=5000,
        settlement=settlement,
        method_types=("card", "link"),
        description="Charging at CP-1 connector 1 (hold)",
        success_url="https://pay.example/session/t",
        cancel_url="https://pay.example/pay/CP-1/1",
        expires_at=T0 + timedelta(minutes=30),
    )


def test_a_hold_checkout_asks_for_manual_capture_with_an_idempotency_key(gateway) -> None:
    created = gateway.create_checkout(request())
    assert (created.checkout_session_id, created.url) == ("cs_1", "https://co/cs_1")
    [(method, path, form, headers)] = StubStripe.requests
    assert (method, path, headers["Idempotency-Key"]) == ("POST", "/v1/checkout/sessions", "checkout-pay1")
    assert headers["Authorization"] == "Bearer sk_test_local_123"
    assert form["mode"] == "payment"
    assert form["payment_intent_data[capture_method]"] == "manual"
    assert form["payment_intent_data[metadata][payment_id]"] == "pay1"
    assert (form["payment_method_types[0]"], form["payment_method_types[1]"]) == ("card", "link")
    assert form["line_items[0][price_data][unit_amount]"] == "5000"
    assert form["line_items[0][price_data][currency]"] == "eur"
    assert form["expires_at"] == str(int((T0 + timedelta(minutes=30)).timestamp()))


def test_a_prepay_checkout_is_captured_automatically(gateway) -> None:
    gateway.create_checkout(request(Settlement.PREPAY))
    assert "payment_intent_data[capture_method]" not in StubStripe.requests[0][2]


def test_money_calls_carry_amounts_and_keys(gateway) -> None:
    gateway.capture("pi_1", 1534, "capture-pay1")
    gateway.cancel("pi_1", "cancel-pay1")
    gateway.refund("pi_1", 500, "refund-pay1-1")
    calls = [(path, form, headers["Idempotency-Key"]) for _, path, form, headers in StubStripe.requests]
    assert calls == [
        ("/v1/payment_intents/pi_1/capture", {"amount_to_capture": "1534"}, "capture-pay1"),
        ("/v1/payment_intents/pi_1/cancel", {"cancellation_reason": "abandoned"}, "cancel-pay1"),
        ("/v1/refunds", {"payment_intent": "pi_1", "amount": "500"}, "refund-pay1-1"),
    ]


def test_the_receipt_email_is_set_on_the_intent(gateway) -> None:
    gateway.set_receipt_email("pi_1", "driver@example.com")
    [(method, path, form, _)] = StubStripe.requests
    assert (method, path, form) == (
        "POST",
        "/v1/payment_intents/pi_1",
        {"receipt_email": "driver@example.com"},
    )


def test_intents_and_checkouts_are_read_as_facts(gateway) -> None:
    intent = gateway.intent("pi_1")
    assert (intent.status, intent.currency, intent.amount_capturable) == ("requires_capture", "EUR", 5000)
    facts = gateway.checkout("cs_1")
    assert (facts.status, facts.payment_intent_id) == ("complete", "pi_1")


@pytest.mark.parametrize(
    ("intent", "error"),
    [
        ("pi_declined", PaymentDeclined),
        ("pi_down", PaymentProviderUnavailable),
        ("pi_canceled", PaymentProviderError),
    ],
)
def test_stripe_errors_become_the_domain_errors(gateway, intent, error) -> None:
    with pytest.raises(error) as raised:
        gateway.capture(intent, 100, "capture-x")
    assert type(raised.value) is error


def test_a_hung_stripe_fails_the_call_at_the_timeout_once_as_retryable(gateway, monkeypatch) -> None:
    monkeypatch.setattr(stripe_gateway, "STRIPE_TIMEOUT_S", 0.3)
    with pytest.raises(PaymentProviderUnavailable, match="APIConnectionError"):
        gateway.capture("pi_hung", 100, "capture-x")
    # One attempt: the services retry with their own schedule, inside the Lambda's timeout.
    assert [path for _, path, _, _ in StubStripe.requests] == ["/v1/payment_intents/pi_hung/capture"]


def test_a_hung_stripe_cannot_outlast_the_functions_that_call_it() -> None:
    from chargenet.services.payments import QUICK_RETRY_DELAYS_S
    from chargenet_local.template import load

    functions = load(
        ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"}
    ).functions()
    # A capture or refund: every quick retry timing out, with the pauses between them.
    settlement_s = (len(QUICK_RETRY_DELAYS_S) + 1) * stripe_gateway.STRIPE_TIMEOUT_S + sum(
        QUICK_RETRY_DELAYS_S
    )
    assert settlement_s < functions["PaymentCaptureFunction"].timeout_s
    assert settlement_s < functions["PaymentSweepFunction"].timeout_s
    # The pay page and the webhook: each call gives up inside the function (Stripe redelivers an event).
    assert functions["PaymentsApiFunction"].timeout_s > stripe_gateway.STRIPE_TIMEOUT_S


def test_a_placeholder_key_is_refused_before_any_call() -> None:
    gateway = StripeGateway(api_key=lambda: "generated-placeholder", api_base="http://127.0.0.1:9")
    with pytest.raises(PaymentProviderUnavailable, match="API key secret is not set"):
        gateway.intent("pi_1")
