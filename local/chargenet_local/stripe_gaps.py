"""Where localstripe differs from Stripe in ways the product would notice, and the fills.

The product is written against real Stripe; the checkout front passes every call through
these so localstripe's gaps cannot shape product logic that would then fail in the cloud:

- Idempotency keys: localstripe ignores them, so a retried POST would create a second
  object (a second refund, a second capture attempt). `IdempotencyCache` replays the first
  response for the same key and path for 24 h, and refuses the key with other parameters.
- Partial capture: localstripe records the released part as a Refund of the rest; Stripe
  (since 2025-03-31) creates no refund, reports `amount_captured` and leaves
  `amount_refunded` alone. The `Ledger` remembers each capture made through the front and
  `normalise` hides the release.
- Over-capture and over-refund: localstripe accepts a refund above what is left and answers
  an impossible capture with a bare "Bad request"; `capture_refusal` and `refund_refusal`
  answer as Stripe does. A refund without an amount refunds what is left, not the hold.
- Parameters localstripe refuses: a PaymentIntent's `description` (set through Checkout) and
  `cancellation_reason`; the front keeps them in the `Ledger` and shows them on the intent.
- Object shapes: PaymentIntents lack `amount_capturable` / `amount_received`, embed the
  whole charge in `latest_charge` (Stripe gives its id unless expanded) and still carry the
  `charges` list Stripe removed in 2022; charges lack `amount_captured`; card declines come
  back typed `invalid_request_error` (Stripe: `card_error`) and missing objects without
  `resource_missing`. `normalise` fixes these in every reply and event.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from chargenet_local.httpserve import Response, json_response
from chargenet_local.stripe_local import StripeError

IDEMPOTENCY_TTL_S = 24 * 3600


# ------------------------------------------------------------------ the ledger
@dataclass
class Ledger:
    """What the front saw happen that localstripe records differently. Thread-safe."""

    _released: dict[str, int] = field(default_factory=dict)  # charge id -> amount released at capture
    _release_refunds: set[str] = field(default_factory=set)  # localstripe's refunds standing for them
    # PaymentIntent fields localstripe cannot hold (description, payment_method_types, cancellation_reason)
    _intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """No change while the caller reads the whole ledger (a snapshot)."""
        with self._lock:
            yield

    def record_capture(self, charge_id: str, released: int, release_refund_ids: Collection[str]) -> None:
        with self._lock:
            self._released[charge_id] = released
            self._release_refunds.update(release_refund_ids)

    def record_intent(self, payment_intent_id: str, **fields: Any) -> None:
        with self._lock:
            self._intents.setdefault(payment_intent_id, {}).update(fields)

    def released(self, charge_id: str) -> int:
        with self._lock:
            return self._released.get(charge_id, 0)

    def is_release(self, refund_id: str) -> bool:
        with self._lock:
            return refund_id in self._release_refunds

    def intent_fields(self, payment_intent_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._intents.get(payment_intent_id, {}))


# ------------------------------------------------------------------ object shapes
def normalise(value: Any, ledger: Ledger, expand: Collection[str] = ()) -> Any:
    """Rewrite localstripe's objects (anywhere in a reply) into Stripe's current shapes."""
    if isinstance(value, list):
        return [normalise(item, ledger, expand) for item in value]
    if not isinstance(value, dict):
        return value
    obj = {key: normalise(item, ledger, expand) for key, item in value.items()}
    kind = obj.get("object")
    if kind == "list" and isinstance(obj.get("data"), list):
        return _without_releases(obj, ledger)
    if kind == "charge":
        return _charge(obj, ledger)
    if kind == "payment_intent":
        return _payment_intent(obj, ledger, expand)
    if "error" in obj and isinstance(obj["error"], dict):
        return {**obj, "error": _error(obj["error"])}
    return obj


def _without_releases(page: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    data = [
        item
        for item in page["data"]
        if not (isinstance(item, dict) and item.get("object") == "refund" and ledger.is_release(item["id"]))
    ]
    if len(data) == len(page["data"]):
        return page
    return {**page, "data": data, "total_count": len(data)}


def _charge(charge: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    released = ledger.released(charge["id"])
    captured = charge["amount"] - released if charge.get("captured") else 0
    refunded = charge.get("amount_refunded", 0) - released
    return {
        **charge,
        "amount_captured": captured,
        "amount_refunded": refunded,
        "refunded": captured > 0 and refunded >= captured,
    }


def _payment_intent(intent: dict[str, Any], ledger: Ledger, expand: Collection[str]) -> dict[str, Any]:
    intent = {
        "description": None,
        "cancellation_reason": None,
        "payment_method_types": ["card"],
        **intent,
        **ledger.intent_fields(intent["id"]),
    }
    intent.pop("charges", None)
    charge = intent.get("latest_charge")
    status = intent.get("status")
    has_charge = isinstance(charge, dict)
    intent["amount_capturable"] = intent["amount"] if status == "requires_capture" else 0
    intent["amount_received"] = charge["amount_captured"] if has_charge and status == "succeeded" else 0
    if has_charge and not any(path.endswith("latest_charge") for path in expand):
        intent["latest_charge"] = charge["id"]
    return intent


def _error(error: dict[str, Any]) -> dict[str, Any]:
    if error.get("code") == "card_declined":
        return {**error, "type": "card_error", "decline_code": error.get("decline_code", "generic_decline")}
    if error.get("message") == "Not Found" and "code" not in error:
        return {**error, "code": "resource_missing"}
    return error


# ------------------------------------------------------------------ refusals
def capture_refusal(intent: dict[str, Any], amount_to_capture: int | None) -> StripeError | None:
    """Stripe's refusal of this capture of a (normalised) PaymentIntent, or None."""
    if intent.get("status") != "requires_capture":
        return StripeError(
            f"This PaymentIntent could not be captured because it has a status of {intent.get('status')}. "
            "Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
            code="payment_intent_unexpected_state",
        )
    capturable = intent["amount_capturable"]
    if amount_to_capture is not None and not 0 < amount_to_capture <= capturable:
        return StripeError(
            f"The amount_to_capture ({amount_to_capture}) must be positive and at most "
            f"the amount_capturable ({capturable}).",
            code="amount_too_large",
            param="amount_to_capture",
        )
    return None


