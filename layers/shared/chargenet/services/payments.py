"""Ad-hoc payments: the pay page and checkout, the authorization that starts the charger, and
settling the money (capture, cancel, refund) with retries that never take it twice.

The payment's tag is an ordinary OCPP idTag in the tag directory, valid on one StartTransaction
within the start window: the charger, the ingest path and billing need nothing payment-specific.
A session is the payment's when it runs on that tag on the payment's connector.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from chargenet.domain import payments as rules
from chargenet.domain.billing import BillingRecord, session_profile
from chargenet.domain.models import Charger, SessionRecord, TagStatus
from chargenet.domain.payments import (
    Availability,
    CheckoutCreated,
    CheckoutFacts,
    CheckoutMethod,
    CheckoutRequest,
    IntentFacts,
    MoneyAction,
    MoneyCall,
    Payment,
    PaymentConfig,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentState,
    Reason,
    SettlementPlan,
)
from chargenet.domain.ports import ChargerRegistry, TariffBook
from chargenet.domain.sessions import SessionEvent, fold
from chargenet.domain.tariffs import (
    PriceDisplay,
    TariffError,
    describe,
    load_tariff,
    price_display,
    price_session,
)
from chargenet.services.commands import ChargerCommands, CommandRefused

# Quick retries inside one invocation for a provider blip; longer outages go to the sweep's backoff.
QUICK_RETRY_DELAYS_S = (0.5, 1.5)


class PaymentStore(Protocol):
    def create(self, payment: Payment) -> bool:
        """Store a new payment; False when the id exists."""
        ...

    def save(self, payment: Payment) -> bool:
        """Store the change unless the stored version is not `payment.version - 1` (someone else won)."""
        ...

    def get(self, payment_id: str) -> Payment | None: ...

    def by_token(self, token_digest: str) -> Payment | None: ...

    def by_tag(self, id_tag: str) -> Payment | None: ...

    def in_states(
        self, states: Sequence[PaymentState], created_before: datetime | None = None
    ) -> list[Payment]:
        """The payments in `states`; with `created_before`, only those created earlier."""
        ...

    def reserve_checkout(
        self, charger_id: str, connector_id: int, payment_id: str, now: datetime, until: datetime, slots: int
    ) -> bool:
        """Hold one of the connector's `slots` checkout slots for `payment_id` until `until` (a slot
        whose hold has passed is free again), atomically; False when every slot is held."""
        ...


class PaymentGateway(Protocol):
    """The payment provider (Stripe). Raises the domain's PaymentProviderError family."""

    def create_checkout(self, request: CheckoutRequest) -> CheckoutCreated: ...

    def checkout(self, checkout_session_id: str) -> CheckoutFacts: ...

    def intent(self, intent_id: str) -> IntentFacts: ...

    def set_receipt_email(self, intent_id: str, email: str) -> None: ...

    def capture(self, intent_id: str, amount_minor: int, idempotency_key: str) -> None: ...

    def cancel(self, intent_id: str, idempotency_key: str) -> None: ...

    def refund(self, intent_id: str, amount_minor: int, idempotency_key: str) -> None: ...


class TagIssuer(Protocol):
    """The tag directory's write side (DynamoTagDirectory.put)."""

    def put(
        self, id_tag: str, status: TagStatus, max_concurrent: int, expires_at: datetime | None
    ) -> None: ...


class PaymentAlarm(Protocol):
    def failed(self, payment: Payment) -> None:
        """A payment's money could not be settled (its first deferral, or the failed state): count
        it where the alarm watches."""
        ...


class SessionReader(Protocol):
    def get(self, session_id: str) -> SessionRecord | None: ...

    def events(self, session_id: str) -> list[SessionEvent]: ...


class CdrReader(Protocol):
    def get(self, cdr_id: str) -> BillingRecord | None: ...


TOO_MANY_CHECKOUTS = "too_many_checkouts"


