"""The operator API's payments area: every route x role, refunds (audited once, idempotent per
request id, 409 over-refund, 503 when Stripe does not answer), bad input, cursors.

The handler runs on HTTP API v2 events with the JWT authorizer's claims (as in
test_operator_api.py); its service on in-memory fakes (tests/payment_fakes.py, subscription_fakes.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import SessionRecord, TagStatus
from chargenet.domain.payments import (
    IntentFacts,
    Payment,
    PaymentProviderUnavailable,
    PaymentState,
    Settlement,
)
from chargenet.domain.subscriptions import InvoiceRun, Plan, Subscriber
from chargenet.ports.audit import Key, Page
from chargenet.services.operator_access import OperatorAccess
from chargenet.services.operator_payments import OperatorPayments
from tests.payment_fakes import T0, PaymentWorld
from tests.subscription_fakes import SubscriptionWorld
from tests.unit.handler_modules import imported_handler
from tests.unit.operator_sign_outs import checked_in_memory
from tests.unit.test_operator_api import SECRET, MemoryAuditLog, call, claims_of

TAG = "PAY0000000000000001"


def _page(items: list[Any], limit: int, start: Key | None) -> Page[Any]:
    at = int(start["at"]) if start else 0
    rest = items[at : at + limit]
    return Page(rest, {"at": at + limit} if at + limit < len(items) else None)


class Views:
    def __init__(self, payments: PaymentWorld, subscriptions: SubscriptionWorld) -> None:
        self.world, self.subs = payments, subscriptions

    def payments(self, state: PaymentState | None, limit: int, start: Key | None) -> Page[Payment]:
        found = [p for p in self.world.payments.payments.values() if state is None or p.state is state]
        return _page(sorted(found, key=lambda p: p.payment_id), limit, start)

    def charged_cdrs(self, since: datetime, limit: int, start: Key | None) -> Page[BillingRecord]:
        found = [r for r in self.world.cdrs.records.values() if r.end_date_time >= since]
        return _page(found, limit, start)

    def subscribers(self, limit: int, start: Key | None) -> Page[Subscriber]:
        return _page(self.subs.store.subscribers(), limit, start)

    def plans(self, limit: int, start: Key | None) -> Page[Plan]:
        return _page([p for p in [self.subs.store.plan("basic")] if p], limit, start)

    def invoice_runs(self, id_tag: str, periods: Sequence[str]) -> list[InvoiceRun]:
        return [r for p in periods if (r := self.subs.store.invoice_run(id_tag, p))]


class StripeReader:
    def __init__(self, world: PaymentWorld) -> None:
        self.world = world

    def intent(self, intent_id: str) -> IntentFacts:
        return self.world.gateway.intent(intent_id)

    def refunded_minor(self, intent_id: str) -> int:
        return sum(a for action, i, a, _ in self.world.gateway.calls if action == "refund" and i == intent_id)


class World:
    def __init__(self) -> None:
        self.pay = PaymentWorld()
        self.subs = SubscriptionWorld()
        self.subs.plan()
        self.audit = MemoryAuditLog()
        self.pay.gateway.intents["pi_1"] = IntentFacts("pi_1", "succeeded", "EUR", 0, 1200)
        self.pay.payments.create(
            Payment(
                payment_id="pay1",
                token_digest="d",
                charger_id="CP-1",
                connector_id=1,
                currency="EUR",
                settlement=Settlement.HOLD,
                hold_minor=5000,
                id_tag=TAG,
                state=PaymentState.CAPTURED,
                created_at=T0,
                updated_at=T0,
                payment_intent_id="pi_1",
                session_id="S1",
                captured_minor=1200,
                due_minor=1200,
            )
        )
        self.pay.sessions.records["S1"] = SessionRecord(
            session_id="S1",
            transaction_id=1,
            charger_id="CP-1",
            connector_id=1,
            id_tag=TAG,
            tag_status=TagStatus.ACCEPTED,
            started_at=T0,
        )
        views = Views(self.pay, self.subs)
        self.service = OperatorPayments(
            access=OperatorAccess(self.audit, lambda: SECRET),
            payments=self.pay.payments,
            views=views,
            settlements=self.pay.settlements,
            sessions=self.pay.sessions,
            cdrs=self.pay.cdrs,
            stripe=StripeReader(self.pay),
            charger_exists=lambda charger_id: charger_id == "CP-1",
            subscriber_views=views,
            desk=self.subs.desk,
            billing=self.subs.billing,
            clock=lambda: T0 + timedelta(days=40),
        )

    def payment(self) -> Payment:
        found = self.pay.payments.get("pay1")
        assert found is not None
        return found

    def snapshot(self) -> Any:
        return (
            self.payment(),
            list(self.pay.gateway.calls),
            dict(self.audit.records),
            self.subs.store.subscribers(),
            self.subs.store.plan("gold"),
        )


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    yield from imported_handler("operator_payments")


@pytest.fixture
def world(api: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(api, "operator_payments", lambda: world.service)
    checked_in_memory(api, monkeypatch)
    monkeypatch.setattr(api, "public_base_url", lambda: "https://pay.example")
    return world


ROUTES: dict[str, tuple[str, str, str, str | None, set[str]]] = {
    # name: method, path, query, body, roles allowed
    "payments": ("GET", "/ops/v1/payments", "", None, {"admin", "finance", "viewer"}),
    "payment": ("GET", "/ops/v1/payments/pay1", "", None, {"admin", "finance", "viewer"}),
    "settle": (
        "POST",
        "/ops/v1/settlements",
        "",
        '{"session_id": "S1", "cancel": true}',
        {"admin", "finance"},
    ),
    "refund": (
        "POST",
        "/ops/v1/refunds",
        "",
        '{"session_id": "S1", "amount": "2.00", "request_id": "req-0002"}',
        {"admin", "finance"},
    ),
    "reconcile": ("GET", "/ops/v1/reconcile", "since=2026-01-01", None, {"admin", "finance"}),
    "pay-link": ("GET", "/ops/v1/pay-links/CP-1/1", "", None, {"admin", "finance", "viewer"}),
    "subscribers": ("GET", "/ops/v1/subscribers", "", None, {"admin", "finance", "viewer"}),
    "subscriber": ("GET", "/ops/v1/subscribers/RFID0009", "", None, {"admin", "finance", "viewer"}),
    "add-subscriber": (
        "POST",
        "/ops/v1/subscribers",
        "",
        '{"email": "d@example.test", "tag": "RFID0009", "plan": "basic"}',
        {"admin", "finance"},
    ),
    "invoice": ("POST", "/ops/v1/invoice-runs", "", '{"period": "2026-11"}', {"admin", "finance"}),
    "plans": ("GET", "/ops/v1/plans", "", None, {"admin", "finance", "viewer"}),
    "set-plan": (
        "PUT",
        "/ops/v1/plans/gold",
        "",
        '{"monthly_fee": "9.00", "currency": "EUR", "tariff": "member"}',
        {"admin", "finance"},
    ),
}


@pytest.mark.parametrize("role", ["admin", "technician", "finance", "viewer"])
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_routes_permission(api: Any, world: World, route: str, role: str) -> None:
    method, path, query, body, allowed = ROUTES[route]
    if route == "subscriber":
        world.subs.desk.add_subscriber("d@example.test", "RFID0009", "basic", "https://r.test")
    before = world.snapshot()
    status, answer = call(api, method, path, claims_of(role), query, body)
    if role in allowed:
        # Settling needs a failed payment: a captured one is refused (409), after the permission.
        assert status in ((409,) if route == "settle" else (200, 201)), answer
        assert len(world.audit.records) == (0 if method == "GET" else 1)
    else:
        assert (status, answer["error"]) == (403, "forbidden")
        assert world.snapshot() == before  # nothing changed, nothing audited


def test_a_refund_is_audited_once_with_the_session_and_amount_never_the_tag(api: Any, world: World) -> None:
    body = '{"session_id": "S1", "amount": "2.50", "request_id": "req-0001"}'
    status, answer = call(api, "POST", "/ops/v1/refunds", claims_of("finance"), body=body)
    assert status == 200, answer
    assert (answer["refunded"], answer["payment"]["refunded"], answer["repeated"]) == (
        "2.50 EUR",
        "2.50 EUR",
        False,
    )
    (record,) = world.audit.records.values()
    assert record.targets == {"session_id": "S1", "payment_id": "pay1", "amount": "2.50 EUR"}
    assert (record.route, record.status) == ("/ops/v1/refunds", 200)
    assert TAG not in record.model_dump_json()


def test_a_retried_refund_request_refunds_once(api: Any, world: World) -> None:
    body = '{"session_id": "S1", "amount": "2.50", "request_id": "req-0001"}'
    call(api, "POST", "/ops/v1/refunds", claims_of("finance"), body=body, request_id="r-1")
    status, answer = call(api, "POST", "/ops/v1/refunds", claims_of("finance"), body=body, request_id="r-2")
    assert status == 200
    assert (answer["refunded"], answer["repeated"]) == ("2.50 EUR", True)
    assert world.payment().refunded_minor == 250
    assert [c[0] for c in world.pay.gateway.calls] == ["refund"]


@pytest.mark.parametrize(
    ("amount", "status"), [("12.01", 409), ("0", 400), ("-1", 400), ("1.234", 400), ("abc", 400)]
)
def test_over_refund_is_409_and_bad_amounts_400(api: Any, world: World, amount: str, status: int) -> None:
    body = f'{{"session_id": "S1", "amount": "{amount}", "request_id": "req-0003"}}'
    got, answer = call(api, "POST", "/ops/v1/refunds", claims_of("finance"), body=body)
    assert (got, world.payment().refunded_minor, world.pay.gateway.calls) == (status, 0, [])
    assert set(answer) == {"error", "message"}
    assert [r.status for r in world.audit.records.values()] == [status]


def test_a_refund_without_a_request_id_is_400_and_refunds_nothing(api: Any, world: World) -> None:
    status, answer = call(
        api, "POST", "/ops/v1/refunds", claims_of("finance"), body='{"session_id": "S1", "amount": "1.00"}'
    )
    assert (status, answer["error"]) == (400, "bad_request") and "request_id" in answer["message"]
    assert (world.payment().refunded_minor, world.pay.gateway.calls) == (0, [])


def test_stripe_not_answering_is_503_and_nothing_is_recorded_as_refunded(api: Any, world: World) -> None:
    world.pay.gateway.failures.extend([PaymentProviderUnavailable("timeout")] * 3)
    body = '{"session_id": "S1", "request_id": "req-0004"}'
    status, answer = call(api, "POST", "/ops/v1/refunds", claims_of("admin"), body=body)
    assert (status, answer["error"]) == (503, "unavailable")
    assert world.payment().refunded_minor == 0


def test_reconcile_finds_no_mismatch_for_a_cdr_paid_in_full(api: Any, world: World) -> None:
    world.pay.cdrs.records["S1"] = BillingRecord(
        cdr_id="S1",
        session_id="S1",
        charger_id="CP-1",
        connector_id=1,
        start_date_time=T0,
        end_date_time=T0 + timedelta(hours=1),
        currency="EUR",
        total_excl_vat=__import__("decimal").Decimal("9.60"),
        total_incl_vat=__import__("decimal").Decimal("12.00"),
        energy_wh=1000,
        ocpi={},
    )
    status, answer = call(api, "GET", "/ops/v1/reconcile", claims_of("finance"), "since=2026-01-01")
    assert (status, answer["checked"], answer["items"]) == (200, 1, [])


def test_the_pay_link_is_the_deployments(api: Any, world: World) -> None:
    status, answer = call(api, "GET", "/ops/v1/pay-links/CP-1/2", claims_of("viewer"))
    assert (status, answer["url"]) == (200, "https://pay.example/pay/CP-1/2")
    assert call(api, "GET", "/ops/v1/pay-links/CP-9/2", claims_of("viewer"))[0] == 404


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("GET", "/ops/v1/payments", "state=nope", None),
        ("GET", "/ops/v1/reconcile", "", None),
        ("GET", "/ops/v1/reconcile", "since=yesterday", None),
        ("POST", "/ops/v1/settlements", "", '{"cancel": true}'),
        ("POST", "/ops/v1/subscribers", "", '{"email": "x", "tag": "RFID1"}'),
        ("POST", "/ops/v1/invoice-runs", "", '{"period": "2026-13"}'),
        ("POST", "/ops/v1/invoice-runs", "", '{"period": "2026-11", "grace_days": -1}'),
        ("PUT", "/ops/v1/plans/gold", "", '{"monthly_fee": "9.001", "currency": "EUR", "tariff": "member"}'),
        ("PUT", "/ops/v1/plans/gold", "", "not json"),
    ],
)
def test_bad_input_is_400_json(
    api: Any, world: World, method: str, path: str, query: str, body: str | None
) -> None:
    status, answer = call(api, method, path, claims_of("admin"), query, body)
    assert (status, set(answer)) == (400, {"error", "message"}), answer


def test_pages_follow_a_signed_cursor_and_a_tampered_one_is_400(api: Any, world: World) -> None:
    for n in range(3):
        world.subs.desk.add_subscriber(f"d{n}@example.test", f"RFID10{n}", "basic", "https://r.test")
    status, first = call(api, "GET", "/ops/v1/subscribers", claims_of("viewer"), "limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["next"]
    _, second = call(api, "GET", "/ops/v1/subscribers", claims_of("viewer"), f"limit=2&next={first['next']}")
    assert len(second["items"]) == 1 and second["next"] is None
    tampered = first["next"][:-2] + ("AA" if not first["next"].endswith("AA") else "BB")
    status, answer = call(api, "GET", "/ops/v1/subscribers", claims_of("viewer"), f"limit=2&next={tampered}")
    assert (status, answer["error"]) == (400, "bad_cursor")
    status, answer = call(api, "GET", "/ops/v1/plans", claims_of("viewer"), f"next={first['next']}")
    assert (status, answer["error"]) == (400, "bad_cursor")  # another listing's cursor


def test_adding_a_subscriber_audits_the_masked_tag(api: Any, world: World) -> None:
    body = '{"email": "d@example.test", "tag": "RFID0009", "plan": "basic"}'
    status, answer = call(api, "POST", "/ops/v1/subscribers", claims_of("finance"), body=body)
    assert (status, answer["state"]) == (201, "pending")
    (record,) = world.audit.records.values()
    assert "RFID0009" not in record.model_dump_json() and record.targets["plan"] == "basic"
