"""In-memory stand-ins for the payment ports, and a world of fakes to run the payment services in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import ConnectorStatus, SessionRecord, TagStatus
from chargenet.domain.payments import (
    CheckoutCreated,
    CheckoutFacts,
    CheckoutRequest,
    IntentFacts,
    Payment,
    PaymentConfig,
    PaymentProviderError,
    PaymentState,
)
from chargenet.domain.sessions import SessionEvent
from chargenet.services.commands import ChargerCommands
from chargenet.services.payments import (
    BillingCapture,
    PaymentAuthorizations,
    PaymentDesk,
    PaymentMonitor,
    PaymentSettlements,
    ProviderWebhooks,
    WebhookVerifier,
)
from tests.fakes import InMemoryPendingCalls, InMemoryRegistry, InMemoryTariffs, RecordingChannel

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

TARIFF_JSON = """{
  "country_code": "SE", "party_id": "CGN", "id": "pay-test", "currency": "EUR",
  "last_updated": "2026-01-01T00:00:00Z",
  "elements": [{"price_components": [
    {"type": "FLAT", "price": "0.50", "vat": "25", "step_size": 1},
    {"type": "ENERGY", "price": "0.40", "vat": "25", "step_size": 1},
    {"type": "PARKING_TIME", "price": "6.00", "vat": "25", "step_size": 60}
  ]}]
}"""


class InMemoryPaymentStore:
    def __init__(self) -> None:
        self.payments: dict[str, Payment] = {}
        self.lost_races = 0
        self.listed = 0  # payments in_states returned: what a sweep read
        self.checkout_slots: dict[tuple[str, int, int], tuple[str, datetime]] = {}

    def create(self, payment: Payment) -> bool:
        if payment.payment_id in self.payments:
            return False
        self.payments[payment.payment_id] = payment
        return True

    def save(self, payment: Payment) -> bool:
        current = self.payments.get(payment.payment_id)
        if current is None or current.version != payment.version - 1:
            self.lost_races += 1
            return False
        self.payments[payment.payment_id] = payment
        return True

    def get(self, payment_id: str) -> Payment | None:
        return self.payments.get(payment_id)

    def by_token(self, token_digest: str) -> Payment | None:
        return next((p for p in self.payments.values() if p.token_digest == token_digest), None)

    def by_tag(self, id_tag: str) -> Payment | None:
        return next((p for p in self.payments.values() if p.id_tag == id_tag), None)

    def in_states(
        self, states: Sequence[PaymentState], created_before: datetime | None = None
    ) -> list[Payment]:
        found = [
            p
            for p in self.payments.values()
            if p.state in states and (created_before is None or p.created_at < created_before)
        ]
        self.listed += len(found)
        return found

    def reserve_checkout(
        self, charger_id: str, connector_id: int, payment_id: str, now: datetime, until: datetime, slots: int
    ) -> bool:
        for number in range(slots):
            held = self.checkout_slots.get((charger_id, connector_id, number))
            if held is None or held[1] <= now:
                self.checkout_slots[charger_id, connector_id, number] = (payment_id, until)
                return True
        return False

    def only(self) -> Payment:
        [payment] = self.payments.values()
        return payment


@dataclass
class FakeGateway:
    """Stripe as the services see it: real semantics (capture <= capturable, one result per key)."""

    intents: dict[str, IntentFacts] = field(default_factory=dict)
    checkouts: dict[str, CheckoutFacts] = field(default_factory=dict)
    requests: list[CheckoutRequest] = field(default_factory=list)
    calls: list[tuple[str, str, int, str]] = field(default_factory=list)  # (action, intent, amount, key)
    failures: list[Exception] = field(default_factory=list)  # raised by the next money calls, in order
    keys: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    receipt_emails: dict[str, str] = field(default_factory=dict)  # intent id -> e-mail
    receipt_failures: list[Exception] = field(default_factory=list)  # raised by the next receipt calls

    def create_checkout(self, request: CheckoutRequest) -> CheckoutCreated:
        self.requests.append(request)
        session_id = f"cs_{len(self.requests)}"
        self.checkouts[session_id] = CheckoutFacts(session_id, "open", None)
        return CheckoutCreated(checkout_session_id=session_id, url=f"https://checkout.test/{session_id}")

    def checkout(self, checkout_session_id: str) -> CheckoutFacts:
        return self.checkouts[checkout_session_id]

    def intent(self, intent_id: str) -> IntentFacts:
        return self.intents[intent_id]

    def pay(self, request: CheckoutRequest, *, prepay: bool = False) -> str:
        """The driver completes the checkout: a hold (or a payment) of the requested amount."""
        intent_id = f"pi_{request.payment_id}"
        self.intents[intent_id] = IntentFacts(
            intent_id=intent_id,
            status="succeeded" if prepay else "requires_capture",
            currency=request.currency,
            amount_capturable=0 if prepay else request.amount_minor,
            amount_received=request.amount_minor if prepay else 0,
        )
        return intent_id

    def set_receipt_email(self, intent_id: str, email: str) -> None:
        if self.receipt_failures:
            raise self.receipt_failures.pop(0)
        self.receipt_emails[intent_id] = email

    def _money_call(self, action: str, intent_id: str, amount: int, key: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        if key in self.keys:
            if self.keys[key] != (action, intent_id, amount):
                raise PaymentProviderError("IdempotencyError: key reused with other parameters")
            return  # the stored result: nothing happens twice
        self.keys[key] = (action, intent_id, amount)
        self.calls.append((action, intent_id, amount, key))
        intent = self.intents[intent_id]
        if action == "capture":
            if intent.status != "requires_capture" or amount > intent.amount_capturable:
                raise PaymentProviderError("InvalidRequestError: cannot capture")
            self.intents[intent_id] = IntentFacts(intent_id, "succeeded", intent.currency, 0, amount)
        elif action == "cancel":
            self.intents[intent_id] = IntentFacts(intent_id, "canceled", intent.currency, 0, 0)

    def capture(self, intent_id: str, amount_minor: int, idempotency_key: str) -> None:
        self._money_call("capture", intent_id, amount_minor, idempotency_key)

    def cancel(self, intent_id: str, idempotency_key: str) -> None:
        self._money_call("cancel", intent_id, 0, idempotency_key)

    def refund(self, intent_id: str, amount_minor: int, idempotency_key: str) -> None:
        self._money_call("refund", intent_id, amount_minor, idempotency_key)


class RecordingTags:
    def __init__(self) -> None:
        self.tags: dict[str, tuple[TagStatus, datetime | None]] = {}

    def put(self, id_tag: str, status: TagStatus, max_concurrent: int, expires_at: datetime | None) -> None:
        self.tags[id_tag] = (status, expires_at)


class RecordingAlarm:
    def __init__(self) -> None:
        self.failed_payments: list[Payment] = []

    def failed(self, payment: Payment) -> None:
        self.failed_payments.append(payment)


class InMemoryProcessedEvents:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    def seen(self, event_id: str) -> bool:
        return event_id in self.ids

    def remember(self, event_id: str, at: datetime) -> None:
        self.ids.add(event_id)


class InMemorySessions:
    def __init__(self) -> None:
        self.records: dict[str, SessionRecord] = {}
        self.event_log: dict[str, list[SessionEvent]] = {}

    def get(self, session_id: str) -> SessionRecord | None:
        return self.records.get(session_id)

    def events(self, session_id: str) -> list[SessionEvent]:
        return self.event_log.get(session_id, [])


class InMemoryCdrs:
    def __init__(self) -> None:
        self.records: dict[str, BillingRecord] = {}

    def get(self, cdr_id: str) -> BillingRecord | None:
        return self.records.get(cdr_id)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class PaymentWorld:
    """Every payment service wired to fakes, sharing one clock and one set of stores."""

    config: PaymentConfig = field(default_factory=lambda: PaymentConfig(holds={"EUR": Decimal("50.00")}))
    clock: Clock = field(default_factory=Clock)
    payments: InMemoryPaymentStore = field(default_factory=InMemoryPaymentStore)
    gateway: FakeGateway = field(default_factory=FakeGateway)
    tags: RecordingTags = field(default_factory=RecordingTags)
    alarm: RecordingAlarm = field(default_factory=RecordingAlarm)
    registry: InMemoryRegistry = field(default_factory=InMemoryRegistry)
    pending: InMemoryPendingCalls = field(default_factory=InMemoryPendingCalls)
    channel: RecordingChannel = field(default_factory=RecordingChannel)
    sessions: InMemorySessions = field(default_factory=InMemorySessions)
    cdrs: InMemoryCdrs = field(default_factory=InMemoryCdrs)
    events: InMemoryProcessedEvents = field(default_factory=InMemoryProcessedEvents)
    tariff_json: str | None = TARIFF_JSON
    pauses: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = iter(f"m-{n}" for n in range(1, 1000))
        self.commands = ChargerCommands(
            self.registry, self.pending, self.channel, self.clock, lambda: next(ids)
        )
        tariffs = InMemoryTariffs(("pay-test", self.tariff_json) if self.tariff_json else None)
        payment_ids = iter(f"pay{n}" for n in range(1, 1000))
        tokens = iter(f"token-{n:02d}-" + "x" * 36 for n in range(1, 100))
        tags = iter(f"PAY{n:016X}" for n in range(1, 1000))
        self.desk = PaymentDesk(
            self.registry,
            tariffs,
            self.payments,
            self.gateway,
            self.config,
            self.clock,
            new_id=lambda: next(payment_ids),
            new_token=lambda: next(tokens),
            new_tag=lambda: next(tags),
        )
        self.settlements = PaymentSettlements(
            self.payments,
            self.gateway,
            self.tags,
            self.alarm,
            self.config,
            self.clock,
            pause=self.pauses.append,
        )
        self.authorizations = PaymentAuthorizations(
            self.payments, self.gateway, self.tags, self.commands, self.settlements, self.config, self.clock
        )
        self.capture = BillingCapture(self.payments, self.sessions, self.cdrs, self.settlements, self.clock)
        self.monitor = PaymentMonitor(
            self.payments,
            self.sessions,
            self.cdrs,
            self.registry,
            self.pending,
            self.commands,
            self.gateway,
            self.authorizations,
            self.settlements,
            self.capture,
            self.config,
            self.clock,
        )

    def webhooks(self, verifier: WebhookVerifier) -> ProviderWebhooks:
        return ProviderWebhooks(verifier, self.events, self.authorizations, self.clock)

    def add_charger(
        self, charger_id: str = "CP-1", *, online: bool = True, status: str = "Available"
    ) -> None:
        self.registry.add(charger_id, self.clock())
        self.registry.chargers[charger_id] = self.registry.chargers[charger_id].model_copy(
            update={"online": online}
        )
        self.set_status(charger_id, 1, status)

    def set_status(self, charger_id: str, connector_id: int, status: str) -> None:
        self.registry.record_connector_status(
            ConnectorStatus(
                charger_id=charger_id,
                connector_id=connector_id,
                status=status,
                error_code="NoError",
                status_at=self.clock(),
                received_at=self.clock(),
            )
        )

    def sent_frames(self) -> list[list[Any]]:
        import json

        return [json.loads(frame) for _, frame in self.channel.sent]

    def answer(self, message_id: str, status: str) -> None:
        self.pending.resolve("CP-1", message_id, {"result": {"status": status}}, self.clock())