class CheckoutRefused(Exception):
    """No payment for this connector now; `availability` (or no price, or TOO_MANY_CHECKOUTS) says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def saved(store: PaymentStore, payment: Payment) -> Payment:
    """Store the change; when a concurrent path changed the payment first, theirs stands."""
    return payment if store.save(payment) else require(store, payment.payment_id)


def require(store: PaymentStore, payment_id: str) -> Payment:
    payment = store.get(payment_id)
    if payment is None:
        raise rules.PaymentError(f"no payment {payment_id}")
    return payment


# ------------------------------------------------------------------ pay page and checkout
@dataclass(frozen=True)
class PayPage:
    charger_id: str
    connector_id: int
    availability: Availability
    display: PriceDisplay | None
    price_lines: list[str]
    hold_minor: int | None
    methods: list[CheckoutMethod]

    @property
    def payable(self) -> bool:
        return self.availability is Availability.AVAILABLE and self.display is not None and bool(self.methods)


@dataclass(frozen=True)
class CheckoutStarted:
    payment_id: str
    url: str


@dataclass(frozen=True)
class PaymentDesk:
    registry: ChargerRegistry
    tariffs: TariffBook
    payments: PaymentStore
    gateway: PaymentGateway
    config: PaymentConfig
    clock: Callable[[], datetime]
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    new_token: Callable[[], str] = rules.new_driver_token
    new_tag: Callable[[], str] = rules.new_payment_tag

    def pay_page(self, charger_id: str, connector_id: int) -> PayPage | None:
        """None when there is no such charger."""
        charger = self.registry.get(charger_id)
        if charger is None:
            return None
        availability = rules.connector_availability(
            charger, self.registry.connectors(charger_id), connector_id
        )
        display = self._price(charger, connector_id)
        currency = display.currency if display else None
        return PayPage(
            charger_id=charger_id,
            connector_id=connector_id,
            availability=availability,
            display=display,
            price_lines=describe(display) if display else [],
            hold_minor=self.config.hold_minor(currency) if currency else None,
            methods=self.config.methods_for(currency) if currency else [],
        )

    def _price(self, charger: Charger, connector_id: int) -> PriceDisplay | None:
        in_force = self.tariffs.in_force(charger.charger_id, connector_id)
        if in_force is None:
            return None
        try:
            return price_display(load_tariff(in_force[1]), self.clock(), self.registry.time_zone_of(charger))
        except TariffError:  # not in force right now (its dates): nothing to sell
            return None

    def open_checkout(
        self,
        charger_id: str,
        connector_id: int,
        method: CheckoutMethod,
        base_url: str,
        page: PayPage | None = None,
    ) -> CheckoutStarted:
        """A payment and its hosted checkout, which returns the driver to the session page.

        `base_url` is the deployment's public URL, from configuration: never the request's Host.
        `page`: the pay page of this connector the caller read just now (the API reads it before
        the request body), so it is not read twice."""
        page = page or self.pay_page(charger_id, connector_id)
        if page is None or page.display is None or not page.payable or method not in page.methods:
            raise CheckoutRefused(page.availability.value if page and not page.payable else "not_offered")
        now, token, payment_id = self.clock(), self.new_token(), self.new_id()
        until = now + self.config.checkout_ttl
        slots = self.config.checkouts_per_connector
        if not self.payments.reserve_checkout(charger_id, connector_id, payment_id, now, until, slots):
            raise CheckoutRefused(TOO_MANY_CHECKOUTS)
        payment = rules.new_payment(
            self.config,
            payment_id=payment_id,
            token=token,
            id_tag=self.new_tag(),
            charger_id=charger_id,
            connector_id=connector_id,
            currency=page.display.currency,
            method=method,
            now=now,
        )
        # Stored before the provider hears of it: every webhook finds its payment.
        self.payments.create(payment)
        request = rules.checkout_request(
            payment,
            self.config,
            success_url=f"{base_url}/session/{token}",
            cancel_url=f"{base_url}/pay/{charger_id}/{connector_id}",
            now=now,
        )
        try:
            created = self.gateway.create_checkout(request)
        except PaymentProviderError:
            self.payments.save(rules.checkout_ended(payment, Reason.CHECKOUT_FAILED, self.clock()))
            raise
        self.payments.save(rules.checkout_opened(payment, created, self.clock()))
        return CheckoutStarted(payment_id=payment.payment_id, url=created.url)


# ------------------------------------------------------------------ settling money
@dataclass(frozen=True)
class PaymentSettlements:
    payments: PaymentStore
    gateway: PaymentGateway
    tags: TagIssuer
    alarm: PaymentAlarm
    config: PaymentConfig
    clock: Callable[[], datetime]
    pause: Callable[[float], None] = time.sleep

    def settle_cost(self, payment: Payment, cost_incl_vat: Decimal, currency: str, reason: Reason) -> Payment:
        return self._execute(payment, rules.plan_settlement(payment, cost_incl_vat, currency, reason))

    def abort(self, payment: Payment, reason: Reason) -> Payment:
        """Give all the money back (the charger never started, the money came too late, the session was voided)."""
        return self._execute(payment, rules.plan_abort(payment, reason))

    def refund(self, payment_id: str, amount_minor: int | None = None) -> Payment:
        """An operator's refund, partial or full, never more than what was kept."""
        payment = require(self.payments, payment_id)
        call = rules.plan_refund(payment, amount_minor)
        self._call(payment, call)  # errors reach the operator as they are
        return self._saved(rules.refunded(payment, call, self.clock()))

    def settle_failed(self, payment_id: str, record: BillingRecord) -> Payment:
        """An operator settles a failed payment from its billing record, once the cause is fixed:
        what the capture path would take, under its idempotency key. HoldGone when the provider
        no longer holds the money; a provider error leaves it failed, the error recorded."""
        return self._resettle(payment_id, lambda p, intent: rules.plan_failed_settlement(p, record, intent))

    def release_failed(self, payment_id: str) -> Payment:
        """An operator gives a failed payment's money back (the hold cancelled, a prepay refunded)."""
        return self._resettle(payment_id, rules.plan_failed_release)

    def _resettle(
        self, payment_id: str, plan_for: Callable[[Payment, IntentFacts], SettlementPlan]
    ) -> Payment:
        payment = require(self.payments, payment_id)
        intent_id = rules.failed_intent_id(payment)
        try:
            # The provider's word, not our record: the hold may have expired, or the call gone through.
            plan = plan_for(payment, self.gateway.intent(intent_id))
            if plan.call is not None:
                self._call(payment, plan.call)
        except PaymentProviderError as error:
            saved(self.payments, rules.failed_again(payment, str(error), self.clock()))
            raise
        return self._saved(rules.settled(payment, plan, self.clock()))

    def _execute(self, payment: Payment, plan: SettlementPlan) -> Payment:
        # The tag is done: a late or repeated StartTransaction on it is refused.
        self.tags.put(payment.id_tag, TagStatus.BLOCKED, 1, None)
        if plan.call is not None:
            try:
                self._call(payment, plan.call)
            except PaymentProviderError as error:
                return self._failed(payment, error)
        return self._saved(rules.settled(payment, plan, self.clock()))

    def _call(self, payment: Payment, call: MoneyCall) -> None:
        assert payment.payment_intent_id is not None, "only an authorized payment moves money"
        for delay in (*QUICK_RETRY_DELAYS_S, None):
            try:
                self._send(payment.payment_intent_id, call)
                return
            except PaymentProviderUnavailable:
                if delay is None:
                    raise
                self.pause(delay)
            except PaymentProviderError:
                # Our key may have expired (kept 24 h) after the call had succeeded: the provider
                # then refuses a repeat. The intent's state says whether the money moved.
                if not self._already_done(payment.payment_intent_id, call):
                    raise
                return

    def _send(self, intent_id: str, call: MoneyCall) -> None:
        if call.action is MoneyAction.CAPTURE:
            self.gateway.capture(intent_id, call.amount_minor, call.idempotency_key)
        elif call.action is MoneyAction.CANCEL:
            self.gateway.cancel(intent_id, call.idempotency_key)
        else:
            self.gateway.refund(intent_id, call.amount_minor, call.idempotency_key)

    def _already_done(self, intent_id: str, call: MoneyCall) -> bool:
        if call.action is MoneyAction.REFUND:
            return False  # refunds are not visible on the intent's status: never guess
        intent = self.gateway.intent(intent_id)
        if call.action is MoneyAction.CANCEL:
            return intent.status == "canceled"
        return intent.status == "succeeded" and intent.amount_received == call.amount_minor

    def _failed(self, payment: Payment, error: PaymentProviderError) -> Payment:
        transient = isinstance(error, PaymentProviderUnavailable)
        change = rules.settlement_failed(
            payment, str(error), transient=transient, now=self.clock(), config=self.config
        )
        if not self.payments.save(change):
            return require(self.payments, payment.payment_id)  # a concurrent path settled (or counted) it
        # Operators hear at once that money is not coming in (the provider is in trouble: the sweep
        # retries for up to an hour), and again if it never does; not at every retry in between.
        if change.state is PaymentState.FAILED or change.capture_attempts == 1:
            self.alarm.failed(change)
        return change

    def _saved(self, payment: Payment) -> Payment:
        return saved(self.payments, payment)


