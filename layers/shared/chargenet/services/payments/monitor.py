"""What only time reveals about payments, and what the driver's session page shows.

Every open payment is checked by the scheduled sweep (and the one a driver looks at, on each
view, so the page never waits for the next sweep):
- checkout open past its expiry: ask the provider (a webhook may have been lost);
- authorized: did the charger start on the payment's tag, refuse, or stay silent past the
  start window? Refused or silent: the money goes back;
- charging: the cost cap (stop the session before its cost passes the hold), a card hold that
  could expire before the session ends, a voided session, a capture retry that is due, and a
  billing record that the capture path has not settled yet.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from aws_lambda_powertools import Logger

from chargenet.domain import payments as rules
from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import SessionRecord
from chargenet.domain.payments import OPEN_STATES, Payment, PaymentConfig, PaymentState, Reason, StartProgress
from chargenet.domain.running_cost import running_total
from chargenet.domain.sessions import SessionEvent, SessionState, fold
from chargenet.ports.messaging import PendingCalls
from chargenet.ports.registry import ChargerRegistry
from chargenet.services.commands import ChargerCommands, CommandRefused
from chargenet.services.payments.authorizations import PaymentAuthorizations
from chargenet.services.payments.capture import BillingCapture
from chargenet.services.payments.ports import CdrReader, PaymentGateway, PaymentStore, SessionReader
from chargenet.services.payments.settlements import PaymentSettlements
from chargenet.services.payments.store import saved

CHECKOUT_POLL_GRACE = timedelta(minutes=5)  # past the checkout's expiry, ask the provider
RUNNING = (SessionState.ACTIVE.value, SessionState.STOPPED.value)

logger = Logger(child=True)


@dataclass(frozen=True)
class SweepReport:
    """One sweep: the open payments per state they are left in, and those whose check failed.

    A failed payment is counted in the state it was listed in (it is still open) and is checked
    again by the next sweep, as every open payment is.
    """

    states: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)  # payment ids


@dataclass(frozen=True)
class DriverView:
    """The driver's session page: the payment, its session while it runs, the receipt after."""

    payment: Payment
    session: SessionRecord | None
    running_cost: Decimal | None
    record: BillingRecord | None
    now: datetime


class StopOutcome(StrEnum):
    SENT = "sent"
    NOT_RUNNING = "not_running"


