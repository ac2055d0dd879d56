"""The local Stripe on the running stack: the official stripe library, the hosted page, signed webhooks.

Everything goes through `stack.stripe_api_base` exactly as the product's Stripe client does.
"""

from __future__ import annotations

import json
import queue
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import boto3
import pytest
import stripe

from chargenet_local.commands.local_cmd import endpoints
from chargenet_local.httpserve import HttpServer, Request, Response
from chargenet_local.stack import StackState
from chargenet_local.stripe_local import StripeApi
from tests.integration.conftest import eventually

VISA = "4242424242424242"
DECLINED = "4000000000000002"
DECLINED_ON_CHARGE = "4000000000000341"
SUCCESS_URL = "http://127.0.0.1:9/ok?session={CHECKOUT_SESSION_ID}"


class Inbox:
    """A webhook endpoint: keeps every delivery, verified with the stripe library."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue[Request] = queue.Queue()
        self.events: list[Any] = []
        self.server = HttpServer(self._receive)
        self.secret = ""

    def _receive(self, request: Request) -> Response:
        self.deliveries.put(request)
        return Response(200)

    def event(self, kind: str, object_id: str, timeout: float = 10.0) -> Any:
        def find() -> Any:
            while not self.deliveries.empty():
                delivery = self.deliveries.get()
                signature = delivery.header("stripe-signature")
                self.events.append(stripe.Webhook.construct_event(delivery.body, signature, self.secret))
            return next((e for e in self.events if e.type == kind and e.data.object.id == object_id), None)

        return eventually(find, timeout=timeout)


@pytest.fixture(scope="module")
def client(stack: StackState) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_local_it", base_addresses={"api": stack.stripe_api_base})


@pytest.fixture(scope="module")
def inbox(client: stripe.StripeClient):
    inbox = Inbox()
    inbox.server.start()
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": f"{inbox.server.url}/hook", "enabled_events": ["*"]}
    )
    inbox.secret = endpoint.secret
    yield inbox
    client.v1.webhook_endpoints.delete(endpoint.id)
    inbox.server.stop()


def session_params(amount: int = 5000, currency: str = "eur", **overrides: Any) -> dict[str, Any]:
    return {
        "mode": "payment",
        "success_url": SUCCESS_URL,
        "cancel_url": "http://127.0.0.1:9/cancel",
        "line_items": [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": "Charging"},
                },
                "quantity": 1,
            }
        ],
        "payment_intent_data": {
            "capture_method": "manual",
            "description": "Charging at CP-001",
            "metadata": {"session_token": "tok-1"},
        },
        "metadata": {"charger": "CP-001", "connector": "1"},
        "client_reference_id": "tok-1",
        **overrides,
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def submit(url: str, **form: str) -> tuple[int, str, str]:
    """POST the hosted page's form as a browser would: (status, Location, page)."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode())
    try:
        with urllib.request.build_opener(_NoRedirect).open(request) as reply:
            return reply.status, "", reply.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers.get("Location") or "", answer.read().decode()


def pay(url: str, card: str = VISA) -> tuple[int, str, str]:
    return submit(url, card_number=card, expiry="12/34", cvc="123", email="driver@example.test")


def paid_session(client: stripe.StripeClient, **overrides: Any) -> Any:
    session = client.v1.checkout.sessions.create(params=session_params(**overrides))
    status, _, page = pay(session.url)
    assert status == 303, page
    return client.v1.checkout.sessions.retrieve(session.id)


def test_status_shows_the_stripe_and_api_urls(stack: StackState):
    info = endpoints(stack)

    assert info["stripe_api_base"] == stack.stripe_api_base.rstrip("/")
    assert info["checkout"].startswith(stack.stripe_api_base) and info["checkout"].endswith("/c/pay/")
    assert info["api"].startswith("http://127.0.0.1:")
    assert info["localstripe"].startswith("http://127.0.0.1:")


def test_the_templates_stripe_secrets_hold_local_values(stack: StackState):
    secrets = boto3.client("secretsmanager")
    value = {
        name: secrets.get_secret_value(SecretId=arn)["SecretString"] for name, arn in stack.secrets.items()
    }

    assert value["StripeApiKeySecret"].startswith("sk_test_local_")
    assert value["StripeWebhookSecret"].startswith("whsec_local_")


def test_localstripe_listens_on_loopback_only(stack: StackState):
    port = int(stack.localstripe_url.rsplit(":", 1)[1])

    with pytest.raises(OSError):
        socket.create_connection(("::1", port), timeout=1).close()  # localstripe's own CLI binds "::"


def test_pay_on_the_hosted_page_then_capture_less_than_the_hold(stack, client, inbox):
    session = client.v1.checkout.sessions.create(params=session_params())
    assert session.id.startswith("cs_test_") and session.url.startswith(stack.checkout_url)
    assert (session.status, session.amount_total, session.currency) == ("open", 5000, "eur")
    with urllib.request.urlopen(session.url) as page:
        assert "50.00 EUR" in page.read().decode()

    status, location, _ = pay(session.url)

    assert (status, location) == (303, SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session.id))
    completed = inbox.event("checkout.session.completed", session.id)
    assert completed.data.object.metadata.to_dict() == {"charger": "CP-001", "connector": "1"}
    assert completed.livemode is False and completed.id.startswith("evt_")
    session = client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("complete", "unpaid")  # authorised, not captured
    assert session.customer_details.email == "driver@example.test"
    authorised = inbox.event("payment_intent.amount_capturable_updated", session.payment_intent)
    assert authorised.data.object.amount_capturable == 5000
    intent = client.v1.payment_intents.retrieve(session.payment_intent)
    assert (intent.status, intent.amount_capturable, intent.capture_method) == (
        "requires_capture",
        5000,
        "manual",
    )
    assert intent.metadata.to_dict() == {"session_token": "tok-1"}
    assert intent.description == "Charging at CP-001"

    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 3210})

    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 3210, 0)
    charge = client.v1.charges.retrieve(captured.latest_charge)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (5000, 3210, 0)
    succeeded = inbox.event("payment_intent.succeeded", intent.id)  # localstripe's own event, passed on
    assert succeeded.data.object.amount_received == 3210
    # localstripe keeps the released 17.90 as a refund; the front hides it from the product.
    raw = StripeApi(stack.localstripe_url, "sk_test_local_it").get(f"/v1/charges/{charge.id}").body
    assert (raw["captured"], raw["amount"], raw["amount_refunded"]) == (True, 5000, 1790)


