"""Subscriptions: sign-up with a hosted card setup, usage lines per CDR, the monthly invoice run,
and what a failed invoice does to the tag.

Webhooks repeat and arrive out of order, so none is trusted for the state of money: each one only
names a subscriber and an object, and the service asks the provider for the object's current state.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from chargenet.domain import subscriptions as rules
from chargenet.domain.models import TagStatus, mask_tag
from chargenet.domain.payments import PaymentProviderError, PaymentProviderUnavailable
from chargenet.domain.subscriptions import (
    InvoiceRun,
    InvoiceState,
    Period,
    Plan,
    Subscriber,
    SubscriberState,
    SubscriptionError,
)
from chargenet.ports.subscriptions import BillingGateway, OperatorAlerts, SubscriberStore, TagGate
from chargenet.ports.tags_tariffs import MemberTariffs
from chargenet.services.payments.ports import CdrReader, SessionReader

logger = logging.getLogger(__name__)


class UsageOutcome(StrEnum):
    BILLED = "billed"
    NOT_A_SUBSCRIBER = "not_a_subscriber"
    CREDIT = "credit"  # credit CDRs are settled by the operator (credit note), not as usage


@dataclass(frozen=True)
class SubscriberDesk:
    """The operator's side: plans and sign-ups."""

    store: SubscriberStore
    gateway: BillingGateway
    tags: TagGate
    tariffs: MemberTariffs
    clock: Callable[[], datetime]

    def add_plan(self, plan: Plan) -> Plan:
        if self.tariffs.tariff(plan.tariff_id) is None:
            raise SubscriptionError(f"no tariff {plan.tariff_id!r} in the tariff book (chargenet tariff set)")
        self.store.save_plan(plan)
        return plan

    def add_subscriber(self, email: str, id_tag: str, plan_id: str, return_url: str) -> Subscriber:
        """The Stripe customer and a hosted setup link; the tag is refused until the card is saved."""
        plan = self.store.plan(plan_id)
        if plan is None:
            raise SubscriptionError(f"no plan {plan_id!r} (chargenet plan add)")
        if self.store.get(id_tag) is not None:
            raise SubscriptionError(f"tag {mask_tag(id_tag)} is already a subscriber's")
        # Stripe first: when it fails nothing is stored, and a retry gets the same customer (keyed
        # by the tag). A tag found in use afterwards leaves an unused customer, never a stuck tag.
        customer_id = self.gateway.create_customer(email, id_tag)
        checkout = self.gateway.create_setup_checkout(customer_id, id_tag, plan.currency, return_url)
        if not self.tags.register(id_tag, TagStatus.BLOCKED):
            raise SubscriptionError(f"tag {mask_tag(id_tag)} is already registered")
        subscriber = Subscriber(
            id_tag=id_tag,
            email=email,
            plan_id=plan_id,
            customer_id=customer_id,
            created_at=self.clock(),
            setup_url=checkout.url,
        )
        self.store.create(subscriber)
        return subscriber


