"""The money secured (or not): the authorization that starts the charger, the receipt e-mail,
a checkout that closed, a hold the provider cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chargenet.domain import payments as rules
from chargenet.domain.models import TagStatus
from chargenet.domain.payments import Payment, PaymentConfig, PaymentState, Reason
from chargenet.services.commands import ChargerCommands, CommandRefused, request_id
from chargenet.services.payments.ports import PaymentGateway, PaymentStore, TagIssuer
from chargenet.services.payments.settlements import PaymentSettlements
from chargenet.services.payments.store import require, saved


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
        # Valid for one transaction within the start window, on the charger we ask.
        self.tags.put(payment.id_tag, TagStatus.ACCEPTED, 1, now + self.config.start_timeout)
        try:
            call = self.commands.start_remotely(
                payment.charger_id, payment.connector_id, payment.id_tag, request_id(payment.payment_id)
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
