"""Settling money (capture, cancel, refund) with retries that never take it twice, and an
operator's refund or settlement of a failed payment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from chargenet.domain import payments as rules
from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import TagStatus
from chargenet.domain.payments import (
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
from chargenet.services.payments.ports import PaymentAlarm, PaymentGateway, PaymentStore, TagIssuer
from chargenet.services.payments.store import require, saved

# Quick retries inside one invocation for a provider blip; longer outages go to the sweep's backoff.
QUICK_RETRY_DELAYS_S = (0.5, 1.5)


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

    def refund(
        self, payment_id: str, amount_minor: int | None = None, request_id: str | None = None
    ) -> Payment:
        """An operator's refund, partial or full, never more than what was kept. A request id
        already applied refunds nothing more (the operator's retry); two copies at once send
        the same idempotency key, so the provider refunds once and one save wins."""
        payment = require(self.payments, payment_id)
        if request_id is not None and request_id in payment.refund_requests:
            return payment
        call = rules.plan_refund(payment, amount_minor)
        self._call(payment, call)  # errors reach the operator as they are
        return self._saved(rules.refunded(payment, call, self.clock(), request_id))

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
