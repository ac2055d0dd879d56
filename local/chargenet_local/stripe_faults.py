"""A failure-injecting proxy between the product's Stripe client and the local Stripe front.

The stack points the functions' `STRIPE_API_BASE` here; unarmed, every request passes through
to the checkout front unchanged. Tests and the chaos run arm rules at the control URL
(`StackState.stripe_faults_url`):

    POST   {"method": "POST", "path": "^/v1/payment_intents/[^/]+/capture$",
            "mode": "500" | "timeout" | "reset" | "500_after", "times": 2}
           optional: "probability": 0.3 with "times": null (random, seeded by "seed"),
                     "hold_s" (how long "timeout" holds the request)
    GET    the armed rules, each with the failures it injected and their Idempotency-Keys
    DELETE clear every rule

A rule matches a request when its method (any, if not given) and its path regex (`re.search`
on the path, without the query string) do. Modes:
- "500": a Stripe-shaped 500 without forwarding (nothing happened at Stripe);
- "timeout": the request is held past the client's timeout and never forwarded;
- "reset": the connection is reset without an answer (TCP RST);
- "500_after": the request is forwarded, then answered with a 500: it took effect at Stripe
  but the client saw a failure, which only the idempotency key makes safe to retry.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import random
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chargenet_local.httpserve import Request, Response, json_response, read_request

log = logging.getLogger("chargenet.local.stripe_faults")

CONTROL_PATH = "/_faults"
# Longer than the product's Stripe client timeout (chargenet.adapters.stripe_gateway.STRIPE_TIMEOUT_S):
# the client gives up first, as it would on a Stripe that hangs.
DEFAULT_HOLD_S = 12.0
UPSTREAM_TIMEOUT_S = 60.0
# Not forwarded: they describe this hop, not the request (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class FaultMode(StrEnum):
    FAIL = "500"
    TIMEOUT = "timeout"
    RESET = "reset"
    FAIL_AFTER = "500_after"


class FaultRule(BaseModel):
    """What the control interface accepts (POST body)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    mode: FaultMode
    method: str | None = None
    times: int | None = Field(default=1, ge=1)  # None: no limit
    probability: float = Field(default=1.0, gt=0, le=1)
    seed: int = 0
    hold_s: float | None = Field(default=None, gt=0)

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"path is not a regular expression: {error}") from None
        return value

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else None


@dataclass
class ArmedRule:
    rule_id: int
    rule: FaultRule
    pattern: re.Pattern[str]
    dice: random.Random
    injected: int = 0
    idempotency_keys: list[str | None] = field(default_factory=list)  # of the requests it failed

    @property
    def exhausted(self) -> bool:
        return self.rule.times is not None and self.injected >= self.rule.times

    def matches(self, method: str, path: str) -> bool:
        wanted = self.rule.method
        return (wanted is None or wanted == method.upper()) and self.pattern.search(path) is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            **self.rule.model_dump(mode="json"),
            "injected": self.injected,
            "idempotency_keys": list(self.idempotency_keys),
            "armed": not self.exhausted,
        }


