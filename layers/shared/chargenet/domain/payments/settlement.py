"""Settling a payment: the provider call a settlement takes (capture, cancel or refund), the
record it leaves, retries of a failed call, and an operator's settlement of a failed payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from chargenet.domain.billing import BillingRecord
from chargenet.domain.money import to_minor_units
from chargenet.domain.payments.checkout import IntentFacts
from chargenet.domain.payments.config import PaymentConfig
from chargenet.domain.payments.errors import HoldGone, InvalidTransition, PaymentError
from chargenet.domain.payments.identifiers import cancel_key, capture_key, refund_key
from chargenet.domain.payments.model import (
    MINIMUM_CHARGE,
    Payment,
    PaymentState,
    Reason,
    Settlement,
    changed,
    transition,
)

MAX_CAPTURE_BACKOFF = timedelta(minutes=30)


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

    def plan(call: MoneyCall | None, state: PaymentState) -> SettlementPlan:
        return SettlementPlan(
            call=call,
            state=state,
            due_minor=due,
            take_minor=take,
            uncollected_minor=uncollected,
            reason=reason,
        )

    if payment.settlement is Settlement.HOLD:
        if take == 0:
            return plan(MoneyCall(MoneyAction.CANCEL, 0, cancel_key(payment)), PaymentState.CANCELLED)
        return plan(MoneyCall(MoneyAction.CAPTURE, take, capture_key(payment)), PaymentState.CAPTURED)
    difference = payment.captured_minor - take
    if difference == 0:
        return plan(None, PaymentState.CAPTURED)
    call = MoneyCall(MoneyAction.REFUND, difference, refund_key(payment, payment.refund_count + 1))
    return plan(call, PaymentState.REFUNDED)


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
    return changed(payment, now, capture_attempts=attempts, failure=error, next_attempt_at=now + backoff)


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
    return changed(payment, now, capture_attempts=payment.capture_attempts + 1, failure=error)
