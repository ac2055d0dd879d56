"""Ad-hoc payments: a hold (or a Swish prepay) taken before charging, settled from the billing record.

Pure: no I/O. Amounts are integer minor units (what payment providers take) or Decimals rounded
by `chargenet.domain.money`, the project's one rounding rule.

The rules
---------
- A card/wallet/Link payment is a *hold* (Stripe manual capture) of a configured amount per
  currency. At session end the billing record's total incl. VAT is captured, never more than the
  hold; the rest of the hold is released by the capture itself.
- Swish has no manual capture: the hold amount is *prepaid* and the difference refunded.
- Below the provider's minimum charge the session is free: the hold is cancelled (the prepay
  refunded in full). The same rule for every method, so a driver's bill never depends on it.
- Card holds expire (Stripe cancels uncaptured intents after 7 days): a hold older than
  `hold_max_age` is settled from the running cost before that.
- No incremental authorization in SCA countries: the session is stopped when its running cost
  reaches the hold minus a safety margin (the cost of the last meter interval still to come).
- Every money-moving call carries an idempotency key derived from the payment, so a retry after
  a timeout can never capture or refund twice.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import Charger, ConnectorStatus
from chargenet.domain.money import from_minor_units, parse_decimal, round_money, to_minor_units

# Stripe's minimum charge amounts (SPEC section 6); a currency without one cannot be sold.
MINIMUM_CHARGE: dict[str, Decimal] = {
    "SEK": Decimal("3.00"),
    "EUR": Decimal("0.50"),
    "USD": Decimal("0.50"),
}
# Checkout payment method types that support a manual-capture hold. Apple Pay and Google Pay are
# wallets on the "card" type in Checkout, so they need no entry of their own.
HOLD_METHOD_TYPES = frozenset({"card", "link"})
SWISH = "swish"
SWISH_CURRENCY = "SEK"
PAYMENT_TAG_PREFIX = "PAY"  # OCPP idTag is at most 20 characters: PAY + 16 hex digits
MAX_CAPTURE_BACKOFF = timedelta(minutes=30)


class PaymentError(ValueError):
    """A payment rule refused the operation."""


class InvalidTransition(PaymentError):
    pass


class NotAuthorized(PaymentError):
    """The provider's payment is not (yet) in a state that secures the money."""


class RefundRefused(PaymentError):
    pass


class HoldGone(PaymentError):
    """The provider no longer holds the money a failed payment's settlement needs."""


class PaymentProviderError(Exception):
    """The provider refused a call for good: retrying the same call cannot succeed."""


class PaymentDeclined(PaymentProviderError):
    """The card (or wallet, or bank) declined."""


class PaymentProviderUnavailable(PaymentProviderError):
    """Network error, provider outage, rate limit, bad credentials: the same call may succeed later."""


class WebhookRejected(ValueError):
    """Not a genuine, fresh provider event: unsigned, wrongly signed, stale, or unreadable."""


class PaymentState(StrEnum):
    CHECKOUT_OPEN = "checkout_open"
    AUTHORIZED = "authorized"  # money secured (hold or prepay); the charger is asked to start
    CHARGING = "charging"  # a session runs on the payment's tag
    CAPTURED = "captured"  # settled: the amount due was taken
    CANCELLED = "cancelled"  # nothing taken: checkout abandoned, charger never started, below minimum
    REFUNDED = "refunded"  # settled with a refund (Swish difference, operator refund), partial or full
    FAILED = "failed"  # the money could not be settled: operators act (PaymentFailures alarm)


TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    PaymentState.CHECKOUT_OPEN: frozenset({PaymentState.AUTHORIZED, PaymentState.CANCELLED}),
    PaymentState.AUTHORIZED: frozenset(
        {PaymentState.CHARGING, PaymentState.CANCELLED, PaymentState.REFUNDED, PaymentState.FAILED}
    ),
    PaymentState.CHARGING: frozenset(
        {PaymentState.CAPTURED, PaymentState.CANCELLED, PaymentState.REFUNDED, PaymentState.FAILED}
    ),
    PaymentState.CAPTURED: frozenset({PaymentState.REFUNDED}),
    PaymentState.REFUNDED: frozenset({PaymentState.REFUNDED}),  # a further partial refund
    # An operator may settle a failed payment once the cause is fixed.
    PaymentState.FAILED: frozenset({PaymentState.CAPTURED, PaymentState.CANCELLED, PaymentState.REFUNDED}),
    PaymentState.CANCELLED: frozenset(),
}
# Money is (or may still be) held for the driver in these states.
OPEN_STATES = (PaymentState.CHECKOUT_OPEN, PaymentState.AUTHORIZED, PaymentState.CHARGING)


class Settlement(StrEnum):
    HOLD = "hold"  # manual capture
    PREPAY = "prepay"  # paid up front (Swish), the difference refunded


class CheckoutMethod(StrEnum):
    """The choices on the pay page."""

    CARD = "card"  # card, wallets, Link: a hold
    SWISH = "swish"  # prepay

    @property
    def settlement(self) -> Settlement:
        return Settlement.PREPAY if self is CheckoutMethod.SWISH else Settlement.HOLD


class Reason(StrEnum):
    """Why a payment ended the way it did; shown to drivers and operators."""

    CHECKOUT_EXPIRED = "checkout_expired"
    CHECKOUT_FAILED = "checkout_failed"
    CHARGER_REFUSED = "charger_refused"
    START_TIMEOUT = "start_timeout"
    AUTHORIZATION_LATE = "authorization_late"  # the money arrived after the driver's start window
    BELOW_MINIMUM = "below_minimum"
    SESSION_COST = "session_cost"
    SESSION_VOIDED = "session_voided"  # the operator voided the session: nothing is owed
    HOLD_EXPIRY = "hold_expiry"  # settled from the running cost before the card network's window closed
    HOLD_LOST = "hold_lost"  # the provider cancelled the hold (e.g. it expired)
    CAPTURE_FAILED = "capture_failed"
    OPERATOR_REFUND = "operator_refund"
    OPERATOR_RELEASE = "operator_release"  # an operator released a failed payment's money


# ------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class PaymentConfig:
    """One deployment's payment settings (template parameters, see `load_config`)."""

    holds: Mapping[str, Decimal]  # hold (and Swish prepay) amount per currency, major units
    hold_methods: tuple[str, ...] = ("card", "link")
    swish: bool = False
    cap_margin_percent: Decimal = Decimal(10)
    start_timeout: timedelta = timedelta(minutes=2)
    hold_max_age: timedelta = timedelta(days=6)
    capture_max_attempts: int = 6
    # Stripe refuses an expiry under 30 minutes from creation: one more for the time the request takes.
    checkout_ttl: timedelta = timedelta(minutes=31)
    # Checkouts opened on one connector within checkout_ttl. Anyone may open one, unauthenticated:
    # without a bound one client could fill the payments table (and every sweep) with open checkouts.
    # A driver needs one; the others are for the driver who backs out of the hosted page and retries.
    checkouts_per_connector: int = 3

    def __post_init__(self) -> None:
        for currency, amount in self.holds.items():
            minimum = MINIMUM_CHARGE.get(currency)
            if minimum is None:
                raise PaymentError(f"no known minimum charge for {currency}: cannot take payments in it")
            if round_money(amount, currency) != amount or amount < minimum:
                raise PaymentError(f"hold {amount} {currency} must be whole minor units, at least {minimum}")
        unknown = set(self.hold_methods) - HOLD_METHOD_TYPES
        if not self.hold_methods or unknown:
            raise PaymentError(
                f"hold methods must be some of {sorted(HOLD_METHOD_TYPES)}, got {self.hold_methods}"
            )
        if not Decimal(0) <= self.cap_margin_percent < Decimal(100):
            raise PaymentError("the cost cap margin is a percentage of the hold, 0 to below 100")
        if self.capture_max_attempts < 1:
            raise PaymentError("capture_max_attempts must be at least 1")
        if self.checkouts_per_connector < 1:
            raise PaymentError("checkouts_per_connector must be at least 1")

    def hold_minor(self, currency: str) -> int | None:
        amount = self.holds.get(currency)
        return to_minor_units(amount, currency) if amount is not None else None

    def methods_for(self, currency: str) -> list[CheckoutMethod]:
        if currency not in self.holds:
            return []
        swish = self.swish and currency == SWISH_CURRENCY
        return [CheckoutMethod.CARD, *([CheckoutMethod.SWISH] if swish else [])]


