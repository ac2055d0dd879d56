"""Starting the charger: the remote start sent (1.6 RemoteStartTransaction, 2.0.1
RequestStartTransaction), its outcome, the session it started."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from chargenet.domain.payments.config import PaymentConfig
from chargenet.domain.payments.errors import InvalidTransition, PaymentError
from chargenet.domain.payments.model import Payment, PaymentState, changed, transition


def start_sent(payment: Payment, message_id: str, now: datetime) -> Payment:
    if payment.state is not PaymentState.AUTHORIZED:
        raise InvalidTransition(f"payment {payment.payment_id} is {payment.state.value}: no start to send")
    return changed(payment, now, start_message_id=message_id, start_sent_at=now)


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
    """How the remote start went: the charger's answer (a PendingCall outcome; both versions answer
    with a `status` of Accepted or Rejected) and whether a session runs on the payment's tag."""
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
    return payment if payment.session_id == session_id else changed(payment, now, session_id=session_id)