def refundable(charge: dict[str, Any]) -> int:
    """What is left to refund on a (normalised) charge."""
    return max(0, charge["amount_captured"] - charge["amount_refunded"])


def refund_refusal(charge: dict[str, Any], amount: int | None) -> StripeError | None:
    """Stripe's refusal of this refund of a (normalised) charge, or None."""
    left = refundable(charge)
    if not charge.get("captured"):
        return StripeError(
            f"Charge {charge['id']} has not been captured: cancel its PaymentIntent to release the hold.",
            code="charge_not_refundable",
        )
    if left == 0:
        return StripeError(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    if amount is not None and not 0 < amount <= left:
        return StripeError(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
            code="amount_too_large",
            param="amount",
        )
    return None


# ------------------------------------------------------------------ idempotency
@dataclass
class _Entry:
    fingerprint: str
    expires_at: float
    done: threading.Event = field(default_factory=threading.Event)
    response: Response | None = None


class IdempotencyCache:
    """Same `Idempotency-Key` on the same path -> the same response, for 24 h (Stripe's minimum).

    A second request with the key while the first runs waits for it and gets its response.
    Server errors are not kept, so a retry after one runs again (as Stripe does).
    """

    def __init__(self, ttl_s: float = IDEMPOTENCY_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def run(self, key: str, path: str, body: bytes, compute: Callable[[], Response]) -> Response:
        fingerprint = hashlib.sha256(body).hexdigest()
        entry, first = self._claim((key, path), fingerprint)
        if not first:
            entry.done.wait()
            if entry.response is None:  # the first one crashed and was forgotten: this one runs
                return self.run(key, path, body, compute)
            if entry.fingerprint != fingerprint:
                return json_response(400, _idempotency_error(key))
            replay = entry.response
            return Response(replay.status, replay.body, [*replay.headers, ("Idempotent-Replayed", "true")])
        try:
            entry.response = compute()
        finally:
            if entry.response is None or entry.response.status >= 500:
                with self._lock:
                    self._entries.pop((key, path), None)
            entry.done.set()
        return entry.response

    def _claim(self, slot: tuple[str, str], fingerprint: str) -> tuple[_Entry, bool]:
        now = self._clock()
        with self._lock:
            for expired in [k for k, e in self._entries.items() if e.expires_at <= now]:
                del self._entries[expired]
            if slot in self._entries:
                return self._entries[slot], False
            entry = _Entry(fingerprint, now + self._ttl_s)
            self._entries[slot] = entry
            return entry, True


def _idempotency_error(key: str) -> dict[str, Any]:
    return {
        "error": {
            "type": "idempotency_error",
            "message": (
                f"Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different request."
            ),
        }
    }
