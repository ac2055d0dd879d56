"""Capture from the billing record: the session's total incl. VAT taken from the payment whose
tag it ran on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chargenet.domain import payments as rules
from chargenet.domain.billing import BillingRecord
from chargenet.domain.payments import Payment, PaymentState, Reason
from chargenet.services.payments.ports import CdrReader, PaymentStore, SessionReader
from chargenet.services.payments.settlements import PaymentSettlements
from chargenet.services.payments.store import saved


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
