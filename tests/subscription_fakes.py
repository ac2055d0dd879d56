"""In-memory stand-ins for the subscription ports, and a world of fakes to run the services in."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import SessionRecord, TagStatus
from chargenet.domain.payments import CheckoutCreated, PaymentProviderUnavailable
from chargenet.domain.subscriptions import InvoiceRun, InvoiceState, Line, Plan, Subscriber
from chargenet.services.subscriptions import SubscriberDesk, SubscriptionBilling
from tests.fakes import InMemorySessionStore

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MEMBER_TARIFF = '{"id": "member"}'


class InMemorySubscriberStore:
    def __init__(self) -> None:
        self.plan_items: dict[str, Plan] = {}
        self.items: dict[str, Subscriber] = {}
        self.runs: dict[tuple[str, str], InvoiceRun] = {}
        self.lost_races = 0

    def plan(self, plan_id: str) -> Plan | None:
        return self.plan_items.get(plan_id)

    def save_plan(self, plan: Plan) -> None:
        self.plan_items[plan.plan_id] = plan

    def plans(self) -> list[Plan]:
        return list(self.plan_items.values())

    def get(self, id_tag: str) -> Subscriber | None:
        return self.items.get(id_tag)

    def create(self, subscriber: Subscriber) -> bool:
        if subscriber.id_tag in self.items:
            return False
        self.items[subscriber.id_tag] = subscriber
        return True

    def save(self, subscriber: Subscriber) -> bool:
        current = self.items.get(subscriber.id_tag)
        if current is None or current.version != subscriber.version - 1:
            self.lost_races += 1
            return False
        self.items[subscriber.id_tag] = subscriber
        return True

    def subscribers(self) -> list[Subscriber]:
        return list(self.items.values())

    def invoice_run(self, id_tag: str, period: str) -> InvoiceRun | None:
        return self.runs.get((id_tag, period))

    def save_invoice_run(self, run: InvoiceRun) -> None:
        self.runs[(run.id_tag, run.period)] = run


class FakeTagGate:
    def __init__(self) -> None:
        self.statuses: dict[str, TagStatus] = {}

    def register(self, id_tag: str, status: TagStatus) -> bool:
        if id_tag in self.statuses:
            return False
        self.statuses[id_tag] = status
        return True

    def set_status(self, id_tag: str, status: TagStatus) -> None:
        self.statuses[id_tag] = status


class FakeMemberTariffs:
    def __init__(self) -> None:
        self.tariffs: dict[str, str] = {"member": MEMBER_TARIFF}
        self.members: dict[str, str] = {}

    def tariff(self, tariff_id: str) -> str | None:
        return self.tariffs.get(tariff_id)

    def assign_member(self, id_tag: str, tariff_id: str) -> None:
        self.members[id_tag] = tariff_id


@dataclass
class FakeInvoice:
    customer_id: str
    lines: list[Line]
    metadata: dict[str, str]
    state: InvoiceState = InvoiceState.OPEN
    attempts: int = 0

    @property
    def total(self) -> int:
        return sum(line.amount_minor for line in self.lines)


@dataclass
class FakeBilling:
    """Stripe's customers, setup checkouts and invoices with real semantics: one object per
    idempotency key, pending items swept into the next invoice, cards that decline when charged."""

    customers: dict[str, str] = field(default_factory=dict)  # id -> email
    setups: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # session -> (customer, card)
    default_cards: dict[str, str] = field(default_factory=dict)
    pending: dict[str, list[Line]] = field(default_factory=dict)  # by customer
    invoices: dict[str, FakeInvoice] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> object id
    declining_cards: set[str] = field(default_factory=set)
    failures: list[Exception] = field(default_factory=list)  # raised by the next calls, in order

    def _fail_maybe(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def create_customer(self, email: str, id_tag: str) -> str:
        self._fail_maybe()
        customer_id = self.keys.setdefault(f"customer-{id_tag}", f"cus_{len(self.customers) + 1}")
        self.customers[customer_id] = email
        return customer_id

    def create_setup_checkout(
        self, customer_id: str, id_tag: str, currency: str, return_url: str
    ) -> CheckoutCreated:
        session_id = f"cs_setup_{len(self.setups) + 1}"
        self.setups[session_id] = (customer_id, None)
        return CheckoutCreated(checkout_session_id=session_id, url=f"https://checkout.test/{session_id}")

    def save_card(self, session_id: str, card: str) -> None:
        """The driver enters a card on the hosted setup page."""
        customer_id, _ = self.setups[session_id]
        self.setups[session_id] = (customer_id, card)

    def saved_card(self, checkout_session_id: str) -> str | None:
        return self.setups[checkout_session_id][1]

    def set_default_card(self, customer_id: str, payment_method_id: str) -> None:
        self.default_cards[customer_id] = payment_method_id

    def add_invoice_item(self, customer_id: str, line: Line) -> None:
        self._fail_maybe()
        if line.idempotency_key in self.keys:
            return
        self.keys[line.idempotency_key] = line.idempotency_key
        self.pending.setdefault(customer_id, []).append(line)

    def create_invoice(self, customer_id: str, metadata: dict[str, str], idempotency_key: str) -> str:
        self._fail_maybe()
        if idempotency_key in self.keys:
            return self.keys[idempotency_key]
        invoice_id = f"in_{len(self.invoices) + 1}"
        self.keys[idempotency_key] = invoice_id
        self.invoices[invoice_id] = FakeInvoice(customer_id, self.pending.pop(customer_id, []), metadata)
        return invoice_id

    def pay_invoice(self, invoice_id: str) -> InvoiceState:
        self._fail_maybe()
        invoice = self.invoices[invoice_id]
        if invoice.state is InvoiceState.PAID:
            return InvoiceState.PAID
        invoice.attempts += 1
        declined = self.default_cards.get(invoice.customer_id) in self.declining_cards
        invoice.state = InvoiceState.FAILED if declined else InvoiceState.PAID
        return invoice.state

    def invoice_state(self, invoice_id: str) -> InvoiceState:
        return self.invoices[invoice_id].state

    def paid_elsewhere(self, invoice_id: str) -> None:
        """The customer pays the open invoice on Stripe's hosted invoice page."""
        self.invoices[invoice_id].state = InvoiceState.PAID