def load_config(env: Mapping[str, str]) -> PaymentConfig:
    """From the function environment: PAYMENT_HOLDS="EUR=50.00,SEK=500.00",
    PAYMENT_METHODS="card,link,swish", PAYMENT_CAP_MARGIN_PERCENT, PAYMENT_START_TIMEOUT_S,
    PAYMENT_HOLD_MAX_AGE_S."""
    holds = {}
    for entry in filter(None, (part.strip() for part in env.get("PAYMENT_HOLDS", "").split(","))):
        currency, _, amount = entry.partition("=")
        holds[currency.strip().upper()] = parse_decimal(amount)
    methods = [m.strip() for m in env.get("PAYMENT_METHODS", "card,link").split(",") if m.strip()]
    defaults = PaymentConfig(holds={})
    return PaymentConfig(
        holds=holds,
        hold_methods=tuple(m for m in methods if m != SWISH),
        swish=SWISH in methods,
        cap_margin_percent=parse_decimal(env.get("PAYMENT_CAP_MARGIN_PERCENT", defaults.cap_margin_percent)),
        start_timeout=_seconds(env, "PAYMENT_START_TIMEOUT_S", defaults.start_timeout),
        hold_max_age=_seconds(env, "PAYMENT_HOLD_MAX_AGE_S", defaults.hold_max_age),
    )


