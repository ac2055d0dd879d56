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

from chargenet.composition.payments import payment_services, provider_webhooks, public_base_url
from chargenet.domain.charger_ids import is_charger_id
from chargenet.domain.payments import (
    CheckoutMethod,
    PaymentProviderError,
    PaymentProviderUnavailable,
    WebhookRejected,
)
from chargenet.services.payments import TOO_MANY_CHECKOUTS, CheckoutRefused, StopOutcome

logger = Logger()
app = APIGatewayHttpResolver()

# Used with fullmatch: `match` with `$` also takes a trailing newline. ASCII classes, never \\d or
# str.isdigit: those take a superscript two (int() then fails: a 500) and the Arabic-Indic digit
# one (int() reads it as 1).
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32,64}")
CONNECTOR_PATTERN = re.compile(r"[1-9][0-9]?")
MAX_CONNECTOR_ID = 99
# The checkout form is one short field; anything much bigger is refused before it is decoded or
# parsed (a 4 MB form took 1.7 s and 400 MB to parse). API Gateway itself passes up to 10 MB.
MAX_FORM_BYTES = 1024
CHECKOUT_FIELDS = frozenset({"method"})
HTML = "text/html; charset=utf-8"
# Driver pages are personal and change: never cached by a browser or a proxy.
NO_STORE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class BadRequest(ValueError):
    pass


class PayloadTooLarge(ValueError):
    pass


def _body() -> bytes:
    """The raw request body: Powertools' decoded_body assumes UTF-8 and raises on other bytes."""
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode()


def _json_error(status: int, error: str, message: str) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, {"error": error, "message": message})


def _html(status: int, body: str) -> Response[Any]:
    return Response(status, HTML, body, headers=NO_STORE)


def _connector(charger_id: str, connector_id: str) -> tuple[str, int]:
    # Quoted with !a (ascii): the message never carries the raw characters it refuses.
    if not is_charger_id(charger_id):
        raise BadRequest(f"{charger_id[:80]!a} is not a charger id")
    if not CONNECTOR_PATTERN.fullmatch(connector_id):
        raise BadRequest(f"{connector_id[:80]!a} is not a connector number (1 to {MAX_CONNECTOR_ID})")
    return charger_id, int(connector_id)


def _token(token: str) -> str:
    if not TOKEN_PATTERN.fullmatch(token):
        raise BadRequest("not a session link")
    return token


def _refuse_large_form() -> None:
    """Measured on the event as it came, before a byte is decoded or parsed."""
    event = app.current_event
    size = len(event.body or "")
    # base64 makes 4 characters of 3 bytes; as text, a character is at least one byte.
    limit = 4 * -(-MAX_FORM_BYTES // 3) if event.is_base64_encoded else MAX_FORM_BYTES
    if size > limit:
        raise PayloadTooLarge(f"the form is limited to {MAX_FORM_BYTES} bytes")


def _checkout_method() -> CheckoutMethod:
    """The checkout form: `method` once, nothing else (a field we do not know is refused, not ignored)."""
    body = _body()
    if len(body) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"the form is limited to {MAX_FORM_BYTES} bytes")
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=len(CHECKOUT_FIELDS))
    except ValueError:  # not ASCII (browsers percent-encode), a field without '=', or too many
        raise BadRequest(f"the form takes only {sorted(CHECKOUT_FIELDS)}, once each") from None
    if set(form) - CHECKOUT_FIELDS:
        raise BadRequest(f"the form takes only {sorted(CHECKOUT_FIELDS)}")
    [value] = form.get("method", [CheckoutMethod.CARD.value])
    try:
        return CheckoutMethod(value)
    except ValueError:
        raise BadRequest(f"method must be one of {[m.value for m in CheckoutMethod]}") from None


def _public_base_url() -> str:
    """Where Stripe sends the driver back: the template's PublicBaseUrl, else this API's own domain
    as API Gateway names it (only its own domains are routed to it; always https). Never the
    request's Host or X-Forwarded-Proto: the client writes those, and would have the driver sent
    from Stripe to a page of its choosing."""
    return public_base_url() or f"https://{app.current_event.request_context.domain_name}"


@app.exception_handler(BadRequest)  # type: ignore[untyped-decorator]  # powertools leaves exception_handler's return unannotated
def _bad_request(error: BadRequest) -> Response[Any]:
    return _json_error(400, "bad_request", str(error))


@app.exception_handler(PayloadTooLarge)  # type: ignore[untyped-decorator]  # powertools leaves exception_handler's return unannotated
def _too_large(error: PayloadTooLarge) -> Response[Any]:
    return _json_error(413, "payload_too_large", str(error))


@app.get("/pay/<charger_id>/<connector_id>")
def pay_page(charger_id: str, connector_id: str) -> Response[Any]:
    view = payment_services().desk.pay_page(*_connector(charger_id, connector_id))
    if view is None:
        return _html(404, pages.not_found(f"There is no charger {charger_id}."))
    return _html(200, pages.pay(view))


@app.post("/pay/<charger_id>/<connector_id>/checkout")
def checkout(charger_id: str, connector_id: str) -> Response[Any]:
    # Cheapest first: the path, the body's size, the charger and connector; the body last.
    charger, connector = _connector(charger_id, connector_id)
    _refuse_large_form()
    desk = payment_services().desk
    page = desk.pay_page(charger, connector)
    if page is None:
        return _json_error(404, "not_found", f"there is no charger {charger}")
    if not page.payable:
        return _json_error(409, "not_payable", f"{charger} connector {connector}: {page.availability.value}")
    method = _checkout_method()
    try:
        started = desk.open_checkout(charger, connector, method, _public_base_url(), page=page)
    except CheckoutRefused as refused:
        if refused.reason == TOO_MANY_CHECKOUTS:
            return _json_error(
                429, TOO_MANY_CHECKOUTS, "payments for this connector were opened just now: try again later"
            )
        return _json_error(409, "not_payable", f"{charger} connector {connector}: {refused.reason}")
    except PaymentProviderError as error:
        logger.error("checkout could not be created", extra={"error": str(error)})
        return _json_error(502, "payment_provider", "the payment page could not be opened; please try again")
    logger.info("checkout opened", extra={"payment_id": started.payment_id, "charger_id": charger})
    return Response(303, headers={"Location": started.url, **NO_STORE})


@app.post("/stripe/webhook")
def stripe_webhook() -> Response[Any]:
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
def session_page(token: str) -> Response[Any]:
    view = payment_services().monitor.driver_view(_token(token))
    if view is None:
        return _html(404, pages.not_found("This session link is not valid."))
    return _html(200, pages.session(view, token))


@app.post("/session/<token>/stop")
def stop(token: str) -> Response[Any]:
    outcome = payment_services().monitor.stop(_token(token))
    if outcome is None:
        return _json_error(404, "not_found", "this session link is not valid")
    if outcome is StopOutcome.NOT_RUNNING:
        return _json_error(409, "not_running", "the session is not charging")
    # Back to the session page, which shows the stop once the charger confirms it.
    return Response(303, headers={"Location": f"/session/{token}", **NO_STORE})


@app.not_found
def _not_found(_: Exception) -> Response[Any]:
    return _json_error(404, "not_found", "no such page")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
