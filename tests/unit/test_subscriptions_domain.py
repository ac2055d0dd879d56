"""Subscription rules: states, grace, periods, usage and fee lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from chargenet.domain import subscriptions as rules
from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import TagStatus
from chargenet.domain.subscriptions import Plan, Subscriber, SubscriberState, SubscriptionError

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
GRACE = timedelta(days=3)


def pending() -> Subscriber:
    return Subscriber(
        id_tag="RFID0001", email="d@example.test", plan_id="basic", customer_id="cus_1", created_at=T0
    )


def active() -> Subscriber:
    return rules.card_saved(pending(), "pm_1", T0)


def test_a_pending_subscribers_tag_is_blocked_and_a_saved_card_activates_it():
    assert pending().tag_status is TagStatus.BLOCKED
    subscriber = active()
    assert subscriber.state is SubscriberState.ACTIVE and subscriber.tag_status is TagStatus.ACCEPTED
    assert subscriber.activated_at == T0 and subscriber.version == 1


def test_a_repeated_card_saved_changes_nothing_and_a_new_card_does_not_settle_a_failure():
    subscriber = active()
    assert rules.card_saved(subscriber, "pm_1", T0 + GRACE) is subscriber
    past_due = rules.payment_failed(subscriber, T0)
    assert rules.card_saved(past_due, "pm_2", T0).state is SubscriberState.PAST_DUE


def test_a_failed_invoice_is_past_due_with_the_tag_working_until_the_grace_ends():
    past_due = rules.payment_failed(active(), T0)
    assert past_due.state is SubscriberState.PAST_DUE and past_due.tag_status is TagStatus.ACCEPTED
    # The grace runs from the first failure: a second one does not restart it.
    assert rules.payment_failed(past_due, T0 + timedelta(days=1)) is past_due
    assert rules.block_if_grace_over(past_due, GRACE, T0 + GRACE - timedelta(seconds=1)) is past_due
    blocked = rules.block_if_grace_over(past_due, GRACE, T0 + GRACE)
    assert blocked.state is SubscriberState.BLOCKED and blocked.tag_status is TagStatus.BLOCKED


def test_zero_grace_blocks_at_once_and_paying_unblocks():
    blocked = rules.block_if_grace_over(rules.payment_failed(active(), T0), timedelta(0), T0)
    assert blocked.state is SubscriberState.BLOCKED
    again = rules.paid(blocked)
    assert again.state is SubscriberState.ACTIVE and again.past_due_since is None and again.blocked_at is None
    assert rules.paid(again) is again


def test_only_past_due_subscribers_are_blocked():
    assert rules.block_if_grace_over(active(), timedelta(0), T0 + GRACE).state is SubscriberState.ACTIVE
    assert rules.block_if_grace_over(pending(), timedelta(0), T0 + GRACE).state is SubscriberState.PENDING


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("2026-11", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_periods_are_utc_calendar_months(name: str, start: datetime, end: datetime):
    billed = rules.period(name)
    assert (billed.start, billed.end) == (start, end)


@pytest.mark.parametrize("name", ["2026-13", "2026-1", "26-11", "november"])
def test_a_bad_period_is_refused(name: str):
    with pytest.raises(SubscriptionError):
        rules.period(name)


def test_the_scheduled_run_invoices_the_month_that_ended():
    assert rules.previous_period(datetime(2026, 12, 1, 2, tzinfo=UTC)).name == "2026-11"
    assert rules.previous_period(datetime(2027, 1, 15, tzinfo=UTC)).name == "2026-12"


def test_a_month_is_billable_only_when_the_subscriber_was_active_before_it_ended():
    subscriber = active()  # activated 2026-11-26
    assert rules.billable(subscriber, rules.period("2026-11"))
    assert not rules.billable(subscriber, rules.period("2026-10"))
    assert not rules.billable(pending(), rules.period("2026-12"))


def test_a_plan_has_an_exact_non_negative_fee_in_a_known_currency():
    plan = Plan(plan_id="basic", monthly_fee="9.00", currency="EUR", tariff_id="member")
    assert plan.monthly_fee == Decimal("9.00")
    for fee, currency in (("9.001", "EUR"), ("-1", "EUR"), ("9", "XXX")):
        with pytest.raises((ValidationError, ValueError)):
            Plan(plan_id="p", monthly_fee=fee, currency=currency, tariff_id="t")
    with pytest.raises(ValidationError):
        Plan(plan_id="p", monthly_fee=9.0, currency="EUR", tariff_id="t")  # floats never


def test_a_cdr_becomes_a_usage_line_keyed_by_its_id():
    record = BillingRecord(
        cdr_id="CDR-7",
        session_id="42",
        charger_id="CP-1",
        connector_id=1,
        start_date_time=datetime(2026, 11, 3, 21, 30, tzinfo=UTC),
        end_date_time=datetime(2026, 11, 4, 0, 45, tzinfo=UTC),
        currency="EUR",
        total_excl_vat=Decimal("12.26"),
        total_incl_vat=Decimal("15.34"),
        energy_wh=27500,
        ocpi={},
    )
    line = rules.usage_line(record, "RFID0001")
    assert line.amount_minor == 1534 and line.currency == "EUR"
    assert line.idempotency_key == "usage-CDR-7"
    assert line.description == "Charging session 42: 27.500 kWh, 2026-11-03 21:30 - 2026-11-04 00:45 UTC"
    assert line.metadata == {"cdr_id": "CDR-7", "session_id": "42", "id_tag": "RFID0001"}


def test_a_usage_line_shows_the_sites_wall_clock_the_cdr_was_priced_on():
    record = BillingRecord(
        cdr_id="CDR-8",
        session_id="43",
        charger_id="CP-1",
        connector_id=1,
        start_date_time=datetime(2026, 10, 24, 21, 30, tzinfo=UTC),
        end_date_time=datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # across the autumn DST change
        currency="EUR",
        total_excl_vat=Decimal("10.00"),
        total_incl_vat=Decimal("12.50"),
        energy_wh=40000,
        ocpi={"cdr_location": {"id": "CP-1", "time_zone": "Europe/Stockholm"}},
    )
    assert rules.usage_line(record, "RFID0001").description == (
        "Charging session 43: 40.000 kWh, 2026-10-24 23:30 - 2026-10-25 02:30 Europe/Stockholm"
    )


def test_the_fee_line_and_the_invoice_are_keyed_by_subscriber_and_period():
    plan = Plan(plan_id="basic", monthly_fee="9.00", currency="EUR", tariff_id="member")
    billed = rules.period("2026-11")
    fee = rules.fee_line(active(), plan, billed)
    assert (fee.amount_minor, fee.idempotency_key) == (900, "fee-RFID0001-2026-11")
    assert rules.invoice_key(active(), billed) == "invoice-RFID0001-2026-11"