# ------------------------------------------------------------------ authorization and start
@dataclass(frozen=True)
class PaymentAuthorizations:
    payments: PaymentStore
    gateway: PaymentGateway
    tags: TagIssuer
    commands: ChargerCommands
    settlements: PaymentSettlements
    config: PaymentConfig
    clock: Callable[[], datetime]

    def money_secured(self, payment_id: str, intent_id: str, paid_at: datetime | None) -> Payment | None:
        """The provider says a payment's money may be secured: check with the provider, record the
        authorization, and ask the charger to start. Any order, any number of times, concurrently:
        only the delivery whose authorization is stored starts the charger."""
        payment = self.payments.get(payment_id)
        if payment is None or payment.state is not PaymentState.CHECKOUT_OPEN:
            return payment
        # The event is a snapshot that may be older than another one already handled: ask for now.
        intent = self.gateway.intent(intent_id)
        try:
            authorized = rules.authorize(payment, intent, self.clock())
        except rules.NotAuthorized:
            return payment  # not secured yet (processing, or declined): a later event decides
        if not self.payments.save(authorized):
            return require(self.payments, payment_id)  # another delivery won: it starts the charger
        if rules.authorization_late(paid_at, self.clock(), self.config):
            return self.settlements.abort(authorized, Reason.AUTHORIZATION_LATE)
        return self._start(authorized)

    def _start(self, payment: Payment) -> Payment:
        now = self.clock()
        # Valid for one StartTransaction within the start window, on the charger we ask.
        self.tags.put(payment.id_tag, TagStatus.ACCEPTED, 1, now + self.config.start_timeout)
        try:
            call = self.commands.send(
                payment.charger_id,
                "RemoteStartTransaction",
                {"connectorId": payment.connector_id, "idTag": payment.id_tag},
            )
        except CommandRefused:
            return self.settlements.abort(payment, Reason.CHARGER_REFUSED)
        return saved(self.payments, rules.start_sent(payment, call.message_id, now))

    def receipt_to(self, payment_id: str, intent_id: str, email: str) -> Payment | None:
        """The provider's receipt goes to the e-mail the driver entered at checkout. Set on the
        intent before the capture (or, for a prepay, after the charge: the provider sends it then).
        Repeating it changes nothing, so a redelivered event may set it again."""
        payment = self.payments.get(payment_id)
        if payment is None or payment.payment_intent_id not in (None, intent_id):
            return payment
        self.gateway.set_receipt_email(intent_id, email)
        return payment

    def checkout_closed(self, payment_id: str) -> Payment | None:
        """The checkout expired or its payment failed: nothing was taken."""
        payment = self.payments.get(payment_id)
        if payment is None or payment.state is not PaymentState.CHECKOUT_OPEN:
            return payment
        return saved(self.payments, rules.checkout_ended(payment, Reason.CHECKOUT_EXPIRED, self.clock()))

    def hold_cancelled(self, payment_id: str, intent_id: str) -> Payment | None:
        """The provider cancelled an intent. Ours: we settled it already. Otherwise the hold we
        counted on is gone (expired): visible and alarmed, never silent."""
        payment = self.payments.get(payment_id)
        if payment is None or payment.payment_intent_id != intent_id:
            return payment
        if payment.state not in (PaymentState.AUTHORIZED, PaymentState.CHARGING):
            return payment
        lost = saved(self.payments, rules.hold_lost(payment, self.clock()))
        if lost.state is PaymentState.FAILED:
            self.settlements.alarm.failed(lost)
        return lost


