"""Stripe events and their signed delivery to webhook endpoints, as Stripe sends them.

`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, signed
again at each attempt; a non-2xx answer or no answer is retried with backoff (Stripe
retries for days in live mode; locally a few times within seconds).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError
from urllib.request import Request, urlopen

from chargenet_local.fault_injection import WebhookFaults

log = logging.getLogger("chargenet.local.stripe")

DELIVERY_ATTEMPTS = 5
FIRST_RETRY_DELAY_S = 0.5  # then 1, 2, 4 s
DELIVERY_TIMEOUT_S = 30  # the API front waits for the function


def api_version() -> str:
    """The version the product's stripe library speaks, as an account pinned to it would send."""
    import stripe

    return str(stripe.api_version)


def random_id(prefix: str, length: int = 24) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def new_event(kind: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or random_id("evt_"),
        "object": "event",
        "api_version": api_version(),
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def signature_valid(payload: bytes, header: str, secret: str, tolerance_s: int = 300) -> bool:
    """Check a Stripe-Signature header (localstripe's events reach the front signed this way)."""
    parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for key, value in parts if key == "t"]
    if not timestamps or not timestamps[0].isdigit():
        return False
    timestamp = int(timestamps[0])
    expected = signature_header(payload, secret, timestamp).split("v1=", 1)[1]
    signed_ok = any(key == "v1" and hmac.compare_digest(value, expected) for key, value in parts)
    return signed_ok and abs(time.time() - timestamp) <= tolerance_s


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    secret: str
    events: frozenset[str]  # event types, or {"*"}

    def wants(self, kind: str) -> bool:
        return "*" in self.events or kind in self.events

    def as_stripe(self) -> dict[str, Any]:
        """The WebhookEndpoint object (`secret` is only shown when it is created, as in Stripe)."""
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": api_version(),
            "enabled_events": sorted(self.events),
            "livemode": False,
            "secret": self.secret,
            "status": "enabled",
            "url": self.url,
        }


class WebhookSender:
    def __init__(self, attempts: int = DELIVERY_ATTEMPTS, first_delay_s: float = FIRST_RETRY_DELAY_S) -> None:
        self._attempts = attempts
        self._first_delay_s = first_delay_s
        self._endpoints: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="stripe-webhook")
        self._timers: set[threading.Timer] = set()
        self._closed = False
        # The chaos run's repeats and delays (bench/chaos.py); none unless a harness asks for them.
        self._faults = WebhookFaults(os.getpid())

    def add(self, url: str, secret: str, events: Iterable[str] = ("*",)) -> Endpoint:
        endpoint = Endpoint(random_id("we_"), url, secret, frozenset(events))
        with self._lock:
            self._endpoints[endpoint.id] = endpoint
        return endpoint

    def remove(self, endpoint_id: str) -> Endpoint | None:
        with self._lock:
            return self._endpoints.pop(endpoint_id, None)

    def send(self, event: dict[str, Any]) -> None:
        """Deliver in the background to every endpoint that wants this event type."""
        payload = json.dumps(event, indent=2).encode()
        with self._lock:
            targets = [e for e in self._endpoints.values() if e.wants(event["type"])]
        for endpoint in targets:
            for delay_s in self._faults.delays_s(endpoint.url):
                self._schedule(delay_s, endpoint, payload, event["type"], 1)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, endpoint: Endpoint, payload: bytes, kind: str, attempt: int) -> None:
        with self._lock:
            if not self._closed:
                self._pool.submit(self._deliver, endpoint, payload, kind, attempt)

    def _deliver(self, endpoint: Endpoint, payload: bytes, kind: str, attempt: int) -> None:
        status = _post(endpoint, payload)
        if 200 <= status < 300:
            return
        if attempt >= self._attempts:
            log.warning("webhook %s to %s failed %d times (last: %s)", kind, endpoint.url, attempt, status)
            return
        self._schedule(self._first_delay_s * 2 ** (attempt - 1), endpoint, payload, kind, attempt + 1)

    def _schedule(self, delay_s: float, endpoint: Endpoint, payload: bytes, kind: str, attempt: int) -> None:
        if delay_s <= 0:
            self._submit(endpoint, payload, kind, attempt)
            return
        # A timer, not a sleep: a dead endpoint must not hold a worker others need.
        timer = threading.Timer(delay_s, lambda: self._due(timer, endpoint, payload, kind, attempt))
        with self._lock:
            if self._closed:
                return
            self._timers.add(timer)
        timer.start()

    def _due(
        self, timer: threading.Timer, endpoint: Endpoint, payload: bytes, kind: str, attempt: int
    ) -> None:
        with self._lock:
            self._timers.discard(timer)
        self._submit(endpoint, payload, kind, attempt)


def _post(endpoint: Endpoint, payload: bytes) -> int:
    """The endpoint's HTTP status, or 0 when it could not be reached."""
    request = Request(endpoint.url, data=payload, method="POST")
    request.add_header("Content-Type", "application/json; charset=utf-8")
    request.add_header("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
    request.add_header("Stripe-Signature", signature_header(payload, endpoint.secret, int(time.time())))
    try:
        with urlopen(request, timeout=DELIVERY_TIMEOUT_S) as reply:
            return int(reply.status)
    except URLError as error:
        return int(getattr(error, "code", 0))
    except OSError:
        return 0