class RecordingAlerts:
    def __init__(self) -> None:
        self.blocked: list[Subscriber] = []

    def subscriber_blocked(self, subscriber: Subscriber) -> None:
        self.blocked.append(subscriber)


class InMemoryCdrs:
    def __init__(self) -> None:
        self.records: dict[str, BillingRecord] = {}

    def get(self, cdr_id: str) -> BillingRecord | None:
        return self.records.get(cdr_id)


@dataclass
class SubscriptionWorld:
    now: datetime = T0
    store: InMemorySubscriberStore = field(default_factory=InMemorySubscriberStore)
    gateway: FakeBilling = field(default_factory=FakeBilling)
    tags: FakeTagGate = field(default_factory=FakeTagGate)
    tariffs: FakeMemberTariffs = field(default_factory=FakeMemberTariffs)
    sessions: InMemorySessionStore = field(default_factory=InMemorySessionStore)
    cdrs: InMemoryCdrs = field(default_factory=InMemoryCdrs)
    alerts: RecordingAlerts = field(default_factory=RecordingAlerts)
    grace: timedelta = timedelta(days=3)

    def clock(self) -> datetime:
        return self.now

    @property
    def desk(self) -> SubscriberDesk:
        return SubscriberDesk(self.store, self.gateway, self.tags, self.tariffs, self.clock)

    @property
    def billing(self) -> SubscriptionBilling:
        return SubscriptionBilling(
            self.store,
            self.gateway,
            self.tags,
            self.tariffs,
            self.sessions,
            self.cdrs,
            self.alerts,
            self.grace,
            self.clock,
        )

    def plan(self, fee: str = "9.00") -> Plan:
        return self.desk.add_plan(
            Plan(plan_id="basic", monthly_fee=Decimal(fee), currency="EUR", tariff_id="member")
        )

    def active_subscriber(self, id_tag: str = "RFID0001", card: str = "pm_visa") -> Subscriber:
        """Signed up, card saved on the hosted page, webhook handled."""
        if self.store.plan("basic") is None:
            self.plan()
        subscriber = self.desk.add_subscriber("driver@example.test", id_tag, "basic", "https://return.test")
        session_id = subscriber.setup_url.rsplit("/", 1)[1] if subscriber.setup_url else ""
        self.gateway.save_card(session_id, card)
        activated = self.billing.card_saved(id_tag, session_id)
        assert activated is not None
        return activated

    def session_cdr(
        self, id_tag: str, cdr_id: str = "CDR-1", total: str = "12.34", credit: bool = False
    ) -> str:
        session_id = f"S-{cdr_id}"
        self.sessions.records[session_id] = SessionRecord(
            session_id=session_id,
            transaction_id=1,
            charger_id="CP-1",
            connector_id=1,
            id_tag=id_tag,
            tag_status=TagStatus.ACCEPTED,
            started_at=self.now - timedelta(hours=2),
        )
        self.cdrs.records[cdr_id] = BillingRecord(
            cdr_id=cdr_id,
            session_id=session_id,
            charger_id="CP-1",
            connector_id=1,
            start_date_time=self.now - timedelta(hours=2),
            end_date_time=self.now - timedelta(hours=1),
            currency="EUR",
            total_excl_vat=Decimal(total) / Decimal("1.25"),
            total_incl_vat=Decimal(total),
            energy_wh=27500,
            ocpi={},
            credit_reference_id="CDR-0" if credit else None,
        )
        return cdr_id


class TrustingVerifier:
    """Signature checks are the payment webhook tests' concern: here every body is a genuine event."""

    def verify(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(payload)
        return event


def unavailable() -> PaymentProviderUnavailable:
    return PaymentProviderUnavailable("APIConnectionError: Stripe is down")