@dataclass(frozen=True)
class PaymentMonitor:
    payments: PaymentStore
    sessions: SessionReader
    cdrs: CdrReader
    registry: ChargerRegistry
    pending: PendingCalls
    commands: ChargerCommands
    gateway: PaymentGateway
    authorizations: PaymentAuthorizations
    settlements: PaymentSettlements
    capture: BillingCapture
    config: PaymentConfig
    clock: Callable[[], datetime]

    # ------------------------------------------------------------ sweep
    def sweep(self) -> SweepReport:
        """Check every open payment, each on its own: one whose check raises (a provider lookup, a
        throttled write) is logged and reported, and the payments after it are still protected
        (cost cap, start timeout, hold expiry)."""
        report = SweepReport()
        for payment in self._due():
            try:
                payment = self.check(payment)
            except Exception as failure:  # isolation is the point: logged, counted, retried next run
                _log_failure(payment, failure)
                report.failed.append(payment.payment_id)
            report.states[payment.state.value] += 1
        return report

    def _due(self) -> list[Payment]:
        """The open payments a sweep has work for. Checkouts only once past their expiry: anyone may
        open one, and until it expires it is the provider's webhook that moves it on."""
        expired_before = self.clock() - self.config.checkout_ttl - CHECKOUT_POLL_GRACE
        return [
            *self.payments.in_states([PaymentState.CHECKOUT_OPEN], created_before=expired_before),
            *self.payments.in_states([PaymentState.AUTHORIZED, PaymentState.CHARGING]),
        ]

    def check(self, payment: Payment) -> Payment:
        if payment.next_attempt_at is not None and payment.next_attempt_at > self.clock():
            return payment  # a money call failed: its retry waits for the backoff
        if payment.state is PaymentState.CHECKOUT_OPEN:
            return self._check_checkout(payment)
        if payment.state is PaymentState.AUTHORIZED:
            payment = self._check_start(payment)
        if payment.state is PaymentState.CHARGING:
            return self._check_charging(payment)
        return payment

    def _check_checkout(self, payment: Payment) -> Payment:
        expired_at = payment.created_at + self.config.checkout_ttl + CHECKOUT_POLL_GRACE
        if self.clock() < expired_at:
            return payment
        if payment.checkout_session_id is None:
            # Its checkout was never recorded (the function stopped between the provider's answer
            # and the write): whatever the provider made has expired, so it expires here too
            # instead of staying open, and listed by every sweep, for ever.
            return self.authorizations.checkout_closed(payment.payment_id) or payment
        facts = self.gateway.checkout(payment.checkout_session_id)
        if facts.status == "complete" and facts.payment_intent_id:
            # Paid, but we never heard: far too late to start the charger, so the money goes back.
            return (
                self.authorizations.money_secured(payment.payment_id, facts.payment_intent_id, None)
                or payment
            )
        if facts.status == "expired":
            return self.authorizations.checkout_closed(payment.payment_id) or payment
        return payment

    def _check_start(self, payment: Payment) -> Payment:
        if payment.start_message_id is None:
            # The delivery that authorized it is sending the start right now, or it crashed in
            # between: a start never sent times out like one never answered.
            assert payment.authorized_at is not None
            if self.clock() - payment.authorized_at < self.config.start_timeout:
                return payment
            return self.settlements.abort(payment, Reason.START_TIMEOUT)
        session_id = self._session_on_tag(payment)
        call = self.pending.get(payment.charger_id, payment.start_message_id)
        progress = rules.start_progress(
            payment, call.outcome if call else None, session_id, self.clock(), self.config
        )
        if progress is StartProgress.STARTED and session_id is not None:
            return saved(self.payments, rules.link_session(payment, session_id, self.clock()))
        if progress is StartProgress.REFUSED:
            return self.settlements.abort(payment, Reason.CHARGER_REFUSED)
        if progress is StartProgress.TIMED_OUT:
            return self.settlements.abort(payment, Reason.START_TIMEOUT)
        return payment

    def _session_on_tag(self, payment: Payment) -> str | None:
        if payment.session_id is not None:
            return payment.session_id
        session_id = self.registry.connector_session(payment.charger_id, payment.connector_id)
        session = self.sessions.get(session_id) if session_id else None
        return session_id if session is not None and session.id_tag == payment.id_tag else None

    def _check_charging(self, payment: Payment) -> Payment:
        assert payment.session_id is not None
        now = self.clock()
        record = self.cdrs.get(payment.session_id)
        if record is not None:  # the capture path missed it or failed: settle (same keys)
            # The sweep's list may predate what the capture path just did (settled it, or failed
            # and set a backoff): the stored payment decides, so no needless call reaches the provider.
            current = self.payments.get(payment.payment_id) or payment
            if current.next_attempt_at is not None and current.next_attempt_at > now:
                return current
            self.capture.settle(current, record)
            return self.payments.get(payment.payment_id) or current
        session = self.sessions.get(payment.session_id)
        if session is None:
            return payment
        if session.state == SessionState.VOIDED.value:
            return self.settlements.abort(payment, Reason.SESSION_VOIDED)
        if session.state in RUNNING:
            return self._check_running(payment, session)
        if session.state == SessionState.NEEDS_REVIEW.value and rules.hold_expiring(
            payment, now, self.config
        ):
            # Anomalies never become bills, and the hold cannot wait for the review: release it.
            return self.settlements.abort(payment, Reason.HOLD_EXPIRY)
        return payment

    def _check_running(self, payment: Payment, session: SessionRecord) -> Payment:
        cost = running_cost(session, self.sessions.events(session.session_id))
        if cost is None:
            return payment
        amount, currency = cost
        if rules.hold_expiring(payment, self.clock(), self.config):
            self._stop(payment, session)
            return self.settlements.settle_cost(payment, amount, currency, Reason.HOLD_EXPIRY)
        if payment.stop_requested_at is None and rules.cap_reached(payment, amount, self.config):
            self._stop(payment, session)
            return saved(self.payments, rules.stop_requested(payment, self.clock()))
        return payment

    def _stop(self, payment: Payment, session: SessionRecord) -> bool:
        if session.state != SessionState.ACTIVE.value:
            return False
        try:
            self.commands.stop_remotely(session)
        except CommandRefused:
            return False
        return True

    # ------------------------------------------------------------ the driver's page
    def driver_view(self, token: str) -> DriverView | None:
        payment = self.payments.by_token(rules.token_digest(token))
        if payment is None:
            return None
        if payment.state in OPEN_STATES:
            payment = self.check(payment)
        session = self.sessions.get(payment.session_id) if payment.session_id else None
        cost = running_cost(session, self.sessions.events(session.session_id)) if session else None
        record = self.cdrs.get(payment.session_id) if payment.session_id else None
        return DriverView(
            payment=payment,
            session=session,
            running_cost=cost[0] if cost else None,
            record=record,
            now=self.clock(),
        )

    def stop(self, token: str) -> StopOutcome | None:
        """The driver's Stop button; None when the token is unknown."""
        payment = self.payments.by_token(rules.token_digest(token))
        if payment is None:
            return None
        session_id = self._session_on_tag(payment)
        session = self.sessions.get(session_id) if session_id else None
        if session is None or not self._stop(payment, session):
            return StopOutcome.NOT_RUNNING
        return StopOutcome.SENT


def _log_failure(payment: Payment, failure: Exception) -> None:
    # The type and the line, not the message: a provider's error text can quote customer data.
    origin = traceback.extract_tb(failure.__traceback__)[-1]
    logger.error(
        "payment check failed; retried by the next sweep",
        extra={
            "payment_id": payment.payment_id,
            "state": payment.state.value,
            "error_type": type(failure).__name__,
            "raised_at": f"{origin.filename}:{origin.lineno} in {origin.name}",
        },
    )


def running_cost(session: SessionRecord, events: list[SessionEvent]) -> tuple[Decimal, str] | None:
    """The session's cost so far incl. VAT, by the tariff snapshot billing will use."""
    if session.tariff_json is None or not events:
        return None
    rated = Decimal(session.rated_power_w) if session.rated_power_w else None
    return running_total(session, fold(events, rated_power_w=rated))