def _seconds(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    return timedelta(seconds=int(env[name])) if name in env else default


# ------------------------------------------------------------------ the payment record
class Payment(BaseModel):
    """One driver's payment for one charging session on one connector."""

    model_config = ConfigDict(frozen=True)

    payment_id: str
    token_digest: str  # sha256 of the driver's token: the token itself is never stored
    charger_id: str
    connector_id: int
    currency: str
    settlement: Settlement
    hold_minor: int  # the hold, or the prepay, in minor units
    id_tag: str  # the OCPP idTag RemoteStartTransaction gives the charger
    state: PaymentState
    version: int = 0  # every saved change increments it: writes are conditional on it
    created_at: datetime
    updated_at: datetime
    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    authorized_at: datetime | None = None
    start_message_id: str | None = None
    start_sent_at: datetime | None = None
    session_id: str | None = None
    stop_requested_at: datetime | None = None
    due_minor: int | None = None  # the session's cost incl. VAT, as settled
    captured_minor: int = 0  # money taken: the capture, or the prepay received
    refunded_minor: int = 0
    refund_count: int = 0
    uncollected_minor: int = 0  # cost above the hold (the cap came too late): not taken
    capture_attempts: int = 0
    next_attempt_at: datetime | None = None
    reason: Reason | None = None
    failure: str | None = None  # the provider's last error, for operators

    @property
    def kept_minor(self) -> int:
        """What the driver finally paid."""
        return self.captured_minor - self.refunded_minor


def new_payment(
    config: PaymentConfig,
    *,
    payment_id: str,
    token: str,
    id_tag: str,
    charger_id: str,
    connector_id: int,
    currency: str,
    method: CheckoutMethod,
    now: datetime,
) -> Payment:
    hold = config.hold_minor(currency)
    if hold is None or method not in config.methods_for(currency):
        raise PaymentError(f"{method.value} payments in {currency} are not offered")
    return Payment(
        payment_id=payment_id,
        token_digest=token_digest(token),
        charger_id=charger_id,
        connector_id=connector_id,
        currency=currency,
        settlement=method.settlement,
        hold_minor=hold,
        id_tag=id_tag,
        state=PaymentState.CHECKOUT_OPEN,
        created_at=now,
        updated_at=now,
    )


def transition(payment: Payment, to: PaymentState, now: datetime, **changes: Any) -> Payment:
    """The payment in state `to` with `changes`; InvalidTransition when the state machine forbids it."""
    if to not in TRANSITIONS[payment.state]:
        raise InvalidTransition(f"payment {payment.payment_id}: {payment.state.value} -> {to.value}")
    return _changed(payment, now, state=to, **changes)


def _changed(payment: Payment, now: datetime, **changes: Any) -> Payment:
    return payment.model_copy(update={**changes, "version": payment.version + 1, "updated_at": now})


# ------------------------------------------------------------------ driver token and charger tag
def new_driver_token() -> str:
    """The secret in the driver's session link: 256 random bits, never derived from an id."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_payment_tag() -> str:
    return f"{PAYMENT_TAG_PREFIX}{secrets.token_hex(8).upper()}"


def is_payment_tag(id_tag: str) -> bool:
    return id_tag.startswith(PAYMENT_TAG_PREFIX) and len(id_tag) == len(PAYMENT_TAG_PREFIX) + 16


# ------------------------------------------------------------------ idempotency keys
def checkout_key(payment: Payment) -> str:
    return f"checkout-{payment.payment_id}"


def capture_key(payment: Payment) -> str:
    return f"capture-{payment.payment_id}"


def cancel_key(payment: Payment) -> str:
    return f"cancel-{payment.payment_id}"


def refund_key(payment: Payment, number: int) -> str:
    return f"refund-{payment.payment_id}-{number}"


# ------------------------------------------------------------------ connector availability
class Availability(StrEnum):
    AVAILABLE = "available"
    OFFLINE = "offline"
    FAULTED = "faulted"
    BUSY = "busy"
    UNKNOWN = "unknown"  # the connector never reported a status


# Preparing: the driver plugged in and the charger waits for authorization, the usual case here.
_FREE = frozenset({"Available", "Preparing"})
_BUSY = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"})
_OUT_OF_ORDER = frozenset({"Faulted", "Unavailable"})


def connector_availability(
    charger: Charger, statuses: list[ConnectorStatus], connector_id: int
) -> Availability:
    """Whether a driver may pay for this connector now: only a connected charger whose connector
    is free and whose charger as a whole (connector 0) is not out of order."""
    if not charger.online:
        return Availability.OFFLINE
    by_connector = {s.connector_id: s for s in statuses}
    whole = by_connector.get(0)
    if whole is not None and whole.status in _OUT_OF_ORDER:
        return Availability.FAULTED
    status = by_connector.get(connector_id)
    if status is None:
        return Availability.UNKNOWN
    if status.status in _OUT_OF_ORDER:
        return Availability.FAULTED
    if status.status in _BUSY:
        return Availability.BUSY
    return Availability.AVAILABLE if status.status in _FREE else Availability.UNKNOWN


# ------------------------------------------------------------------ checkout and authorization
@dataclass(frozen=True)
class CheckoutRequest:
    """What the provider's hosted checkout is asked for."""

    payment_id: str
    idempotency_key: str
    currency: str
    amount_minor: int
    settlement: Settlement
    method_types: tuple[str, ...]
    description: str
    success_url: str
    cancel_url: str
    expires_at: datetime


@dataclass(frozen=True)
class CheckoutCreated:
    checkout_session_id: str
    url: str


@dataclass(frozen=True)
class CheckoutFacts:
    checkout_session_id: str
    status: str  # open | complete | expired
    payment_intent_id: str | None


@dataclass(frozen=True)
class IntentFacts:
    """A provider payment (Stripe PaymentIntent) as it is now."""

    intent_id: str
    status: str
    currency: str  # upper case
    amount_capturable: int
    amount_received: int


def checkout_request(
    payment: Payment, config: PaymentConfig, *, success_url: str, cancel_url: str, now: datetime
) -> CheckoutRequest:
    methods = config.hold_methods if payment.settlement is Settlement.HOLD else (SWISH,)
    return CheckoutRequest(
        payment_id=payment.payment_id,
        idempotency_key=checkout_key(payment),
        currency=payment.currency,
        amount_minor=payment.hold_minor,
        settlement=payment.settlement,
        method_types=tuple(methods),
        description=_description(payment),
        success_url=success_url,
        cancel_url=cancel_url,
        expires_at=now + config.checkout_ttl,
    )


def _description(payment: Payment) -> str:
    what = "hold" if payment.settlement is Settlement.HOLD else "prepayment"
    return f"Charging at {payment.charger_id} connector {payment.connector_id} ({what})"


def checkout_opened(payment: Payment, created: CheckoutCreated, now: datetime) -> Payment:
    if payment.state is not PaymentState.CHECKOUT_OPEN:
        raise InvalidTransition(
            f"payment {payment.payment_id} is {payment.state.value}: its checkout is over"
        )
    return _changed(payment, now, checkout_session_id=created.checkout_session_id)


def authorize(payment: Payment, intent: IntentFacts, now: datetime) -> Payment:
    """Money secured: a hold awaiting capture, or a prepay received. NotAuthorized otherwise."""
    if intent.currency != payment.currency:
        raise NotAuthorized(
            f"intent {intent.intent_id} is in {intent.currency}, payment in {payment.currency}"
        )
    if payment.settlement is Settlement.HOLD:
        if intent.status != "requires_capture" or intent.amount_capturable <= 0:
            raise NotAuthorized(f"intent {intent.intent_id} is {intent.status}: no hold to capture")
        # Never more than asked for: the capture is bounded by what we showed the driver.
        held = min(intent.amount_capturable, payment.hold_minor)
        return transition(
            payment,
            PaymentState.AUTHORIZED,
            now,
            payment_intent_id=intent.intent_id,
            hold_minor=held,
            authorized_at=now,
        )
    if intent.status != "succeeded" or intent.amount_received <= 0:
        raise NotAuthorized(f"intent {intent.intent_id} is {intent.status}: the prepayment has not arrived")
    return transition(
        payment,
        PaymentState.AUTHORIZED,
        now,
        payment_intent_id=intent.intent_id,
        hold_minor=intent.amount_received,
        captured_minor=intent.amount_received,
        authorized_at=now,
    )


def authorization_late(paid_at: datetime | None, now: datetime, config: PaymentConfig) -> bool:
    """Money that arrives after the driver's start window (a webhook delayed by an outage, or found
    by polling) must not start a charger the driver may have left: it is given back instead."""
    return paid_at is None or now - paid_at > config.start_timeout


def start_sent(payment: Payment, message_id: str, now: datetime) -> Payment:
    if payment.state is not PaymentState.AUTHORIZED:
        raise InvalidTransition(f"payment {payment.payment_id} is {payment.state.value}: no start to send")
    return _changed(payment, now, start_message_id=message_id, start_sent_at=now)


# ------------------------------------------------------------------ starting
class StartProgress(StrEnum):
    WAITING = "waiting"
    STARTED = "started"
    REFUSED = "refused"
    TIMED_OUT = "timed_out"


def start_progress(
    payment: Payment,
    answer: Mapping[str, Any] | None,
    session_id: str | None,
    now: datetime,
    config: PaymentConfig,
) -> StartProgress:
    """How the RemoteStartTransaction went: the charger's answer (a PendingCall outcome) and
    whether a session runs on the payment's tag."""
    if session_id is not None:
        return StartProgress.STARTED
    if answer is not None and (answer.get("result") or {}).get("status") != "Accepted":
        return StartProgress.REFUSED  # Rejected, a CALLERROR, or an answer the schema refused
    if payment.start_sent_at is None or now - payment.start_sent_at >= config.start_timeout:
        return StartProgress.TIMED_OUT
    return StartProgress.WAITING


def link_session(payment: Payment, session_id: str, now: datetime) -> Payment:
    if payment.session_id not in (None, session_id):
        raise PaymentError(f"payment {payment.payment_id} already pays for session {payment.session_id}")
    if payment.state is PaymentState.AUTHORIZED:
        return transition(payment, PaymentState.CHARGING, now, session_id=session_id)
    return payment if payment.session_id == session_id else _changed(payment, now, session_id=session_id)


# ------------------------------------------------------------------ running cost: cap and hold expiry
def cap_minor(payment: Payment, config: PaymentConfig) -> int:
    """Stop charging at this running cost: the hold minus a margin for the last meter interval."""
    hold = from_minor_units(payment.hold_minor, payment.currency)
    margin = round_money(hold * config.cap_margin_percent / 100, payment.currency)
    return payment.hold_minor - to_minor_units(margin, payment.currency)


def cap_reached(payment: Payment, running_cost_incl_vat: Decimal, config: PaymentConfig) -> bool:
    return to_minor_units(running_cost_incl_vat, payment.currency) >= cap_minor(payment, config)


def hold_expiring(payment: Payment, now: datetime, config: PaymentConfig) -> bool:
    """A card hold the network may soon drop; a prepay cannot expire."""
    return (
        payment.settlement is Settlement.HOLD
        and payment.authorized_at is not None
        and now - payment.authorized_at >= config.hold_max_age
    )


def stop_requested(payment: Payment, now: datetime) -> Payment:
    return _changed(payment, now, stop_requested_at=now)


# ------------------------------------------------------------------ settling
class MoneyAction(StrEnum):
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"


@dataclass(frozen=True)
class MoneyCall:
    action: MoneyAction
    amount_minor: int  # 0 for a cancel
    idempotency_key: str


@dataclass(frozen=True)
class SettlementPlan:
    """What settling a payment takes, and the record it leaves."""

    call: MoneyCall | None  # None: nothing to do at the provider (a prepay that equals the cost)
    state: PaymentState
    due_minor: int
    take_minor: int
    uncollected_minor: int
    reason: Reason


def minimum_minor(currency: str) -> int:
    return to_minor_units(MINIMUM_CHARGE[currency], currency)


def plan_settlement(
    payment: Payment, cost_incl_vat: Decimal, currency: str, reason: Reason
) -> SettlementPlan:
    """Take the cost incl. VAT, never more than the hold; below the minimum charge, nothing."""
    if payment.state not in (PaymentState.AUTHORIZED, PaymentState.CHARGING):
        raise InvalidTransition(f"payment {payment.payment_id} is {payment.state.value}: nothing to settle")
    return _plan_cost(payment, cost_incl_vat, currency, reason)


def _plan_cost(payment: Payment, cost_incl_vat: Decimal, currency: str, reason: Reason) -> SettlementPlan:
    if currency != payment.currency:
        raise PaymentError(f"cost in {currency}, payment {payment.payment_id} in {payment.currency}")
    due = max(to_minor_units(cost_incl_vat, currency), 0)
    take = min(due, payment.hold_minor)
    if take < minimum_minor(currency):
        take, reason = 0, Reason.BELOW_MINIMUM
    return _plan(payment, due=due, take=take, reason=reason)


def plan_abort(payment: Payment, reason: Reason) -> SettlementPlan:
    """Give everything back: the charger never started, or the money came too late."""
    if payment.state not in (PaymentState.AUTHORIZED, PaymentState.CHARGING):
        raise InvalidTransition(
            f"payment {payment.payment_id} is {payment.state.value}: nothing to give back"
        )
    return _plan(payment, due=0, take=0, reason=reason)


def _plan(payment: Payment, *, due: int, take: int, reason: Reason) -> SettlementPlan:
    uncollected = due - take if reason is not Reason.BELOW_MINIMUM else 0
    facts = {"due_minor": due, "take_minor": take, "uncollected_minor": uncollected, "reason": reason}
    if payment.settlement is Settlement.HOLD:
        if take == 0:
            call = MoneyCall(MoneyAction.CANCEL, 0, cancel_key(payment))
            return SettlementPlan(call=call, state=PaymentState.CANCELLED, **facts)
        call = MoneyCall(MoneyAction.CAPTURE, take, capture_key(payment))
        return SettlementPlan(call=call, state=PaymentState.CAPTURED, **facts)
    difference = payment.captured_minor - take
    if difference == 0:
        return SettlementPlan(call=None, state=PaymentState.CAPTURED, **facts)
    call = MoneyCall(MoneyAction.REFUND, difference, refund_key(payment, payment.refund_count + 1))
    return SettlementPlan(call=call, state=PaymentState.REFUNDED, **facts)


def settled(payment: Payment, plan: SettlementPlan, now: datetime) -> Payment:
    """The record once the plan's call succeeded."""
    changes: dict[str, Any] = {
        "due_minor": plan.due_minor,
        "uncollected_minor": plan.uncollected_minor,
        "reason": plan.reason,
        "next_attempt_at": None,
    }
    if payment.settlement is Settlement.HOLD:
        changes["captured_minor"] = plan.take_minor
    elif plan.call is not None:
        changes["refunded_minor"] = payment.refunded_minor + plan.call.amount_minor
        changes["refund_count"] = payment.refund_count + 1
    return transition(payment, plan.state, now, **changes)


def settlement_failed(
    payment: Payment, error: str, *, transient: bool, now: datetime, config: PaymentConfig
) -> Payment:
    """A settlement call failed: retry later with the same key, or, when that is pointless or
    the attempts are used up, the visible failed state."""
    attempts = payment.capture_attempts + 1
    if not transient or attempts >= config.capture_max_attempts:
        return transition(
            payment,
            PaymentState.FAILED,
            now,
            capture_attempts=attempts,
            failure=error,
            reason=Reason.CAPTURE_FAILED,
        )
    backoff = min(timedelta(minutes=2 ** (attempts - 1)), MAX_CAPTURE_BACKOFF)
    return _changed(payment, now, capture_attempts=attempts, failure=error, next_attempt_at=now + backoff)


def hold_lost(payment: Payment, now: datetime) -> Payment:
    """The provider cancelled a hold we still counted on (it expired): visible, never silent."""
    return transition(
        payment, PaymentState.FAILED, now, reason=Reason.HOLD_LOST, failure="the hold was cancelled"
    )


def plan_failed_settlement(payment: Payment, record: BillingRecord, intent: IntentFacts) -> SettlementPlan:
    """An operator settles a failed payment once the cause is fixed: the plan the capture path
    would make from the billing record (the same idempotency key, so a capture that did reach the
    provider is not taken twice), as long as the provider still holds the money."""
    failed_intent_id(payment)
    if record.session_id != payment.session_id or record.credit_reference_id is not None:
        raise PaymentError(f"payment {payment.payment_id} does not pay for record {record.cdr_id}")
    plan = _plan_cost(payment, record.total_incl_vat, record.currency, Reason.SESSION_COST)
    _require_money_held(payment, intent, plan)
    return plan


def plan_failed_release(payment: Payment, intent: IntentFacts) -> SettlementPlan:
    """An operator gives a failed payment's money back: the hold cancelled, a prepay refunded in full."""
    failed_intent_id(payment)
    plan = _plan(payment, due=0, take=0, reason=Reason.OPERATOR_RELEASE)
    _require_money_held(payment, intent, plan)
    return plan


def failed_intent_id(payment: Payment) -> str:
    """The provider's intent of a failed payment; InvalidTransition for a payment not failed."""
    if payment.state is not PaymentState.FAILED or payment.payment_intent_id is None:
        raise InvalidTransition(
            f"payment {payment.payment_id} is {payment.state.value}, not failed: nothing to settle"
        )
    return payment.payment_intent_id


def _require_money_held(payment: Payment, intent: IntentFacts, plan: SettlementPlan) -> None:
    """HoldGone unless the intent can still be settled as planned. An intent already in the
    planned end state (the call reached the provider, its answer did not reach us) is settled:
    the repeated call, under the same key, changes nothing."""
    if intent.intent_id != payment.payment_intent_id:
        raise PaymentError(f"intent {intent.intent_id} is not payment {payment.payment_id}'s")
    action = plan.call.action if plan.call is not None else None
    if payment.settlement is Settlement.PREPAY:
        usable = intent.status == "succeeded"  # refunds are not visible on the intent
    elif action is MoneyAction.CAPTURE:
        usable = intent.status == "requires_capture" or (
            intent.status == "succeeded" and intent.amount_received == plan.take_minor
        )
    else:
        usable = intent.status in ("requires_capture", "canceled")
    if not usable:
        raise HoldGone(
            f"the money of payment {payment.payment_id} is no longer held: intent {intent.intent_id} "
            f"is {intent.status} at the provider (received {intent.amount_received})"
        )


def failed_again(payment: Payment, error: str, now: datetime) -> Payment:
    """An operator's settlement of a failed payment failed too: still failed, the error recorded."""
    failed_intent_id(payment)
    return _changed(payment, now, capture_attempts=payment.capture_attempts + 1, failure=error)


def checkout_ended(payment: Payment, reason: Reason, now: datetime) -> Payment:
    return transition(payment, PaymentState.CANCELLED, now, reason=reason)


# ------------------------------------------------------------------ refunds
def plan_refund(payment: Payment, amount_minor: int | None = None) -> MoneyCall:
    """A refund of `amount_minor` (all that is left when None): never more than was kept."""
    if payment.state not in (PaymentState.CAPTURED, PaymentState.REFUNDED):
        raise RefundRefused(f"payment {payment.payment_id} is {payment.state.value}: nothing was taken")
    refundable = payment.kept_minor
    amount = refundable if amount_minor is None else amount_minor
    if amount <= 0 or amount > refundable:
        raise RefundRefused(
            f"refund {amount} of payment {payment.payment_id}: must be 1 to {refundable} (what is left of the capture)"
        )
    return MoneyCall(MoneyAction.REFUND, amount, refund_key(payment, payment.refund_count + 1))


def refunded(payment: Payment, call: MoneyCall, now: datetime) -> Payment:
    return transition(
        payment,
        PaymentState.REFUNDED,
        now,
        refunded_minor=payment.refunded_minor + call.amount_minor,
        refund_count=payment.refund_count + 1,
    )


# ------------------------------------------------------------------ receipt
@dataclass(frozen=True)
class ReceiptLine:
    label: str
    volume: str
    excl_vat: Decimal
    incl_vat: Decimal


def receipt_lines(record: BillingRecord) -> list[ReceiptLine]:
    """The CDR's cost lines that cost something; they add up to its total (money's line rule)."""
    ocpi = record.ocpi
    hours = _volume(ocpi, "total_time")
    parking = _volume(ocpi, "total_parking_time")
    candidates = (
        ("Start fee", "total_fixed_cost", ""),
        ("Energy", "total_energy_cost", f"{_volume(ocpi, 'total_energy'):f} kWh"),
        (
            "Charging time",
            "total_time_cost",
            f"{(hours - parking).normalize():f} h",
        ),  # OCPI's total_time includes parking
        ("Idle fee", "total_parking_cost", f"{parking:f} h"),
    )
    lines = []
    for label, field, volume in candidates:
        cost = ocpi.get(field)
        if not isinstance(cost, dict):
            continue
        excl = parse_decimal(str(cost["excl_vat"]))
        incl = parse_decimal(str(cost["incl_vat"])) if cost.get("incl_vat") is not None else excl
        if excl or incl:
            lines.append(ReceiptLine(label=label, volume=volume, excl_vat=excl, incl_vat=incl))
    return lines


def _volume(ocpi: Mapping[str, Any], field: str) -> Decimal:
    return parse_decimal(str(ocpi.get(field) or 0)).normalize()
