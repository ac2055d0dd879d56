"""The local Stripe front: Checkout Sessions, the hosted payment page, and localstripe behind.

The product's Stripe client points here (`STRIPE_API_BASE`). This front serves what
localstripe lacks (Checkout Sessions, webhook endpoints, the hosted page at `/c/pay/<id>`)
and passes every other `/v1/...` call to localstripe, through `stripe_gaps` (idempotency,
capture and refund limits, current object shapes). Paying on the page creates the
PaymentMethod and PaymentIntent (or SetupIntent) in localstripe and sends the signed events
Stripe would send; localstripe's own events come back here and go out the same way.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import html
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from chargenet_local.httpserve import HttpServer, Request, Response, json_response
from chargenet_local.metrics import Periodic
from chargenet_local.stripe_gaps import (
    IdempotencyCache,
    Ledger,
    capture_refusal,
    normalise,
    refund_refusal,
    refundable,
)
from chargenet_local.stripe_local import StripeApi, StripeError, StripeReply, decode_form, encode_form
from chargenet_local.stripe_webhooks import Endpoint, WebhookSender, new_event, random_id, signature_valid

log = logging.getLogger("chargenet.local.stripe")

PAGE_PATH = "/c/pay/"
LOCALSTRIPE_EVENTS_PATH = "/_localstripe/events"
EXPIRY_SWEEP_EVERY_S = 1.0
MIN_EXPIRY_S, MAX_EXPIRY_S, DEFAULT_EXPIRY_S = 30 * 60, 24 * 3600, 24 * 3600
# Stripe's minimum charge amounts (minor units) for the currencies the network prices in.
MINIMUM_AMOUNTS = {"eur": 50, "usd": 50, "gbp": 30, "sek": 300, "nok": 300, "dkk": 250}
PAYMENT_METHODS = frozenset({"card", "link", "swish"})
CAPTURE_METHODS = frozenset({"automatic", "automatic_async", "manual"})
CANCELLATION_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer", "abandoned"})
# Stripe declines 4000000000000002 when charged; localstripe only when it is attached to a
# customer. Charging it as 4000000000000341 (which localstripe declines when charged) runs
# localstripe's real failure path: a failed PaymentIntent and its payment_failed event.
CHARGED_AS = {"4000000000000002": "4000000000000341"}
# localstripe has no Swish: the money moves as a card that succeeds, captured at once.
SWISH_FUNDING_CARD = "4242424242424242"

_SESSION_PARAMS = frozenset(
    {
        "mode",
        "line_items",
        "payment_intent_data",
        "setup_intent_data",
        "metadata",
        "customer",
        "customer_email",
        "success_url",
        "cancel_url",
        "payment_method_types",
        "expires_at",
        "client_reference_id",
        "currency",
        "expand",
        "locale",
    }
)


class PageError(Exception):
    """Shown on the hosted page; the session stays open."""


# ------------------------------------------------------------------ sessions
@dataclasses.dataclass
class LineItem:
    name: str
    currency: str
    unit_amount: int
    quantity: int

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


@dataclasses.dataclass
class CheckoutSession:
    obj: dict[str, Any]  # the Checkout Session object as the API returns it
    line_items: list[LineItem]
    capture_method: str
    intent_data: dict[str, Any]  # payment_intent_data: capture_method, description, metadata
    setup_metadata: dict[str, str]
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        return str(self.obj["id"])

    @property
    def is_open(self) -> bool:
        return self.obj["status"] == "open"


def build_session(params: dict[str, Any], *, page_url: str, now: int) -> CheckoutSession:
    """A new open session from the create call's (form-decoded) parameters, checked as Stripe does."""
    _no_unknown(params, _SESSION_PARAMS, "")
    mode = params.get("mode")
    if mode not in ("payment", "setup"):
        raise StripeError(
            "mode must be payment or setup (subscription is not emulated locally).", param="mode"
        )
    if not params.get("success_url"):
        raise StripeError("Missing required param: success_url.", param="success_url")
    if params.get("customer") and params.get("customer_email"):
        raise StripeError("You may only specify one of these parameters: customer, customer_email.")
    items = [_line_item(item, i) for i, item in enumerate(_as_list(params.get("line_items"), "line_items"))]
    currency = _currency(mode, items, params.get("currency"))
    methods = _as_list(params.get("payment_method_types") or ["card"], "payment_method_types")
    _check_methods(methods, currency)
    intent_data = params.get("payment_intent_data") or {}
    _no_unknown(intent_data, {"capture_method", "description", "metadata"}, "payment_intent_data")
    capture_method = intent_data.get("capture_method", "automatic_async")
    if capture_method not in CAPTURE_METHODS:
        raise StripeError(
            f"Invalid payment_intent_data[capture_method]: {capture_method}",
            param="payment_intent_data[capture_method]",
        )
    setup_data = params.get("setup_intent_data") or {}
    _no_unknown(setup_data, {"metadata"}, "setup_intent_data")
    if mode == "setup" and items:
        raise StripeError("line_items are not allowed in setup mode.", param="line_items")
    total = sum(item.amount for item in items)
    if mode == "payment":
        _check_total(total, currency)
    session_id = random_id("cs_test_a1", 56)
    obj = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": total if mode == "payment" else None,
        "amount_total": total if mode == "payment" else None,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "created": now,
        "currency": currency,
        "customer": params.get("customer"),
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "expires_at": _expires_at(params.get("expires_at"), now),
        "livemode": False,
        "locale": params.get("locale"),
        "metadata": params.get("metadata") or {},
        "mode": mode,
        "payment_intent": None,
        "payment_method_types": methods,
        "payment_status": "unpaid" if mode == "payment" else "no_payment_required",
        "setup_intent": None,
        "status": "open",
        "success_url": params["success_url"],
        "url": f"{page_url}{session_id}",
    }
    return CheckoutSession(obj, items, capture_method, intent_data, setup_data.get("metadata") or {})


