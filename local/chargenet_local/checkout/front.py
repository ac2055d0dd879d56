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
import json
import logging
import pickle
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from chargenet_local.checkout.model import CheckoutSession, as_int, as_list, build_session, line_items_list
from chargenet_local.checkout.pages import (
    Card,
    PageError,
    closed_page,
    html_response,
    message_page,
    parse_card,
    payment_page,
)
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
CANCELLATION_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer", "abandoned"})
# localstripe has no Swish: the money moves as a card that succeeds, captured at once.
SWISH_FUNDING_CARD = "4242424242424242"


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
        expand = [str(path) for path in as_list(params.get("expand"), "expand")]
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

    # --------------------------------------------------------------- kept across restarts
    def saved(self) -> bytes:
        """What localstripe does not hold (the sessions, the ledger): kept with the stack's state."""
        from chargenet_local.persistence import dumps

        with self._lock, self.ledger.holding():
            return dumps((self.ledger, self._sessions))

    def restore(self, saved: bytes) -> None:
        """Before `start`: the sessions and ledger of the last run (`saved`)."""
        self.ledger, self._sessions = pickle.loads(saved)  # the stack's own file

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
            obj["line_items"] = line_items_list(session)
        for name in ("payment_intent", "setup_intent"):
            if name in expand and obj[name]:
                obj[name] = self._fetch(f"/v1/{name}s/{obj[name]}")
        return obj

    # --------------------------------------------------------------- webhook endpoints
    def _add_endpoint(self, params: dict[str, Any]) -> Endpoint:
        url, events = params.get("url"), as_list(params.get("enabled_events"), "enabled_events")
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
            return html_response(404, message_page("This checkout page does not exist."))
        if request.method == "GET":
            return html_response(200, payment_page(session, "") if session.is_open else closed_page(session))
        if request.method != "POST":
            return html_response(405, message_page("Method not allowed."))
        form = decode_form(request.body.decode())
        with session.lock:
            if not session.is_open:
                return html_response(409, closed_page(session))
            try:
                self._pay(session, form)
            except PageError as error:
                return html_response(402, payment_page(session, str(error)))
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
    return None if value in (None, "") else as_int(value, param)
