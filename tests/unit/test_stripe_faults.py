"""The Stripe fault proxy: which requests a rule catches, how often, and what each mode does on the wire."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator

import pytest

from chargenet.adapters.stripe_gateway import STRIPE_TIMEOUT_S
from chargenet_local.httpserve import HttpServer, Request, Response, json_response
from chargenet_local.stripe_faults import (
    CONTROL_PATH,
    DEFAULT_HOLD_S,
    FaultBook,
    FaultMode,
    FaultRule,
    StripeFaultProxy,
)

CAPTURE = r"^/v1/payment_intents/[^/]+/capture$"


def rule(**fields: object) -> FaultRule:
    return FaultRule.model_validate({"path": CAPTURE, "mode": "500", **fields})


# ------------------------------------------------------------------ matching
def test_a_rule_matches_its_method_and_path_only() -> None:
    book = FaultBook()
    book.arm(rule(method="post"))
    assert book.pick("GET", "/v1/payment_intents/pi_1/capture") is None
    assert book.pick("POST", "/v1/payment_intents/pi_1") is None
    assert book.pick("POST", "/v1/payment_intents/pi_1/capture/extra") is None
    assert book.pick("POST", "/v1/payment_intents/pi_1/capture") is not None


def test_without_a_method_any_method_matches() -> None:
    book = FaultBook()
    book.arm(rule(path="payment_intents", times=None))
    assert book.pick("GET", "/v1/payment_intents/pi_1") is not None
    assert book.pick("DELETE", "/v1/payment_intents") is not None
    assert book.pick("GET", "/v1/refunds") is None


def test_times_limits_the_failures_and_counts_them() -> None:
    book = FaultBook()
    book.arm(rule(times=2))
    picks = [book.pick("POST", "/v1/payment_intents/pi_1/capture") for _ in range(4)]
    assert [p is not None for p in picks] == [True, True, False, False]
    [state] = book.snapshot()
    assert state["injected"] == 2 and state["armed"] is False and state["times"] == 2


def test_rules_apply_in_the_order_armed_and_an_exhausted_one_gives_way() -> None:
    book = FaultBook()
    book.arm(rule(mode="timeout", times=1))
    book.arm(rule(mode="500_after", times=1))
    modes = [book.pick("POST", "/v1/payment_intents/pi_1/capture") for _ in range(3)]
    assert [m.rule.mode if m else None for m in modes] == [FaultMode.TIMEOUT, FaultMode.FAIL_AFTER, None]


def test_random_injection_is_seeded_and_unlimited() -> None:
    def run(seed: int) -> list[bool]:
        book = FaultBook()
        book.arm(rule(times=None, probability=0.3, seed=seed))
        return [book.pick("POST", "/v1/payment_intents/pi/capture") is not None for _ in range(200)]

    first = run(7)
    assert first == run(7)  # the same seed, the same failures
    assert first != run(8)
    assert 30 < sum(first) < 90  # about 30 % of 200


def test_clear_disarms_everything() -> None:
    book = FaultBook()
    book.arm(rule(times=None))
    assert book.clear() == 1
    assert book.pick("POST", "/v1/payment_intents/pi_1/capture") is None
    assert book.snapshot() == []


@pytest.mark.parametrize(
    "body",
    [
        {"path": "(", "mode": "500"},
        {"path": CAPTURE, "mode": "503"},
        {"path": CAPTURE, "mode": "500", "times": 0},
        {"path": CAPTURE, "mode": "500", "probability": 1.5},
        {"path": CAPTURE, "mode": "500", "colour": "red"},
        {"mode": "500"},
    ],
)
def test_bad_rules_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultRule.model_validate(body)


def test_the_hold_outlasts_the_product_client_timeout() -> None:
    assert DEFAULT_HOLD_S > STRIPE_TIMEOUT_S


# ------------------------------------------------------------------ on the wire
class Upstream:
    """A stand-in for the Stripe front: records what reached it."""

    def __init__(self) -> None:
        self.seen: list[Request] = []
        self._server = HttpServer(self.handle)

    def handle(self, request: Request) -> Response:
        self.seen.append(request)
        return json_response(200, {"id": "pi_1", "status": "succeeded"}, [("Request-Id", "req_up")])

    def __enter__(self) -> Upstream:
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url


@pytest.fixture
def wire() -> Iterator[tuple[StripeFaultProxy, Upstream]]:
    with Upstream() as upstream:
        proxy = StripeFaultProxy(upstream.url, hold_s=5.0)
        proxy.start()
        try:
            yield proxy, upstream
        finally:
            proxy.stop()


def call(
    base: str, method: str, path: str, body: bytes = b"", timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        headers = {"Authorization": "Bearer sk_test_x", "Idempotency-Key": "capture-p1"}
        connection.request(method, path, body=body or None, headers=headers)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def arm(proxy: StripeFaultProxy, **fields: object) -> dict[str, object]:
    status, _, body = call(
        proxy.url, "POST", CONTROL_PATH, json.dumps({"path": CAPTURE, "method": "POST", **fields}).encode()
    )
    assert status == 201, body
    return json.loads(body)


def test_unarmed_it_passes_requests_and_answers_through(wire: tuple[StripeFaultProxy, Upstream]) -> None:
    proxy, upstream = wire
    status, headers, body = call(proxy.url, "POST", "/v1/payment_intents/pi_1/capture?x=1", b"amount=5")
    assert status == 200 and json.loads(body)["status"] == "succeeded"
    assert headers["request-id"] == "req_up"
    [seen] = upstream.seen
    assert (seen.method, seen.path, seen.query, seen.body) == (
        "POST",
        "/v1/payment_intents/pi_1/capture",
        "x=1",
        b"amount=5",
    )
    assert seen.header("authorization") == "Bearer sk_test_x"
    assert seen.header("idempotency-key") == "capture-p1"


def test_500_answers_like_stripe_without_forwarding(wire: tuple[StripeFaultProxy, Upstream]) -> None:
    proxy, upstream = wire
    arm(proxy, mode="500", times=1)
    status, _, body = call(proxy.url, "POST", "/v1/payment_intents/pi_1/capture")
    assert status == 500 and json.loads(body)["error"]["type"] == "api_error"
    assert upstream.seen == []
    assert call(proxy.url, "POST", "/v1/payment_intents/pi_1/capture")[0] == 200  # times used up
    assert len(upstream.seen) == 1


def test_500_after_forwards_then_fails(wire: tuple[StripeFaultProxy, Upstream]) -> None:
    proxy, upstream = wire
    arm(proxy, mode="500_after", times=1)
    status, _, _ = call(proxy.url, "POST", "/v1/payment_intents/pi_1/capture")
    assert status == 500
    assert [r.header("idempotency-key") for r in upstream.seen] == ["capture-p1"]
    [listed] = proxy.faults.snapshot()
    assert listed["idempotency_keys"] == ["capture-p1"]


def test_reset_drops_the_connection(wire: tuple[StripeFaultProxy, Upstream]) -> None:
    proxy, upstream = wire
    arm(proxy, mode="reset")
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        call(proxy.url, "POST", "/v1/payment_intents/pi_1/capture")
    assert upstream.seen == []


def test_timeout_holds_past_the_client_and_never_forwards(wire: tuple[StripeFaultProxy, Upstream]) -> None:
    proxy, upstream = wire
    arm(proxy, mode="timeout", hold_s=3.0)
    with pytest.raises(TimeoutError):
        call(proxy.url, "POST", "/v1/payment_intents/pi_1/capture", timeout=0.5)
    assert upstream.seen == []


def test_the_control_interface_lists_counts_and_clears(wire: tuple[StripeFaultProxy, Upstream]) -> None:
    proxy, _ = wire
    armed = arm(proxy, mode="500", times=2)
    call(proxy.url, "POST", "/v1/payment_intents/pi_1/capture")
    status, _, body = call(proxy.url, "GET", CONTROL_PATH)
    listed = json.loads(body)
    assert status == 200 and listed["injected"] == 1
    assert listed["rules"] == [{**armed, "injected": 1, "idempotency_keys": ["capture-p1"]}]
    assert json.loads(call(proxy.url, "DELETE", CONTROL_PATH)[2]) == {"cleared": 1}
    assert json.loads(call(proxy.url, "GET", CONTROL_PATH)[2]) == {"rules": [], "injected": 0}


def test_a_bad_rule_gets_a_clear_400(wire: tuple[StripeFaultProxy, Upstream]) -> None:
    proxy, _ = wire
    status, _, body = call(proxy.url, "POST", CONTROL_PATH, b'{"path": "(", "mode": "500"}')
    assert status == 400
    assert "path" in json.loads(body)["errors"][0]
    status, _, _ = call(proxy.url, "POST", CONTROL_PATH, b"not json")
    assert status == 400


def test_stop_releases_held_requests() -> None:
    with Upstream() as upstream:
        proxy = StripeFaultProxy(upstream.url, hold_s=60.0)
        proxy.start()
        arm(proxy, mode="timeout")
        done = threading.Event()

        def held() -> None:
            with contextlib.suppress(OSError, http.client.HTTPException):
                call(proxy.url, "POST", "/v1/payment_intents/pi_1/capture", timeout=30)
            done.set()

        threading.Thread(target=held, daemon=True).start()
        while proxy.faults.snapshot()[0]["injected"] == 0:  # the request is not held yet
            time.sleep(0.05)
        proxy.stop()
        assert done.wait(10)
