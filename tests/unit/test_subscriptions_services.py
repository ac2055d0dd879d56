"""Subscription services on fakes: sign-up, card setup, usage lines, the monthly run, grace and alerts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chargenet.domain.models import TagStatus
from chargenet.domain.payments import PaymentProviderError, PaymentProviderUnavailable
from chargenet.domain.subscriptions import InvoiceState, Plan, SubscriberState, SubscriptionError, period
from chargenet.services.payments import ProviderWebhooks, WebhookOutcome
from chargenet.services.subscriptions import UsageOutcome
from tests.payment_fakes import InMemoryProcessedEvents
from tests.subscription_fakes import SubscriptionWorld, TrustingVerifier, unavailable

NOVEMBER = period("2026-11")


@pytest.fixture
def world() -> SubscriptionWorld:
    return SubscriptionWorld()


def test_a_plan_needs_a_tariff_in_the_book(world):
    with pytest.raises(SubscriptionError, match="no tariff"):
        world.desk.add_plan(Plan(plan_id="p", monthly_fee="1.00", currency="EUR", tariff_id="nope"))


def test_sign_up_creates_the_customer_and_a_setup_link_and_blocks_the_tag_until_the_card_is_saved(world):
    world.plan()
    subscriber = world.desk.add_subscriber("d@example.test", "RFID0001", "basic", "https://return.test")
    assert subscriber.state is SubscriberState.PENDING
    assert subscriber.setup_url == "https://checkout.test/cs_setup_1"
    assert world.gateway.customers == {subscriber.customer_id: "d@example.test"}
    assert world.tags.statuses == {"RFID0001": TagStatus.BLOCKED}


def test_sign_up_refuses_an_unknown_plan_and_a_tag_in_use(world):
    with pytest.raises(SubscriptionError, match="no plan"):
        world.desk.add_subscriber("d@example.test", "RFID0001", "basic", "https://return.test")
    world.plan()
    world.tags.register("RFID0001", TagStatus.ACCEPTED)  # an operator's tag (chargenet tag add)
    with pytest.raises(SubscriptionError, match="already registered"):
        world.desk.add_subscriber("d@example.test", "RFID0001", "basic", "https://return.test")
    assert world.store.get("RFID0001") is None
    assert world.tags.statuses == {"RFID0001": TagStatus.ACCEPTED}


def test_a_failed_sign_up_leaves_nothing_behind_and_can_be_retried(world):
    world.plan()
    world.gateway.failures.append(unavailable())
    with pytest.raises(PaymentProviderUnavailable):
        world.desk.add_subscriber("d@example.test", "RFID0001", "basic", "https://return.test")
    assert world.tags.statuses == {} and world.store.get("RFID0001") is None
    assert world.desk.add_subscriber("d@example.test", "RFID0001", "basic", "https://return.test")


def test_the_saved_card_becomes_the_default_opens_the_tag_and_sets_the_member_tariff(world):
    subscriber = world.active_subscriber()
    assert subscriber.state is SubscriberState.ACTIVE
    assert world.gateway.default_cards == {subscriber.customer_id: "pm_visa"}
    assert world.tags.statuses["RFID0001"] is TagStatus.ACCEPTED
    assert world.tariffs.members == {"RFID0001": "member"}


def test_a_setup_checkout_without_a_saved_card_changes_nothing(world):
    world.plan()
    subscriber = world.desk.add_subscriber("d@example.test", "RFID0001", "basic", "https://return.test")
    assert world.billing.card_saved("RFID0001", "cs_setup_1") is None
    assert world.store.get("RFID0001") == subscriber
    assert world.tags.statuses["RFID0001"] is TagStatus.BLOCKED


def test_each_cdr_of_a_subscriber_becomes_one_invoice_item_even_when_replayed(world):
    subscriber = world.active_subscriber()
    cdr_id = world.session_cdr("RFID0001", total="15.34")
    assert world.billing.on_record(cdr_id) is UsageOutcome.BILLED
    assert world.billing.on_record(cdr_id) is UsageOutcome.BILLED  # the stream delivers again
    [line] = world.gateway.pending[subscriber.customer_id]
    assert (line.amount_minor, line.currency, line.idempotency_key) == (1534, "EUR", f"usage-{cdr_id}")


def test_cdrs_of_other_drivers_and_credits_are_not_usage(world):
    world.active_subscriber()
    assert world.billing.on_record(world.session_cdr("PAY-TAG", "CDR-2")) is UsageOutcome.NOT_A_SUBSCRIBER
    assert world.billing.on_record(world.session_cdr("RFID0001", "CDR-3", credit=True)) is UsageOutcome.CREDIT
    assert world.billing.on_record("missing") is UsageOutcome.NOT_A_SUBSCRIBER
    assert world.gateway.pending == {}


def test_the_monthly_invoice_holds_the_fee_and_the_usage_and_is_paid_once(world):
    subscriber = world.active_subscriber()
    world.billing.on_record(world.session_cdr("RFID0001", total="15.34"))
    assert world.billing.run(NOVEMBER)["paid"] == 1
    [(invoice_id, invoice)] = world.gateway.invoices.items()
    assert invoice.total == 900 + 1534 and invoice.state is InvoiceState.PAID
    assert invoice.metadata == {"id_tag": "RFID0001", "period": "2026-11"}
    assert world.store.invoice_run("RFID0001", "2026-11").state is InvoiceState.PAID
    # Again, even days later with fresh idempotency keys: nothing new.
    world.now += timedelta(days=2)
    world.gateway.keys.clear()
    assert world.billing.run(NOVEMBER, retry_failed=True)["paid"] == 1
    assert list(world.gateway.invoices) == [invoice_id] and invoice.attempts == 1
    assert world.store.get("RFID0001") == subscriber


def test_a_month_before_the_sign_up_and_pending_subscribers_are_not_invoiced(world):
    world.active_subscriber()
    world.desk.add_subscriber("p@example.test", "RFID0002", "basic", "https://return.test")
    assert world.billing.run(period("2026-10"))["paid"] == 0
    assert world.gateway.invoices == {}


def test_a_free_plan_adds_no_fee_line(world):
    world.plan(fee="0.00")
    world.active_subscriber()
    world.billing.on_record(world.session_cdr("RFID0001", total="2.00"))
    world.billing.run(NOVEMBER)
    [invoice] = world.gateway.invoices.values()
    assert [line.amount_minor for line in invoice.lines] == [200]


def test_a_declined_invoice_makes_the_subscriber_past_due_then_blocked_after_the_grace(world):
    world.gateway.declining_cards.add("pm_declines")
    world.active_subscriber(card="pm_declines")
    assert world.billing.run(NOVEMBER)["failed"] == 1
    past_due = world.store.get("RFID0001")
    assert past_due.state is SubscriberState.PAST_DUE and past_due.past_due_since == world.now
    assert world.tags.statuses["RFID0001"] is TagStatus.ACCEPTED and world.alerts.blocked == []
    # The scheduled run neither re-charges a declined invoice nor blocks before the grace is over.
    world.now += timedelta(days=2)
    assert world.billing.run(NOVEMBER)["blocked"] == 0
    [invoice] = world.gateway.invoices.values()
    assert invoice.attempts == 1
    world.now += timedelta(days=1)
    assert world.billing.run(NOVEMBER)["blocked"] == 1
    assert world.store.get("RFID0001").state is SubscriberState.BLOCKED
    assert world.tags.statuses["RFID0001"] is TagStatus.BLOCKED
    [alerted] = world.alerts.blocked
    assert alerted.id_tag == "RFID0001"
    assert world.billing.run(NOVEMBER)["blocked"] == 0 and len(world.alerts.blocked) == 1  # paged once


def test_with_no_grace_the_failure_blocks_at_once(world):
    world.grace = timedelta(0)
    world.gateway.declining_cards.add("pm_declines")
    world.active_subscriber(card="pm_declines")
    outcomes = world.billing.run(NOVEMBER)
    assert outcomes["failed"] == 1
    assert world.store.get("RFID0001").state is SubscriberState.BLOCKED
    assert world.tags.statuses["RFID0001"] is TagStatus.BLOCKED and len(world.alerts.blocked) == 1


def test_paying_later_unblocks_through_the_webhook_or_an_operator_retry(world):
    world.grace = timedelta(0)
    world.gateway.declining_cards.add("pm_declines")
    subscriber = world.active_subscriber(card="pm_declines")
    world.billing.run(NOVEMBER)
    [invoice_id] = world.gateway.invoices
    # The driver pays on Stripe's invoice page; invoice.paid arrives.
    world.gateway.paid_elsewhere(invoice_id)
    assert world.billing.invoice_changed("RFID0001", "2026-11", invoice_id) is InvoiceState.PAID
    assert world.store.get("RFID0001").state is SubscriberState.ACTIVE
    assert world.tags.statuses["RFID0001"] is TagStatus.ACCEPTED
    # A late invoice.payment_failed for the same invoice does not undo the payment.
    assert world.billing.invoice_changed("RFID0001", "2026-11", invoice_id) is InvoiceState.PAID
    assert world.store.invoice_run("RFID0001", "2026-11").state is InvoiceState.PAID
    # Or the card is replaced and the operator re-runs the month.
    world2 = SubscriptionWorld(grace=timedelta(0))
    world2.gateway.declining_cards.add("pm_declines")
    world2.active_subscriber(card="pm_declines")
    world2.billing.run(NOVEMBER)
    world2.gateway.set_default_card(subscriber.customer_id, "pm_visa")
    assert world2.billing.run(NOVEMBER, retry_failed=True)["paid"] == 1
    assert world2.store.get("RFID0001").state is SubscriberState.ACTIVE


def test_an_invoice_event_for_someone_elses_invoice_is_ignored(world):
    world.active_subscriber()
    assert world.billing.invoice_changed("RFID0001", "2026-11", "in_other") is None


def test_one_subscribers_refused_call_does_not_stop_the_others(world):
    world.active_subscriber("RFID0001")
    world.active_subscriber("RFID0002")
    world.gateway.failures.append(PaymentProviderError("InvalidRequestError: No such customer"))
    outcomes = world.billing.run(NOVEMBER)
    assert (outcomes["error"], outcomes["paid"]) == (1, 1)


def test_stripe_down_defers_one_subscriber_and_the_next_run_resumes_the_same_invoice(world):
    world.active_subscriber()
    world.gateway.failures.append(unavailable())
    assert world.billing.run(NOVEMBER)["deferred"] == 1
    assert world.gateway.invoices == {}
    world.billing.run(NOVEMBER)
    assert [i.state for i in world.gateway.invoices.values()] == [InvoiceState.PAID]


def test_a_crash_between_invoice_and_payment_resumes_with_the_stored_invoice(world):
    world.active_subscriber()
    billing = world.billing
    original_pay = world.gateway.pay_invoice
    world.gateway.pay_invoice = lambda invoice_id: (_ for _ in ()).throw(unavailable())  # type: ignore[method-assign]
    assert billing.run(NOVEMBER)["deferred"] == 1
    world.gateway.pay_invoice = original_pay  # type: ignore[method-assign]
    world.gateway.keys.clear()  # days later: the provider forgot the idempotency keys
    assert billing.run(NOVEMBER)["paid"] == 1
    assert len(world.gateway.invoices) == 1


def webhooks(world: SubscriptionWorld) -> ProviderWebhooks:
    # No ad-hoc payments here: subscription events never reach the payment authorizations.
    return ProviderWebhooks(TrustingVerifier(), InMemoryProcessedEvents(), None, world.clock, world.billing)  # type: ignore[arg-type]


def event(event_id: str, kind: str, obj: dict) -> bytes:
    return json.dumps({"id": event_id, "type": kind, "created": 1, "data": {"object": obj}}).encode()


def test_the_setup_webhook_activates_the_subscriber(world):
    world.plan()
    world.desk.add_subscriber("d@example.test", "RFID0001", "basic", "https://return.test")
    world.gateway.save_card("cs_setup_1", "pm_visa")
    completed = {
        "id": "cs_setup_1",
        "object": "checkout.session",
        "mode": "setup",
        "metadata": {"subscriber_tag": "RFID0001"},
    }
    hooks = webhooks(world)
    assert (
        hooks.receive(event("evt_1", "checkout.session.completed", completed), "sig")
        is WebhookOutcome.HANDLED
    )
    assert (
        hooks.receive(event("evt_1", "checkout.session.completed", completed), "sig")
        is WebhookOutcome.DUPLICATE
    )
    assert world.store.get("RFID0001").state is SubscriberState.ACTIVE


def test_invoice_webhooks_settle_by_the_invoices_current_state(world):
    world.grace = timedelta(0)
    world.gateway.declining_cards.add("pm_declines")
    world.active_subscriber(card="pm_declines")
    world.billing.run(NOVEMBER)
    [invoice_id] = world.gateway.invoices
    world.gateway.paid_elsewhere(invoice_id)
    invoice = {"id": invoice_id, "object": "invoice", "metadata": {"id_tag": "RFID0001", "period": "2026-11"}}
    # A stale payment_failed delivered after the payment: the invoice is paid, the tag opens.
    outcome = webhooks(world).receive(event("evt_2", "invoice.payment_failed", invoice), "sig")
    assert outcome is WebhookOutcome.HANDLED
    assert world.tags.statuses["RFID0001"] is TagStatus.ACCEPTED


def test_invoices_not_made_by_chargenet_are_not_ours(world):
    other = {"id": "in_x", "object": "invoice", "metadata": {}}
    assert webhooks(world).receive(event("evt_3", "invoice.paid", other), "sig") is WebhookOutcome.IGNORED


def test_a_payment_failed_webhook_blocks_at_once_when_the_grace_is_zero(world):
    world.gateway.declining_cards.add("pm_declines")
    world.active_subscriber(card="pm_declines")
    world.billing.run(NOVEMBER)  # three days of grace: past due, not blocked
    assert world.store.get("RFID0001").state is SubscriberState.PAST_DUE
    world.grace = timedelta(0)
    [invoice_id] = world.gateway.invoices
    invoice = {"id": invoice_id, "object": "invoice", "metadata": {"id_tag": "RFID0001", "period": "2026-11"}}
    webhooks(world).receive(event("evt_4", "invoice.payment_failed", invoice), "sig")
    assert world.store.get("RFID0001").state is SubscriberState.BLOCKED
    assert world.tags.statuses["RFID0001"] is TagStatus.BLOCKED and len(world.alerts.blocked) == 1