# ------------------------------------------------------------------ capture from the billing record
class CaptureOutcome(StrEnum):
    SETTLED = "settled"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    ALREADY_SETTLED = "already_settled"
    NOT_A_PAYMENT = "not_a_payment"


@dataclass(frozen=True)
class BillingCapture:
    """Takes the billing record's total incl. VAT from the payment whose tag the session ran on."""

    payments: PaymentStore
    sessions: SessionReader
    cdrs: CdrReader
    settlements: PaymentSettlements
    clock: Callable[[], datetime]

    def on_record(self, cdr_id: str) -> CaptureOutcome:
        record = self.cdrs.get(cdr_id)
        if record is None or record.credit_reference_id is not None:
            return CaptureOutcome.NOT_A_PAYMENT  # credits are settled by operator refunds
        session = self.sessions.get(record.session_id)
        if session is None or not rules.is_payment_tag(session.id_tag):
            return CaptureOutcome.NOT_A_PAYMENT
        payment = self.payments.by_tag(session.id_tag)
        if payment is None or (payment.charger_id, payment.connector_id) != (
            session.charger_id,
            session.connector_id,
        ):
            return CaptureOutcome.NOT_A_PAYMENT
        return self.settle(payment, record)

    def settle(self, payment: Payment, record: BillingRecord) -> CaptureOutcome:
        if payment.session_id not in (None, record.session_id):
            return CaptureOutcome.NOT_A_PAYMENT  # another session on the tag: the payment pays one
        if payment.state in (PaymentState.AUTHORIZED, PaymentState.CHARGING):
            # A short session may end before anything linked it.
            linked = rules.link_session(payment, record.session_id, self.clock())
            payment = payment if linked is payment else saved(self.payments, linked)
        if payment.state is not PaymentState.CHARGING or payment.session_id != record.session_id:
            return CaptureOutcome.ALREADY_SETTLED
        result = self.settlements.settle_cost(
            payment, record.total_incl_vat, record.currency, Reason.SESSION_COST
        )
        if result.state is PaymentState.FAILED:
            return CaptureOutcome.FAILED
        return (
            CaptureOutcome.RETRY_SCHEDULED
            if result.state is PaymentState.CHARGING
            else CaptureOutcome.SETTLED
        )


def running_cost(session: SessionRecord, events: list[SessionEvent]) -> tuple[Decimal, str] | None:
    """The session's cost so far incl. VAT, by the tariff snapshot billing will use."""
    if session.tariff_json is None or not events:
        return None
    rated = Decimal(session.rated_power_w) if session.rated_power_w else None
    facts = fold(events, rated_power_w=rated)
    if facts.started_at is None:
        return None
    priced = price_session(load_tariff(session.tariff_json), session_profile(facts, session.time_zone))
    total = priced.total_cost
    return (total.incl_vat if total.incl_vat is not None else total.excl_vat), priced.currency