def _no_unknown(params: Any, known: Iterable[str], prefix: str) -> None:
    if not isinstance(params, dict):
        raise StripeError(f"Invalid object: {prefix}", param=prefix)
    for key in params:
        if key not in known:
            name = f"{prefix}[{key}]" if prefix else key
            raise StripeError(
                f"Received unknown parameter: {name} (the local checkout emulates what chargenet uses)",
                param=name,
            )


def _as_list(value: Any, param: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise StripeError(f"Invalid array: {param}", param=param)
    return value


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(f"Invalid integer: {value}", param=param) from None


def _line_item(item: Any, index: int) -> LineItem:
    param = f"line_items[{index}]"
    _no_unknown(item, {"price_data", "quantity", "price"}, param)
    if "price" in item:
        raise StripeError("Prices are not emulated locally: use price_data.", param=f"{param}[price]")
    price = item.get("price_data")
    _no_unknown(price, {"currency", "unit_amount", "product_data"}, f"{param}[price_data]")
    product = price.get("product_data") or {}
    _no_unknown(product, {"name", "description"}, f"{param}[price_data][product_data]")
    if not product.get("name") or not price.get("currency"):
        raise StripeError(f"Missing required param: {param}[price_data][product_data][name] or currency.")
    quantity = _int(item.get("quantity"), f"{param}[quantity]")
    unit_amount = _int(price.get("unit_amount"), f"{param}[price_data][unit_amount]")
    if quantity < 1 or unit_amount < 0:
        raise StripeError(f"Invalid quantity or unit_amount in {param}.", param=param)
    return LineItem(product["name"], price["currency"].lower(), unit_amount, quantity)


def _currency(mode: str, items: list[LineItem], given: str | None) -> str | None:
    if mode == "setup":
        return given.lower() if given else None
    if not items:
        raise StripeError("line_items is required in payment mode.", param="line_items")
    currencies = {item.currency for item in items}
    if len(currencies) > 1:
        raise StripeError("All line_items must use the same currency.", param="line_items")
    return currencies.pop()


def _check_methods(methods: list[Any], currency: str | None) -> None:
    for method in methods:
        if method not in PAYMENT_METHODS:
            raise StripeError(
                f"Invalid payment_method_types: {method} (locally: card, link, swish).",
                param="payment_method_types",
            )
    if "swish" in methods and currency not in (None, "sek"):
        raise StripeError(
            f"The currency provided ({currency}) is invalid. Payments with swish support: sek.",
            param="payment_method_types",
        )


def _check_total(total: int, currency: str | None) -> None:
    minimum = MINIMUM_AMOUNTS.get(currency or "", 1)
    if total < minimum:
        raise StripeError(
            f"The Checkout Session's total amount due must add up to at least {minimum} "
            f"({currency} minor units).",
            param="line_items",
        )


def _expires_at(value: Any, now: int) -> int:
    if value is None:
        return now + DEFAULT_EXPIRY_S
    expires_at = _int(value, "expires_at")
    if not now + MIN_EXPIRY_S <= expires_at <= now + MAX_EXPIRY_S:
        raise StripeError(
            "expires_at must be between 30 minutes and 24 hours after the session is created.",
            param="expires_at",
        )
    return expires_at


# ------------------------------------------------------------------ the card form
@dataclasses.dataclass(frozen=True)
class Card:
    number: str
    exp_month: int
    exp_year: int
    cvc: str

    def as_params(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "cvc": self.cvc,
        }

    def for_charging(self) -> Card:
        """The card localstripe must be given to answer a charge as Stripe would (see CHARGED_AS)."""
        return dataclasses.replace(self, number=CHARGED_AS.get(self.number, self.number))


def parse_card(form: dict[str, Any], today: time.struct_time) -> Card:
    number = "".join(str(form.get("card_number", "")).split())
    if not (number.isdigit() and len(number) == 16 and _luhn_ok(number)):
        raise PageError("Your card number is invalid.")
    month, _, year = str(form.get("expiry", "")).replace(" ", "").partition("/")
    if not (month.isdigit() and year.isdigit() and 1 <= int(month) <= 12):
        raise PageError("Your card's expiration date is incomplete.")
    exp_year = int(year) + 2000 if len(year) == 2 else int(year)
    if (exp_year, int(month)) < (today.tm_year, today.tm_mon):
        raise PageError("Your card's expiration date is in the past.")
    cvc = str(form.get("cvc", "")).strip()
    if not (cvc.isdigit() and len(cvc) == 3):
        raise PageError("Your card's security code is incomplete.")
    return Card(number, int(month), exp_year, cvc)


def _luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


# ------------------------------------------------------------------ the front
class CheckoutFront:
    def __init__(self, localstripe_url: str, api_key: str, port: int = 0) -> None:
        self.ledger = Ledger()
        self.webhooks = WebhookSender()
        self._stripe = StripeApi(localstripe_url, api_key)
        self._idempotency = IdempotencyCache()
        self._sessions: dict[str, CheckoutSession] = {}
        self._lock = threading.Lock()
        # Captures and refunds check what is left, then move money: one at a time, as Stripe
        # serialises them per charge, so two concurrent refunds cannot both pass the check.
        self._money = threading.Lock()
        self._events_secret = secrets.token_hex(16)
        self._server = HttpServer(self.handle, port)
        self._sweeper = Periodic("checkout-expiry", EXPIRY_SWEEP_EVERY_S, self.expire_due)

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def page_url(self) -> str:
        return f"{self.url}{PAGE_PATH}"

    def start(self) -> None:
        self._server.start()
        # localstripe's own events (payment_intent.succeeded on capture, ...) come back here to be
        # normalised and sent on like the front's own.
        reply = self._stripe.post(
            "/_config/webhooks/chargenet",
            {"url": f"{self.url}{LOCALSTRIPE_EVENTS_PATH}", "secret": self._events_secret},
        )
        if not reply.ok:
            raise RuntimeError(f"localstripe refused the webhook registration: {reply.error_message()}")
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()
        self._server.stop()
        self.webhooks.close()

    # --------------------------------------------------------------- HTTP
    def handle(self, request: Request) -> Response:
        if request.path.startswith(PAGE_PATH):
            return self._page(request, request.path[len(PAGE_PATH) :])
        if request.path == LOCALSTRIPE_EVENTS_PATH and request.method == "POST":
            return self._forward(request)
        if not request.path.startswith("/v1/"):
            return json_response(404, StripeError("Unrecognized request URL.", status=404).body)
        if refusal := _key_refusal(request):
            return json_response(refusal.status, refusal.body)
        key = request.header("idempotency-key")
        if request.method == "POST" and key:
            return self._idempotency.run(key, request.path, request.body, lambda: self._api(request))
        return self._api(request)

    def _api(self, request: Request) -> Response:
        try:
            return self._route(request)
        except StripeError as error:
            return json_response(error.status, error.body)

    def _route(self, request: Request) -> Response:
        params = _params(request)
        expand = [str(path) for path in _as_list(params.get("expand"), "expand")]
        match request.method, request.path.strip("/").split("/")[1:]:
            case "POST", ["checkout", "sessions"]:
                return json_response(200, self._export(self.create_session(params), expand))
            case "GET", ["checkout", "sessions", session_id]:
                return json_response(200, self._export(self._session(session_id), expand))
            case "POST", ["checkout", "sessions", session_id, "expire"]:
                return json_response(200, self._export(self.expire(session_id), expand))
            case "POST", ["webhook_endpoints"]:
                return json_response(200, self._add_endpoint(params).as_stripe())
            case "DELETE", ["webhook_endpoints", endpoint_id]:
                return self._remove_endpoint(endpoint_id)
            case "POST", ["payment_intents", intent_id]:
                return self._update_intent(request, intent_id, params, expand)
            case "POST", ["payment_intents", intent_id, "capture"]:
                return self._capture(request, intent_id, params, expand)
            case "POST", ["payment_intents", intent_id, "cancel"]:
                return self._cancel(request, intent_id, params, expand)
            case "POST", ["refunds"]:
                return self._refund(request, params, expand)
        return self._pass(request, request.body, expand)

    # --------------------------------------------------------------- Checkout Sessions
    def create_session(self, params: dict[str, Any]) -> CheckoutSession:
        session = build_session(params, page_url=self.page_url, now=int(time.time()))
        if customer := session.obj["customer"]:
            self._fetch(f"/v1/customers/{customer}")  # Stripe refuses an unknown customer
        with self._lock:
            self._sessions[session.id] = session
        return session

    def expire(self, session_id: str) -> CheckoutSession:
        session = self._session(session_id)
        with session.lock:
            if not session.is_open:
                raise StripeError('Only Checkout Sessions with a status in ["open"] can be expired.')
            session.obj.update(status="expired", url=None)
            self._emit("checkout.session.expired", session.obj)
        return session

    def expire_due(self) -> None:
        now = time.time()
        with self._lock:
            due = [s.id for s in self._sessions.values() if s.is_open and s.obj["expires_at"] <= now]
        for session_id in due:
            with contextlib.suppress(StripeError):  # paid or expired in the meantime
                self.expire(session_id)

    def _session(self, session_id: str) -> CheckoutSession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise StripeError(
                f"No such checkout.session: '{session_id}'",
                status=404,
                code="resource_missing",
                param="session",
            )
        return session

    def _export(self, session: CheckoutSession, expand: list[str]) -> dict[str, Any]:
        obj = dict(session.obj)
        if "line_items" in expand:
            obj["line_items"] = _line_items_list(session)
        for name in ("payment_intent", "setup_intent"):
            if name in expand and obj[name]:
                obj[name] = self._fetch(f"/v1/{name}s/{obj[name]}")
        return obj

    # --------------------------------------------------------------- webhook endpoints
    def _add_endpoint(self, params: dict[str, Any]) -> Endpoint:
        url, events = params.get("url"), _as_list(params.get("enabled_events"), "enabled_events")
        if not url or not events:
            raise StripeError("Missing required param: url and enabled_events.")
        return self.webhooks.add(url, random_id("whsec_", 32), events)

    def _remove_endpoint(self, endpoint_id: str) -> Response:
        if self.webhooks.remove(endpoint_id) is None:
            raise StripeError(
                f"No such webhook endpoint: '{endpoint_id}'", status=404, code="resource_missing"
            )
        return json_response(200, {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})

    # --------------------------------------------------------------- localstripe, gaps filled
    def _capture(
        self, request: Request, intent_id: str, params: dict[str, Any], expand: list[str]
    ) -> Response:
        amount = _optional_int(params.get("amount_to_capture"), "amount_to_capture")
        with self._money:
            reply = self._capture_checked(request, intent_id, amount)
        return self._reply(reply, expand)

    def _capture_checked(self, request: Request, intent_id: str, amount: int | None) -> StripeReply:
        intent = self._fetch(f"/v1/payment_intents/{intent_id}", ("latest_charge",))
        if refusal := capture_refusal(intent, amount):
            raise refusal
        reply = self._call(request, request.body)
        if reply.ok:
            charge_id = intent["latest_charge"]["id"]
            released = intent["amount"] - (intent["amount"] if amount is None else amount)
            # localstripe stands for the released part with refunds, the only ones on a charge
            # captured just now (refunds of an uncaptured charge are refused above).
            refunds = self._fetch("/v1/refunds", query={"charge": charge_id})["data"] if released else []
            self.ledger.record_capture(charge_id, released, [refund["id"] for refund in refunds])
        return reply

    def _update_intent(
        self, request: Request, intent_id: str, params: dict[str, Any], expand: list[str]
    ) -> Response:
        # localstripe's PaymentIntent has no receipt_email: the front keeps it ("" unsets it).
        receipt_email = params.pop("receipt_email", None)
        if receipt_email is not None and not isinstance(receipt_email, str):
            raise StripeError("Invalid string: receipt_email", param="receipt_email")
        params.pop("expand", None)  # applied to the reply below; localstripe would refuse it
        if params:  # localstripe refuses an update with nothing in it
            reply = self._call(request, encode_form(params).encode())
            if not reply.ok:
                return self._reply(reply, expand)
        intent_path = f"/v1/payment_intents/{intent_id}"
        self._fetch(intent_path)  # Stripe's 404 for an unknown intent, before anything is kept
        if receipt_email is not None:
            self.ledger.record_intent(intent_id, receipt_email=receipt_email or None)
        return json_response(200, self._fetch(intent_path, expand))

    def _cancel(
        self, request: Request, intent_id: str, params: dict[str, Any], expand: list[str]
    ) -> Response:
        reason = params.pop("cancellation_reason", None)
        if reason is not None and reason not in CANCELLATION_REASONS:
            raise StripeError(f"Invalid cancellation_reason: {reason}", param="cancellation_reason")
        reply = self._call(request, encode_form(params).encode())  # localstripe refuses the reason
        if reply.ok:
            self.ledger.record_intent(intent_id, cancellation_reason=reason)
            # localstripe sends no event for it
            self._emit("payment_intent.canceled", normalise(reply.body, self.ledger))
        return self._reply(reply, expand)

    def _refund(self, request: Request, params: dict[str, Any], expand: list[str]) -> Response:
        amount = _optional_int(params.get("amount"), "amount")
        with self._money:
            charge = self._charge_to_refund(params)
            if refusal := refund_refusal(charge, amount):
                raise refusal
            body = request.body
            if amount is None:  # localstripe would refund the whole hold, released part included
                body = b"&".join(
                    part for part in (body, urlencode({"amount": refundable(charge)}).encode()) if part
                )
            return self._pass(request, body, expand)

    def _charge_to_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        if intent_id := params.get("payment_intent"):
            charge = self._fetch(f"/v1/payment_intents/{intent_id}", ("latest_charge",)).get("latest_charge")
            if not isinstance(charge, dict):
                raise StripeError(
                    f"PaymentIntent {intent_id} does not have a successful charge to refund.",
                    code="charge_not_refundable",
                )
            return charge
        if charge_id := params.get("charge"):
            return self._fetch(f"/v1/charges/{charge_id}")
        raise StripeError(
            "One of the following params should be provided for this request: payment_intent or charge."
        )

    def _pass(self, request: Request, body: bytes, expand: list[str]) -> Response:
        return self._reply(self._call(request, body), expand)

    def _call(self, request: Request, body: bytes) -> StripeReply:
        headers = {"Authorization": request.header("authorization")}
        return self._stripe.raw(request.method, request.path, request.query, body, headers)

    def _reply(self, reply: StripeReply, expand: list[str]) -> Response:
        return json_response(reply.status, normalise(reply.body, self.ledger, expand))

    def _fetch(
        self, path: str, expand: Iterable[str] = (), query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        reply = self._stripe.get(path, query)
        body = normalise(reply.body, self.ledger, tuple(expand))
        if not reply.ok:
            raise StripeError.of(reply.status, body)
        return body

    def _forward(self, request: Request) -> Response:
        if not signature_valid(request.body, request.header("stripe-signature"), self._events_secret):
            return Response(400)
        event = json.loads(request.body)
        obj = normalise(event["data"]["object"], self.ledger)
        self.webhooks.send(new_event(event["type"], obj, event_id=event["id"]))
        return Response(200)

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        self.webhooks.send(new_event(kind, dict(obj)))

    # --------------------------------------------------------------- the hosted page
    def _page(self, request: Request, session_id: str) -> Response:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            return _html(404, _message_page("This checkout page does not exist."))
        if request.method == "GET":
            return _html(200, _payment_page(session, "") if session.is_open else _closed_page(session))
        if request.method != "POST":
            return _html(405, _message_page("Method not allowed."))
        form = decode_form(request.body.decode())
        with session.lock:
            if not session.is_open:
                return _html(409, _closed_page(session))
            try:
                self._pay(session, form)
            except PageError as error:
                return _html(402, _payment_page(session, str(error)))
        location = str(session.obj["success_url"]).replace("{CHECKOUT_SESSION_ID}", session.id)
        return Response(303, b"", [("Location", location)])

    def _pay(self, session: CheckoutSession, form: dict[str, Any]) -> None:
        email = str(form.get("email") or session.obj["customer_email"] or "").strip()
        if form.get("method") == "swish":
            if session.obj["mode"] != "payment" or "swish" not in session.obj["payment_method_types"]:
                raise PageError("Swish is not offered for this payment.")
            next_year = time.gmtime().tm_year + 1
            self._charge(session, Card(SWISH_FUNDING_CARD, 12, next_year, "123"), email, "swish")
            return
        card = parse_card(form, time.gmtime())
        if session.obj["mode"] == "setup":
            self._set_up(session, card, email)
        else:
            self._charge(session, card, email, "card")

    def _charge(self, session: CheckoutSession, card: Card, email: str, method: str) -> None:
        payment_method = self._create_payment_method(card.for_charging(), email)
        params: dict[str, Any] = {
            "amount": session.obj["amount_total"],
            "currency": session.obj["currency"],
            "payment_method": payment_method,
            "confirm": True,
            # Swish has no manual capture: it is charged in full and the product refunds the rest.
            "capture_method": "automatic" if method == "swish" else session.capture_method,
            "metadata": session.intent_data.get("metadata") or {},
        }
        if session.obj["customer"]:
            params["customer"] = session.obj["customer"]
        reply = self._stripe.post("/v1/payment_intents", params)
        if not reply.ok:  # declined: localstripe has sent payment_intent.payment_failed
            raise PageError(reply.error_message())
        self.ledger.record_intent(
            reply.body["id"],
            payment_method_types=[method],
            description=session.intent_data.get("description"),
        )
        intent = normalise(reply.body, self.ledger)
        paid = intent["status"] == "succeeded"
        self._complete(
            session, email, payment_intent=intent["id"], payment_status="paid" if paid else "unpaid"
        )
        if intent["status"] == "requires_capture":
            self._emit("payment_intent.amount_capturable_updated", intent)
        self._emit("checkout.session.completed", session.obj)

    def _set_up(self, session: CheckoutSession, card: Card, email: str) -> None:
        payment_method = self._create_payment_method(card, email)
        customer = session.obj["customer"]
        intent_params: dict[str, Any] = {"payment_method_types": ["card"], "metadata": session.setup_metadata}
        if customer:
            intent_params["customer"] = customer
        intent = self._ok(self._stripe.post("/v1/setup_intents", intent_params))
        confirmed = self._ok(
            self._stripe.post(f"/v1/setup_intents/{intent['id']}/confirm", {"payment_method": payment_method})
        )
        if customer:
            # Stripe attaches the card to the customer; it does not make it the default for
            # invoices (`invoice_settings.default_payment_method`): that is the product's call.
            self._ok(
                self._stripe.post(f"/v1/payment_methods/{payment_method}/attach", {"customer": customer})
            )
        self._complete(session, email, setup_intent=intent["id"], payment_status="no_payment_required")
        self._emit("setup_intent.succeeded", confirmed)
        self._emit("checkout.session.completed", session.obj)

    def _create_payment_method(self, card: Card, email: str) -> str:
        params: dict[str, Any] = {"type": "card", "card": card.as_params()}
        if email:
            params["billing_details"] = {"email": email}
        return str(self._ok(self._stripe.post("/v1/payment_methods", params))["id"])

    @staticmethod
    def _ok(reply: StripeReply) -> dict[str, Any]:
        if not reply.ok:
            raise PageError(reply.error_message())
        return reply.body

    @staticmethod
    def _complete(session: CheckoutSession, email: str, **fields: str) -> None:
        session.obj.update(
            status="complete",
            url=None,
            customer_details={"email": email or None},
            **fields,
        )


# ------------------------------------------------------------------ helpers
def _key_refusal(request: Request) -> StripeError | None:
    """Stripe's answer to a missing or live key (a live key here is a configuration mistake)."""
    scheme, _, credentials = request.header("authorization").partition(" ")
    if scheme.lower() == "basic":  # curl -u sk_test_...:
        try:
            credentials = base64.b64decode(credentials).decode().split(":", 1)[0]
        except ValueError:  # not base64, not UTF-8
            credentials = ""
    if not credentials.startswith("sk_"):
        return StripeError("You did not provide an API key.", status=401)
    if not credentials.startswith("sk_test_"):
        return StripeError("Only test-mode keys (sk_test_...) work against the local stack.", status=401)
    return None


def _params(request: Request) -> dict[str, Any]:
    text = request.query if request.method in ("GET", "DELETE") else request.body.decode()
    return decode_form(text)


def _optional_int(value: Any, param: str) -> int | None:
    return None if value in (None, "") else _int(value, param)


def _line_items_list(session: CheckoutSession) -> dict[str, Any]:
    data = [
        {
            "id": f"li_{session.id[-12:]}{index}",
            "object": "item",
            "amount_subtotal": item.amount,
            "amount_total": item.amount,
            "currency": item.currency,
            "description": item.name,
            "quantity": item.quantity,
            "price": {"object": "price", "currency": item.currency, "unit_amount": item.unit_amount},
        }
        for index, item in enumerate(session.line_items)
    ]
    url = f"/v1/checkout/sessions/{session.id}/line_items"
    return {"object": "list", "data": data, "has_more": False, "url": url}


def _html(status: int, page: str) -> Response:
    return Response(status, page.encode(), [("Content-Type", "text/html; charset=utf-8")])


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>chargenet checkout (local)</title>
<style>body{{font-family:sans-serif;max-width:26em;margin:2em auto}}label{{display:block;margin:.6em 0}}
input{{width:100%;padding:.4em}}.error{{color:#b00020}}</style></head>
<body><h1>{title}</h1>{body}<p><small>Local Stripe emulation. Test cards: 4242 4242 4242 4242 succeeds;
4000 0000 0000 0002 is declined; 4000 0000 0000 0341 is declined when charged.</small></p></body></html>"""


def _message_page(message: str) -> str:
    return _PAGE.format(title="Checkout", body=f"<p>{html.escape(message)}</p>")


def _closed_page(session: CheckoutSession) -> str:
    done = session.obj["status"] == "complete"
    return _message_page("This payment is complete." if done else "This checkout session has expired.")


def _payment_page(session: CheckoutSession, error: str) -> str:
    obj = session.obj
    setup = obj["mode"] == "setup"
    title = "Save a card" if setup else f"Pay {_money(obj['amount_total'], obj['currency'])}"
    items = "".join(
        f"<li>{html.escape(i.name)} x {i.quantity}: {_money(i.amount, i.currency)}</li>"
        for i in session.line_items
    )
    email = html.escape(str(obj["customer_email"] or ""))
    parts = [
        f'<p class="error">{html.escape(error)}</p>' if error else "",
        f"<ul>{items}</ul>" if items else "",
        f'<form method="post"><label>Email <input name="email" type="email" value="{email}"></label>'
        '<label>Card number <input name="card_number" inputmode="numeric" autocomplete="cc-number"></label>'
        '<label>Expiry (MM/YY) <input name="expiry" autocomplete="cc-exp"></label>'
        '<label>CVC <input name="cvc" inputmode="numeric" autocomplete="cc-csc"></label>'
        f'<button type="submit">{"Save card" if setup else "Pay"}</button></form>',
    ]
    if "swish" in obj["payment_method_types"] and not setup:
        parts.append(
            '<form method="post"><input type="hidden" name="method" value="swish">'
            f'<input type="hidden" name="email" value="{email}"><button type="submit">Pay with Swish</button></form>'
        )
    return _PAGE.format(title=html.escape(title), body="".join(parts))