def test_refunds_stop_at_what_was_captured(client):
    session = paid_session(client)
    intent = client.v1.payment_intents.capture(session.payment_intent, params={"amount_to_capture": 3000})

    client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1000})
    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 2001})
    rest = client.v1.refunds.create(params={"payment_intent": intent.id})  # no amount: what is left
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": intent.id})

    assert over.value.code == "amount_too_large"
    assert rest.amount == 2000
    assert again.value.code == "charge_already_refunded"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_captured, charge.amount_refunded, charge.refunded) == (3000, 3000, True)


def test_capture_above_the_hold_is_refused(client):
    session = paid_session(client)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.capture(session.payment_intent, params={"amount_to_capture": 5001})

    assert refused.value.http_status == 400 and refused.value.code == "amount_too_large"
    assert client.v1.payment_intents.retrieve(session.payment_intent).status == "requires_capture"


def test_a_cancelled_hold_is_released(client, inbox):
    session = paid_session(client)

    cancelled = client.v1.payment_intents.cancel(session.payment_intent, {"cancellation_reason": "abandoned"})

    assert (cancelled.status, cancelled.amount_capturable, cancelled.cancellation_reason) == (
        "canceled",
        0,
        "abandoned",
    )
    assert inbox.event("payment_intent.canceled", cancelled.id).data.object.status == "canceled"


@pytest.mark.parametrize("card", [DECLINED, DECLINED_ON_CHARGE])
def test_a_declined_card_keeps_the_session_open(client, card):
    session = client.v1.checkout.sessions.create(params=session_params())

    status, _, page = pay(session.url, card)

    assert status == 402 and "declined" in page
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert pay(session.url)[0] == 303
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_an_idempotent_post_returns_the_same_object(client):
    key = f"checkout-{uuid.uuid4()}"

    first = client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": key})
    again = client.v1.checkout.sessions.create(params=session_params(), options={"idempotency_key": key})
    customer = client.v1.customers.create(
        params={"email": "a@example.test"}, options={"idempotency_key": key}
    )
    customer_again = client.v1.customers.create(
        params={"email": "a@example.test"}, options={"idempotency_key": key}
    )
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={"email": "b@example.test"}, options={"idempotency_key": key})

    assert first.id == again.id
    assert customer.id == customer_again.id


def test_setup_mode_attaches_the_card_to_the_customer(client, inbox):
    customer = client.v1.customers.create(params={"email": "fleet@example.test"})
    session = client.v1.checkout.sessions.create(
        params={"mode": "setup", "customer": customer.id, "currency": "eur", "success_url": SUCCESS_URL}
    )

    assert pay(session.url)[0] == 303

    session = client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status, session.mode) == (
        "complete",
        "no_payment_required",
        "setup",
    )
    assert (
        inbox.event("checkout.session.completed", session.id).data.object.setup_intent == session.setup_intent
    )
    setup = client.v1.setup_intents.retrieve(session.setup_intent)
    assert setup.status == "succeeded" and setup.customer == customer.id
    assert client.v1.payment_methods.retrieve(setup.payment_method).customer == customer.id
    # As in Stripe, making it the default for later charges is the product's call.
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method is None
    updated = client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": setup.payment_method}}
    )
    assert updated.invoice_settings.default_payment_method == setup.payment_method


def test_a_declined_card_is_not_saved(client):
    customer = client.v1.customers.create(params={"email": "fleet@example.test"})
    session = client.v1.checkout.sessions.create(
        params={"mode": "setup", "customer": customer.id, "success_url": SUCCESS_URL}
    )

    status, _, page = pay(session.url, DECLINED)

    assert status == 402 and "declined" in page
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_swish_is_charged_in_full_at_once(client):
    session = client.v1.checkout.sessions.create(
        params=session_params(amount=30000, currency="sek", payment_method_types=["card", "swish"])
    )

    status, _, _ = submit(session.url, method="swish", email="driver@example.test")

    assert status == 303
    session = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    intent = session.payment_intent
    assert session.payment_status == "paid"
    assert (intent.status, intent.amount_received, intent.payment_method_types) == (
        "succeeded",
        30000,
        ["swish"],
    )
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 12345})
    assert refund.amount == 12345


def test_an_expired_session_cannot_be_paid(client, inbox):
    session = client.v1.checkout.sessions.create(params=session_params())

    expired = client.v1.checkout.sessions.expire(session.id)

    assert (expired.status, expired.url) == ("expired", None)
    assert inbox.event("checkout.session.expired", session.id)
    status, _, page = pay(session.url)
    assert status == 409 and "expired" in page
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_unknown_sessions_and_keys_get_stripes_errors(stack, client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_live_x", base_addresses={"api": stack.stripe_api_base}).v1.customers.list()

    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert json.loads(json.dumps(missing.value.json_body))["error"]["type"] == "invalid_request_error"