@dataclass
class FaultBook:
    """The armed rules; safe to use from the proxy's request threads."""

    _rules: list[ArmedRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def arm(self, rule: FaultRule) -> ArmedRule:
        armed = ArmedRule(next(self._ids), rule, re.compile(rule.path), random.Random(rule.seed))
        with self._lock:
            self._rules.append(armed)
        return armed

    def clear(self) -> int:
        with self._lock:
            count = len(self._rules)
            self._rules.clear()
        return count

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [armed.as_json() for armed in self._rules]

    def pick(self, method: str, path: str, idempotency_key: str | None = None) -> ArmedRule | None:
        """The rule that injects a failure into this request (counted), in the order armed."""
        with self._lock:
            for armed in self._rules:
                if armed.exhausted or not armed.matches(method, path):
                    continue
                if armed.rule.probability < 1 and armed.dice.random() >= armed.rule.probability:
                    continue
                armed.injected += 1
                armed.idempotency_keys.append(idempotency_key)
                return armed
        return None


def injected_error(armed: ArmedRule) -> Response:
    """The answer Stripe gives when it fails on its side (an `api_error`)."""
    body = {
        "error": {
            "type": "api_error",
            "message": f"An unknown error occurred (injected by the local fault proxy, rule {armed.rule_id}).",
        }
    }
    return json_response(500, body, [("Request-Id", f"req_fault_{armed.rule_id}_{armed.injected}")])


class StripeFaultProxy:
    def __init__(self, upstream_url: str, port: int = 0, hold_s: float = DEFAULT_HOLD_S) -> None:
        self.faults = FaultBook()
        self._upstream = urlsplit(upstream_url)
        self._hold_s = hold_s
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def control_url(self) -> str:
        return f"{self.url}{CONTROL_PATH}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="stripe-faults", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()  # held requests end now
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------ control
    def control(self, request: Request) -> Response:
        if request.method == "GET":
            rules = self.faults.snapshot()
            return json_response(200, {"rules": rules, "injected": sum(r["injected"] for r in rules)})
        if request.method == "DELETE":
            return json_response(200, {"cleared": self.faults.clear()})
        if request.method != "POST":
            return json_response(405, {"message": "use GET, POST or DELETE"})
        try:
            rule = FaultRule.model_validate_json(request.body or b"{}")
        except ValidationError as error:
            problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()]
            return json_response(400, {"message": "invalid fault rule", "errors": problems})
        armed = self.faults.arm(rule)
        log.info("fault rule armed: %s", armed.as_json())
        return json_response(201, armed.as_json())

    # ------------------------------------------------------------ proxying
    def hold(self, armed: ArmedRule) -> None:
        self._stopping.wait(armed.rule.hold_s or self._hold_s)

    def forward(self, request: Request) -> Response:
        connection = http.client.HTTPConnection(
            self._upstream.hostname or "127.0.0.1", self._upstream.port, timeout=UPSTREAM_TIMEOUT_S
        )
        headers = {name: value for name, value in request.headers.items() if name not in _HOP_BY_HOP}
        target = request.path + (f"?{request.query}" if request.query else "")
        try:
            connection.request(request.method, target, body=request.body or None, headers=headers)
            reply = connection.getresponse()
            body = reply.read()
        except OSError as error:
            log.warning("Stripe front unreachable: %s", error)
            payload = {"error": {"type": "api_error", "message": "The local Stripe front is unreachable."}}
            return json_response(502, payload)
        finally:
            connection.close()
        kept = [(name, value) for name, value in reply.getheaders() if name.lower() not in _HOP_BY_HOP]
        return Response(reply.status, body, kept)


class _Reset(Exception):
    """The connection is to be reset, not answered."""


def _handler_for(proxy: StripeFaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            request = read_request(self)
            try:
                response = self._respond(request)
            except _Reset:
                # SO_LINGER 0: close() sends a RST, what a client sees when a load balancer drops it.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            except Exception:  # a bug here must not look like an injected fault
                log.exception("%s %s failed in the fault proxy", self.command, request.path)
                response = json_response(500, {"message": "fault proxy error"})
            if response is None:  # held past the client's patience: it left, nobody to answer
                self.close_connection = True
                return
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def _respond(self, request: Request) -> Response | None:
            if request.path == CONTROL_PATH:
                return proxy.control(request)
            armed = proxy.faults.pick(request.method, request.path, request.header("idempotency-key") or None)
            if armed is None:
                return proxy.forward(request)
            log.info("injecting %s into %s %s", armed.rule.mode.value, request.method, request.path)
            if armed.rule.mode is FaultMode.RESET:
                raise _Reset
            if armed.rule.mode is FaultMode.TIMEOUT:
                proxy.hold(armed)
                return None
            if armed.rule.mode is FaultMode.FAIL_AFTER:
                proxy.forward(request)  # it takes effect at Stripe; the client never learns
            return injected_error(armed)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would drown the stack log

    return Handler
