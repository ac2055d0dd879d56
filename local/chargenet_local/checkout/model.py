"""A Checkout Session as the local front keeps it: the create call's parameters checked as Stripe
checks them (refusing what chargenet does not use), the session object the API returns, its
line items. No HTTP here: `front` serves it, `pages` shows it to the payer.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import Any

from chargenet_local.stripe_local import StripeError
from chargenet_local.stripe_webhooks import random_id

MIN_EXPIRY_S, MAX_EXPIRY_S, DEFAULT_EXPIRY_S = 30 * 60, 24 * 3600, 24 * 3600
# Stripe's minimum charge amounts (minor units) for the currencies the network prices in.
MINIMUM_AMOUNTS = {"eur": 50, "usd": 50, "gbp": 30, "sek": 300, "nok": 300, "dkk": 250}
PAYMENT_METHODS = frozenset({"card", "link", "swish"})
CAPTURE_METHODS = frozenset({"automatic", "automatic_async", "manual"})

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
    items = [_line_item(item, i) for i, item in enumerate(as_list(params.get("line_items"), "line_items"))]
    currency = _currency(mode, items, params.get("currency"))
    methods = as_list(params.get("payment_method_types") or ["card"], "payment_method_types")
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


def as_list(value: Any, param: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise StripeError(f"Invalid array: {param}", param=param)
    return value


def as_int(value: Any, param: str) -> int:
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
    quantity = as_int(item.get("quantity"), f"{param}[quantity]")
    unit_amount = as_int(price.get("unit_amount"), f"{param}[price_data][unit_amount]")
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
    expires_at = as_int(value, "expires_at")
    if not now + MIN_EXPIRY_S <= expires_at <= now + MAX_EXPIRY_S:
        raise StripeError(
            "expires_at must be between 30 minutes and 24 hours after the session is created.",
            param="expires_at",
        )
    return expires_at


def line_items_list(session: CheckoutSession) -> dict[str, Any]:
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
