"""HTTP API (API Gateway HTTP API v2): the pay page, checkout, Stripe's webhook, the driver's session page.

Thin: check the input, call the payment services, render. Bad input gets a JSON 4xx; a driver
never sees another driver's session, as pages are found by an unguessable token only.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qs

import payment_pages as pages
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.domain.payments import (
    CheckoutMethod,
    PaymentProviderError,
    PaymentProviderUnavailable,
    WebhookRejected,
)
from chargenet.payments_composition import payment_services, provider_webhooks
from chargenet.services.ingest import CHARGER_ID_PATTERN
from chargenet.services.payment_monitor import StopOutcome
from chargenet.services.payments import CheckoutRefused

logger = Logger()
app = APIGatewayHttpResolver()

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
MAX_CONNECTOR_ID = 99
HTML = "text/html; charset=utf-8"
# Driver pages are personal and change: never cached by a browser or a proxy.
NO_STORE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class BadRequest(ValueError):
    pass


def _body() -> bytes:
    """The raw request body: Powertools' decoded_body assumes UTF-8 and raises on other bytes."""
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode()


def _json_error(status: int, error: str, message: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"error": error, "message": message})


def _html(status: int, body: str) -> Response:
    return Response(status, HTML, body, headers=NO_STORE)


def _connector(charger_id: str, connector_id: str) -> tuple[str, int]:
    if not re.match(CHARGER_ID_PATTERN, charger_id):
        raise BadRequest(f"{charger_id!r} is not a charger id")
    if not connector_id.isdigit() or not 1 <= int(connector_id) <= MAX_CONNECTOR_ID:
        raise BadRequest(f"{connector_id!r} is not a connector number (1 to {MAX_CONNECTOR_ID})")
    return charger_id, int(connector_id)


def _token(token: str) -> str:
    if not TOKEN_PATTERN.match(token):
        raise BadRequest("not a session link")
    return token


def _base_url() -> str:
    """This API's own URL, for Stripe's redirects: API Gateway forwards the scheme it was called with."""
    event = app.current_event
    scheme = event.headers.get("x-forwarded-proto") or "https"  # Powertools' headers are case-insensitive
    host = event.headers.get("host") or event.request_context.domain_name
    return f"{scheme}://{host}"


@app.exception_handler(BadRequest)
def _bad_request(error: BadRequest) -> Response:
    return _json_error(400, "bad_request", str(error))


@app.get("/pay/<charger_id>/<connector_id>")
def pay_page(charger_id: str, connector_id: str) -> Response:
    view = payment_services().desk.pay_page(*_connector(charger_id, connector_id))
    if view is None:
        return _html(404, pages.not_found(f"There is no charger {charger_id}."))
    return _html(200, pages.pay(view))


@app.post("/pay/<charger_id>/<connector_id>/checkout")
def checkout(charger_id: str, connector_id: str) -> Response:
    charger, connector = _connector(charger_id, connector_id)
    form = parse_qs(_body().decode("utf-8", errors="replace"))
    try:
        method = CheckoutMethod(form.get("method", [CheckoutMethod.CARD.value])[0])
    except ValueError:
        raise BadRequest(f"method must be one of {[m.value for m in CheckoutMethod]}") from None
    try:
        started = payment_services().desk.open_checkout(charger, connector, method, _base_url())
    except CheckoutRefused as refused:
        return _json_error(409, "not_payable", f"{charger} connector {connector}: {refused.reason}")
    except PaymentProviderError as error:
        logger.error("checkout could not be created", extra={"error": str(error)})
        return _json_error(502, "payment_provider", "the payment page could not be opened; please try again")
    logger.info("checkout opened", extra={"payment_id": started.payment_id, "charger_id": charger})
    return Response(303, headers={"Location": started.url, **NO_STORE})


@app.post("/stripe/webhook")
def stripe_webhook() -> Response:
    event = app.current_event
    payload = _body()  # the bytes Stripe signed, whatever their encoding
    signature = event.headers.get("stripe-signature")
    try:
        outcome = provider_webhooks().receive(payload, signature)
    except WebhookRejected as rejected:
        logger.warning("webhook rejected", extra={"reason": str(rejected)})
        return _json_error(400, "invalid_signature", str(rejected))
    except PaymentProviderUnavailable as error:
        # Unset secret or Stripe unreachable: 5xx, so Stripe delivers the event again later.
        logger.error("webhook not handled", extra={"error": str(error)})
        return _json_error(503, "unavailable", "try again later")
    logger.info("webhook", extra={"outcome": outcome.value})
    return Response(200, content_types.APPLICATION_JSON, {"received": True, "outcome": outcome.value})


@app.get("/session/<token>")
def session_page(token: str) -> Response:
    view = payment_services().monitor.driver_view(_token(token))
    if view is None:
        return _html(404, pages.not_found("This session link is not valid."))
    return _html(200, pages.session(view, token))


@app.post("/session/<token>/stop")
def stop(token: str) -> Response:
    outcome = payment_services().monitor.stop(_token(token))
    if outcome is None:
        return _json_error(404, "not_found", "this session link is not valid")
    if outcome is StopOutcome.NOT_RUNNING:
        return _json_error(409, "not_running", "the session is not charging")
    # Back to the session page, which shows the stop once the charger confirms it.
    return Response(303, headers={"Location": f"/session/{token}", **NO_STORE})


@app.not_found
def _not_found(_: Exception) -> Response:
    return _json_error(404, "not_found", "no such page")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