@dataclass(frozen=True)
class SubscriptionBilling:
    store: SubscriberStore
    gateway: BillingGateway
    tags: TagGate
    tariffs: MemberTariffs
    sessions: SessionReader
    cdrs: CdrReader
    alerts: OperatorAlerts
    grace: timedelta
    clock: Callable[[], datetime]

    # ------------------------------------------------------------------ card setup
    def card_saved(self, id_tag: str, checkout_session_id: str) -> Subscriber | None:
        """checkout.session.completed in setup mode: make the card the default for invoices
        (Checkout does not) and open the tag at member prices."""
        subscriber = self.store.get(id_tag)
        card = self.gateway.saved_card(checkout_session_id) if subscriber is not None else None
        if subscriber is None or card is None:
            return None
        self.gateway.set_default_card(subscriber.customer_id, card)
        plan = self._plan(subscriber)
        # The member tariff before the tag opens: the first session is already priced as a member's.
        self.tariffs.assign_member(id_tag, plan.tariff_id)
        updated = self._change(subscriber, lambda s: rules.card_saved(s, card, self.clock()))
        self.tags.set_status(id_tag, updated.tag_status)
        return updated

    # ------------------------------------------------------------------ usage
    def on_record(self, cdr_id: str) -> UsageOutcome:
        """A new CDR: a subscriber's becomes an invoice item, once (the CDR id is the idempotency key)."""
        record = self.cdrs.get(cdr_id)
        if record is None:
            return UsageOutcome.NOT_A_SUBSCRIBER
        if record.credit_reference_id is not None:
            return UsageOutcome.CREDIT
        session = self.sessions.get(record.session_id)
        subscriber = self.store.get(session.id_tag) if session else None
        if subscriber is None or subscriber.state is SubscriberState.PENDING:
            return UsageOutcome.NOT_A_SUBSCRIBER
        self.gateway.add_invoice_item(subscriber.customer_id, rules.usage_line(record, subscriber.id_tag))
        return UsageOutcome.BILLED

    # ------------------------------------------------------------------ invoicing
    def run(self, billed: Period, retry_failed: bool = False) -> Counter[str]:
        """Invoice every billable subscriber for the period, then block those past their grace.

        One subscriber's provider trouble does not stop the others: it is counted ("deferred" when
        the provider is unavailable, "error" when it refused the call) and the next run retries it
        (the run is idempotent per subscriber and period)."""
        outcomes = self._invoice_each(self.store.subscribers(), billed, retry_failed)
        outcomes["blocked"] = self.enforce_grace()
        return outcomes

    def run_page(self, subscribers: list[Subscriber], billed: Period, retry_failed: bool) -> Counter[str]:
        """An operator's run, one page of subscribers at a time (the whole run is every page):
        the page's subscribers invoiced, then those of them past their grace blocked."""
        outcomes = self._invoice_each(subscribers, billed, retry_failed)
        current = (self.store.get(s.id_tag) for s in subscribers)  # as the invoices left them
        outcomes["blocked"] = sum(
            self._block_if_grace_over(s) for s in current if s and s.state is SubscriberState.PAST_DUE
        )
        return outcomes

    def _invoice_each(
        self, subscribers: list[Subscriber], billed: Period, retry_failed: bool
    ) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        for subscriber in subscribers:
            if rules.billable(subscriber, billed):
                try:
                    outcomes[self.invoice(subscriber, billed, retry_failed).value] += 1
                except PaymentProviderError as error:
                    logger.warning("invoice not made for %s: %s", mask_tag(subscriber.id_tag), error)
                    outcomes["deferred" if isinstance(error, PaymentProviderUnavailable) else "error"] += 1
        return outcomes

    def invoice(self, subscriber: Subscriber, billed: Period, retry_failed: bool) -> InvoiceState:
        """The monthly fee plus the pending usage lines in one invoice, paid from the saved card."""
        run = self.store.invoice_run(subscriber.id_tag, billed.name)
        if run is not None and (
            run.state is InvoiceState.PAID or (run.state is InvoiceState.FAILED and not retry_failed)
        ):
            return run.state
        if run is None:
            run = self._create_invoice(subscriber, billed)
        state = self.gateway.pay_invoice(run.invoice_id)
        self._settled(subscriber.id_tag, run, state)
        return state

    def _create_invoice(self, subscriber: Subscriber, billed: Period) -> InvoiceRun:
        plan = self._plan(subscriber)
        fee = rules.fee_line(subscriber, plan, billed)
        if fee.amount_minor > 0:
            self.gateway.add_invoice_item(subscriber.customer_id, fee)
        invoice_id = self.gateway.create_invoice(
            subscriber.customer_id,
            {"id_tag": subscriber.id_tag, "period": billed.name},
            rules.invoice_key(subscriber, billed),
        )
        run = InvoiceRun(id_tag=subscriber.id_tag, period=billed.name, invoice_id=invoice_id)
        # Stored before paying: a crash after this resumes with the same invoice, never a second one.
        self.store.save_invoice_run(run)
        return run

    def invoice_changed(self, id_tag: str, period: str, invoice_id: str) -> InvoiceState | None:
        """invoice.paid / invoice.payment_failed: act on the invoice's state as the provider has it now."""
        run = self.store.invoice_run(id_tag, period)
        if run is None or run.invoice_id != invoice_id:
            return None  # not an invoice of ours
        state = self.gateway.invoice_state(invoice_id)
        self._settled(id_tag, run, state)
        subscriber = self.store.get(id_tag)
        if subscriber is not None:
            self._block_if_grace_over(subscriber)  # at once when the grace is zero
        return state

    def _settled(self, id_tag: str, run: InvoiceRun, state: InvoiceState) -> None:
        if state is InvoiceState.OPEN:
            return  # nothing decided yet
        if run.state is not InvoiceState.PAID:  # a late failure event never undoes a payment
            self.store.save_invoice_run(run.model_copy(update={"state": state}))
        subscriber = self.store.get(id_tag)
        if subscriber is None:
            return
        if state is InvoiceState.PAID:
            updated = self._change(subscriber, rules.paid)
            self.tags.set_status(id_tag, updated.tag_status)
        else:
            self._change(subscriber, lambda s: rules.payment_failed(s, self.clock()))

    # ------------------------------------------------------------------ grace
    def enforce_grace(self) -> int:
        """Block the tags of subscribers past due for longer than the grace period; the count."""
        return sum(
            self._block_if_grace_over(s)
            for s in self.store.subscribers()
            if s.state is SubscriberState.PAST_DUE
        )

    def _block_if_grace_over(self, subscriber: Subscriber) -> bool:
        now = self.clock()
        blocked = self._change(subscriber, lambda s: rules.block_if_grace_over(s, self.grace, now))
        if blocked.blocked_at != now:
            return False  # not due, or someone else changed it first (paid, or blocked earlier)
        self.tags.set_status(subscriber.id_tag, blocked.tag_status)
        # Stored before the alert: a retry after a failed publish finds it blocked and stays silent,
        # so an operator is paged at most once per blocking.
        self.alerts.subscriber_blocked(blocked)
        return True

    # ------------------------------------------------------------------ helpers
    def _plan(self, subscriber: Subscriber) -> Plan:
        plan = self.store.plan(subscriber.plan_id)
        if plan is None:
            raise SubscriptionError(
                f"subscriber {mask_tag(subscriber.id_tag)} has no plan {subscriber.plan_id!r}"
            )
        return plan

    def _change(self, subscriber: Subscriber, change: Callable[[Subscriber], Subscriber]) -> Subscriber:
        """Apply a rule with a conditional save; on a lost race, re-read and apply it again."""
        current: Subscriber | None = subscriber
        while current is not None:
            updated = change(current)
            if updated is current or self.store.save(updated):
                return updated
            current = self.store.get(subscriber.id_tag)
        raise SubscriptionError(f"subscriber {mask_tag(subscriber.id_tag)} vanished")
