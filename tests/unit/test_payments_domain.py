"""The payment rules: the state machine, holds and captures, minimums, the cost cap, Swish, refunds."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from chargenet.domain import payments as p
from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import Charger, ConnectorStatus
from chargenet.domain.payments import (
    Availability,
    CheckoutMethod,
    IntentFacts,
    MoneyAction,
    PaymentConfig,
    PaymentState,
    Reason,
    Settlement,
    StartProgress,
)
from tests.payment_fakes import T0

S = PaymentState
CONFIG = PaymentConfig(
    holds={"EUR": Decimal("50.00"), "SEK": Decimal("500.00"), "USD": Decimal("50.00")}, swish=True
)


def payment(method: CheckoutMethod = CheckoutMethod.CARD, currency: str = "EUR") -> p.Payment:
    return p.new_payment(
        CONFIG,
        payment_id="pay1",
        token="secret-token",
        id_tag="PAY0000000000000001",
        charger_id="CP-1",
        connector_id=1,
        currency=currency,
        method=method,
        now=T0,
    )


def authorized(method: CheckoutMethod = CheckoutMethod.CARD, currency: str = "EUR") -> p.Payment:
    new = payment(method, currency)
    hold = new.hold_minor
    prepay = method is CheckoutMethod.SWISH
    intent = IntentFacts(
        "pi_1",
        "succeeded" if prepay else "requires_capture",
        currency,
        0 if prepay else hold,
        hold if prepay else 0,
    )
    return p.authorize(new, intent, T0)


def charging(method: CheckoutMethod = CheckoutMethod.CARD, currency: str = "EUR") -> p.Payment:
    return p.link_session(authorized(method, currency), "42", T0)


# ------------------------------------------------------------------ configuration
def test_config_from_environment() -> None:
    config = p.load_config(
        {
            "PAYMENT_HOLDS": "EUR=50.00, SEK=500",
            "PAYMENT_METHODS": "card,link,swish",
            "PAYMENT_CAP_MARGIN_PERCENT": "15",
            "PAYMENT_START_TIMEOUT_S": "90",
        }
    )
    assert config.holds == {"EUR": Decimal("50.00"), "SEK": Decimal("500")}
    assert (config.hold_methods, config.swish) == (("card", "link"), True)
    assert (config.cap_margin_percent, config.start_timeout) == (Decimal(15), timedelta(seconds=90))
    assert config.hold_minor("SEK") == 50000
    assert config.methods_for("SEK") == [CheckoutMethod.CARD, CheckoutMethod.SWISH]
    assert config.methods_for("EUR") == [CheckoutMethod.CARD]  # Swish is SEK only
    assert config.methods_for("USD") == []  # no hold configured: not sold


@pytest.mark.parametrize(
    ("holds", "methods", "message"),
    [
        ({"GBP": Decimal("50")}, ("card",), "no known minimum"),
        ({"EUR": Decimal("0.49")}, ("card",), "at least 0.50"),
        ({"EUR": Decimal("10.005")}, ("card",), "whole minor units"),
        ({"EUR": Decimal("50")}, ("swish",), "hold methods"),
        ({"EUR": Decimal("50")}, (), "hold methods"),
    ],
)
def test_config_refuses_what_cannot_work(holds, methods, message) -> None:
    with pytest.raises(p.PaymentError, match=message):
        PaymentConfig(holds=holds, hold_methods=methods)


def test_a_method_or_currency_not_offered_is_refused() -> None:
    with pytest.raises(p.PaymentError, match="not offered"):
        payment(CheckoutMethod.SWISH, "EUR")


# ------------------------------------------------------------------ the state machine
ALL_STATES = list(PaymentState)


@pytest.mark.parametrize("source", ALL_STATES)
@pytest.mark.parametrize("target", ALL_STATES)
def test_every_transition_is_allowed_or_refused_by_the_table(source, target) -> None:
    record = payment().model_copy(update={"state": source})
    if target in p.TRANSITIONS[source]:
        moved = p.transition(record, target, T0 + timedelta(seconds=1))
        assert (moved.state, moved.version, moved.updated_at) == (target, 1, T0 + timedelta(seconds=1))
    else:
        with pytest.raises(p.InvalidTransition):
            p.transition(record, target, T0)


def test_the_table_has_the_lifecycle_and_final_states() -> None:
    assert p.TRANSITIONS[S.CHECKOUT_OPEN] == {S.AUTHORIZED, S.CANCELLED}
    assert S.CHARGING in p.TRANSITIONS[S.AUTHORIZED]
    assert {S.CAPTURED, S.CANCELLED, S.REFUNDED, S.FAILED} <= p.TRANSITIONS[S.CHARGING]
    assert p.TRANSITIONS[S.CANCELLED] == frozenset()
    assert p.TRANSITIONS[S.CAPTURED] == {S.REFUNDED}


# ------------------------------------------------------------------ authorization
def test_a_card_hold_is_authorized_when_the_intent_awaits_capture() -> None:
    record = authorized()
    assert (record.state, record.payment_intent_id, record.hold_minor, record.captured_minor) == (
        S.AUTHORIZED,
        "pi_1",
        5000,
        0,
    )


def test_a_hold_is_never_counted_above_what_was_asked() -> None:
    intent = IntentFacts("pi_1", "requires_capture", "EUR", 999_999, 0)
    assert p.authorize(payment(), intent, T0).hold_minor == 5000


@pytest.mark.parametrize(
    "intent",
    [
        IntentFacts("pi_1", "requires_payment_method", "EUR", 0, 0),  # declined
        IntentFacts("pi_1", "processing", "EUR", 0, 0),
        IntentFacts("pi_1", "canceled", "EUR", 0, 0),
        IntentFacts("pi_1", "requires_capture", "SEK", 5000, 0),  # another currency
        IntentFacts("pi_1", "succeeded", "EUR", 0, 5000),  # a hold payment must not be captured already
    ],
)
def test_no_authorization_without_secured_money(intent) -> None:
    with pytest.raises(p.NotAuthorized):
        p.authorize(payment(), intent, T0)


def test_swish_is_authorized_once_the_prepayment_arrived() -> None:
    record = authorized(CheckoutMethod.SWISH, "SEK")
    assert (record.settlement, record.captured_minor, record.hold_minor) == (Settlement.PREPAY, 50000, 50000)
    with pytest.raises(p.NotAuthorized):
        p.authorize(payment(CheckoutMethod.SWISH, "SEK"), IntentFacts("pi", "processing", "SEK", 0, 0), T0)


def test_authorization_after_the_start_window_is_late() -> None:
    assert not p.authorization_late(T0, T0 + CONFIG.start_timeout, CONFIG)
    assert p.authorization_late(T0, T0 + CONFIG.start_timeout + timedelta(seconds=1), CONFIG)
    assert p.authorization_late(None, T0, CONFIG)  # found by polling: time unknown


# ------------------------------------------------------------------ starting
def sent() -> p.Payment:
    return p.start_sent(authorized(), "m-1", T0)


@pytest.mark.parametrize(
    ("answer", "session", "after", "progress"),
    [
        (None, None, timedelta(seconds=30), StartProgress.WAITING),
        ({"result": {"status": "Accepted"}}, None, timedelta(seconds=30), StartProgress.WAITING),
        ({"result": {"status": "Accepted"}}, "42", timedelta(seconds=30), StartProgress.STARTED),
        ({"result": {"status": "Rejected"}}, None, timedelta(seconds=5), StartProgress.REFUSED),
        ({"error": {"code": "InternalError"}}, None, timedelta(seconds=5), StartProgress.REFUSED),
        (None, None, timedelta(minutes=2), StartProgress.TIMED_OUT),
        ({"result": {"status": "Accepted"}}, None, timedelta(minutes=3), StartProgress.TIMED_OUT),
        (None, "42", timedelta(minutes=3), StartProgress.STARTED),  # a late start still counts
    ],
)
def test_start_progress(answer, session, after, progress) -> None:
    assert p.start_progress(sent(), answer, session, T0 + after, CONFIG) is progress


def test_the_start_can_be_sent_only_once_authorized() -> None:
    with pytest.raises(p.InvalidTransition):
        p.start_sent(payment(), "m-1", T0)


def test_linking_the_session_starts_charging_once() -> None:
    record = charging()
    assert (record.state, record.session_id) == (S.CHARGING, "42")
    assert p.link_session(record, "42", T0) is record
    with pytest.raises(p.PaymentError, match="already pays"):
        p.link_session(record, "43", T0)


# ------------------------------------------------------------------ settling a hold
def test_the_capture_is_the_total_incl_vat_in_minor_units_with_the_session_key() -> None:
    plan = p.plan_settlement(charging(), Decimal("15.34"), "EUR", Reason.SESSION_COST)
    assert plan.call == p.MoneyCall(MoneyAction.CAPTURE, 1534, "capture-pay1")
    assert (plan.state, plan.due_minor, plan.take_minor, plan.uncollected_minor) == (
        S.CAPTURED,
        1534,
        1534,
        0,
    )
    record = p.settled(charging(), plan, T0)
    assert (record.state, record.captured_minor, record.kept_minor, record.due_minor) == (
        S.CAPTURED,
        1534,
        1534,
        1534,
    )


def test_the_capture_never_exceeds_the_hold() -> None:
    plan = p.plan_settlement(charging(), Decimal("61.20"), "EUR", Reason.SESSION_COST)
    assert (plan.call.amount_minor, plan.uncollected_minor) == (5000, 1120)


@pytest.mark.parametrize(
    ("currency", "below", "minimum"),
    [("SEK", "2.99", "3.00"), ("EUR", "0.49", "0.50"), ("USD", "0.49", "0.50")],
)
def test_below_the_minimum_charge_the_hold_is_cancelled(currency, below, minimum) -> None:
    plan = p.plan_settlement(charging(currency=currency), Decimal(below), currency, Reason.SESSION_COST)
    assert plan.call == p.MoneyCall(MoneyAction.CANCEL, 0, "cancel-pay1")
    assert (plan.state, plan.reason, plan.take_minor) == (S.CANCELLED, Reason.BELOW_MINIMUM, 0)
    at_minimum = p.plan_settlement(
        charging(currency=currency), Decimal(minimum), currency, Reason.SESSION_COST
    )
    assert at_minimum.call.action is MoneyAction.CAPTURE


def test_a_free_session_cancels_the_hold() -> None:
    plan = p.plan_settlement(charging(), Decimal("0.00"), "EUR", Reason.SESSION_COST)
    assert plan.call.action is MoneyAction.CANCEL
    assert p.settled(charging(), plan, T0).state is S.CANCELLED


def test_the_cost_is_rounded_by_the_money_rule() -> None:
    plan = p.plan_settlement(charging(), Decimal("1.005"), "EUR", Reason.SESSION_COST)
    assert plan.call.amount_minor == 101  # half-up


def test_a_cost_in_another_currency_is_refused() -> None:
    with pytest.raises(p.PaymentError, match="SEK"):
        p.plan_settlement(charging(), Decimal(10), "SEK", Reason.SESSION_COST)


@pytest.mark.parametrize("state", [S.CHECKOUT_OPEN, S.CAPTURED, S.CANCELLED, S.REFUNDED])
def test_only_a_secured_payment_is_settled(state) -> None:
    with pytest.raises(p.InvalidTransition):
        p.plan_settlement(
            charging().model_copy(update={"state": state}), Decimal(5), "EUR", Reason.SESSION_COST
        )


def test_aborting_a_hold_cancels_it() -> None:
    plan = p.plan_abort(authorized(), Reason.START_TIMEOUT)
    assert (plan.call, plan.state, plan.reason) == (
        p.MoneyCall(MoneyAction.CANCEL, 0, "cancel-pay1"),
        S.CANCELLED,
        Reason.START_TIMEOUT,
    )


# ------------------------------------------------------------------ Swish prepay
def test_swish_refunds_the_prepayment_minus_the_total() -> None:
    record = charging(CheckoutMethod.SWISH, "SEK")
    plan = p.plan_settlement(record, Decimal("123.45"), "SEK", Reason.SESSION_COST)
    assert plan.call == p.MoneyCall(MoneyAction.REFUND, 50000 - 12345, "refund-pay1-1")
    settled = p.settled(record, plan, T0)
    assert (settled.state, settled.captured_minor, settled.refunded_minor, settled.kept_minor) == (
        S.REFUNDED,
        50000,
        37655,
        12345,
    )
    assert settled.refund_count == 1


def test_swish_costing_the_whole_prepayment_needs_no_call() -> None:
    plan = p.plan_settlement(
        charging(CheckoutMethod.SWISH, "SEK"), Decimal("612.00"), "SEK", Reason.SESSION_COST
    )
    assert (plan.call, plan.state, plan.take_minor, plan.uncollected_minor) == (
        None,
        S.CAPTURED,
        50000,
        11200,
    )


def test_swish_below_the_minimum_or_never_started_is_refunded_in_full() -> None:
    below = p.plan_settlement(
        charging(CheckoutMethod.SWISH, "SEK"), Decimal("2.50"), "SEK", Reason.SESSION_COST
    )
    aborted = p.plan_abort(authorized(CheckoutMethod.SWISH, "SEK"), Reason.CHARGER_REFUSED)
    for plan in (below, aborted):
        assert plan.call == p.MoneyCall(MoneyAction.REFUND, 50000, "refund-pay1-1")
        assert plan.state is S.REFUNDED


# ------------------------------------------------------------------ refunds
def captured(amount: str = "15.34") -> p.Payment:
    return p.settled(
        charging(), p.plan_settlement(charging(), Decimal(amount), "EUR", Reason.SESSION_COST), T0
    )


def test_partial_refunds_each_get_their_own_key_and_never_exceed_the_capture() -> None:
    first = p.plan_refund(captured(), 500)
    assert first == p.MoneyCall(MoneyAction.REFUND, 500, "refund-pay1-1")
    after_first = p.refunded(captured(), first, T0)
    second = p.plan_refund(after_first)  # the rest
    assert second == p.MoneyCall(MoneyAction.REFUND, 1034, "refund-pay1-2")
    after_all = p.refunded(after_first, second, T0)
    assert (after_all.state, after_all.kept_minor) == (S.REFUNDED, 0)
    with pytest.raises(p.RefundRefused):
        p.plan_refund(after_all, 1)


@pytest.mark.parametrize("amount", [0, -1, 1535])
def test_a_refund_outside_what_was_kept_is_refused(amount) -> None:
    with pytest.raises(p.RefundRefused, match="1 to 1534"):
        p.plan_refund(captured(), amount)


def test_nothing_to_refund_before_the_money_was_taken() -> None:
    with pytest.raises(p.RefundRefused):
        p.plan_refund(charging(), 100)


def test_a_swish_refund_counts_after_the_settlement_refund() -> None:
    record = charging(CheckoutMethod.SWISH, "SEK")
    settled = p.settled(record, p.plan_settlement(record, Decimal("100.00"), "SEK", Reason.SESSION_COST), T0)
    assert p.plan_refund(settled) == p.MoneyCall(MoneyAction.REFUND, 10000, "refund-pay1-2")


# ------------------------------------------------------------------ failures and retries
def test_a_transient_failure_schedules_a_retry_with_growing_backoff() -> None:
    record = charging()
    delays = []
    for _ in range(CONFIG.capture_max_attempts - 1):
        record = p.settlement_failed(record, "APIConnectionError", transient=True, now=T0, config=CONFIG)
        delays.append(record.next_attempt_at - T0)
        assert record.state is S.CHARGING
    assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16)]
    failed = p.settlement_failed(record, "APIConnectionError", transient=True, now=T0, config=CONFIG)
    assert (failed.state, failed.reason, failed.capture_attempts) == (S.FAILED, Reason.CAPTURE_FAILED, 6)


def test_a_permanent_failure_fails_at_once() -> None:
    failed = p.settlement_failed(charging(), "InvalidRequestError", transient=False, now=T0, config=CONFIG)
    assert (failed.state, failed.failure) == (S.FAILED, "InvalidRequestError")


def test_a_lost_hold_is_a_failure() -> None:
    assert p.hold_lost(charging(), T0).reason is Reason.HOLD_LOST
    with pytest.raises(p.InvalidTransition):
        p.hold_lost(captured(), T0)


def test_an_abandoned_checkout_is_cancelled() -> None:
    assert p.checkout_ended(payment(), Reason.CHECKOUT_EXPIRED, T0).state is S.CANCELLED
    with pytest.raises(p.InvalidTransition):
        p.checkout_ended(captured(), Reason.CHECKOUT_EXPIRED, T0)


# ------------------------------------------------------------------ cost cap and hold expiry
def test_the_cap_is_the_hold_minus_the_margin() -> None:
    assert p.cap_minor(charging(), CONFIG) == 4500  # 50.00 - 10 %
    assert not p.cap_reached(charging(), Decimal("44.99"), CONFIG)
    assert p.cap_reached(charging(), Decimal("45.00"), CONFIG)


def test_the_margin_is_rounded_by_the_money_rule() -> None:
    config = PaymentConfig(holds={"EUR": Decimal("0.55")}, cap_margin_percent=Decimal(10))
    record = charging().model_copy(update={"hold_minor": 55})
    assert p.cap_minor(record, config) == 49  # margin 0.055 -> 0.06


def test_a_card_hold_expires_a_prepay_does_not() -> None:
    assert not p.hold_expiring(charging(), T0 + timedelta(days=5, hours=23), CONFIG)
    assert p.hold_expiring(charging(), T0 + timedelta(days=6), CONFIG)
    assert not p.hold_expiring(charging(CheckoutMethod.SWISH, "SEK"), T0 + timedelta(days=30), CONFIG)


# ------------------------------------------------------------------ tokens, tags, checkout request
def test_the_driver_token_is_random_and_stored_only_as_a_digest() -> None:
    tokens = {p.new_driver_token() for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 43 for t in tokens)
    assert payment().token_digest == p.token_digest("secret-token") != "secret-token"


def test_payment_tags_fit_an_ocpp_id_tag() -> None:
    tag = p.new_payment_tag()
    assert len(tag) <= 20 and p.is_payment_tag(tag)
    assert not p.is_payment_tag("RFID-0001")


def test_the_checkout_asks_for_a_hold_or_a_prepayment() -> None:
    card = p.checkout_request(payment(), CONFIG, success_url="s", cancel_url="c", now=T0)
    assert (card.amount_minor, card.method_types, card.settlement) == (
        5000,
        ("card", "link"),
        Settlement.HOLD,
    )
    assert (card.idempotency_key, card.expires_at) == ("checkout-pay1", T0 + timedelta(minutes=31))
    swish = p.checkout_request(
        payment(CheckoutMethod.SWISH, "SEK"), CONFIG, success_url="s", cancel_url="c", now=T0
    )
    assert (swish.method_types, swish.settlement, swish.amount_minor) == (
        ("swish",),
        Settlement.PREPAY,
        50000,
    )


# ------------------------------------------------------------------ availability
def charger(online: bool = True) -> Charger:
    return Charger(charger_id="CP-1", registered_at=T0, online=online)


def status(connector_id: int, value: str) -> ConnectorStatus:
    return ConnectorStatus(
        charger_id="CP-1",
        connector_id=connector_id,
        status=value,
        error_code="NoError",
        status_at=T0,
        received_at=T0,
    )


@pytest.mark.parametrize(
    ("online", "statuses", "expected"),
    [
        (True, [status(1, "Available")], Availability.AVAILABLE),
        (True, [status(1, "Preparing")], Availability.AVAILABLE),  # plugged in, waiting to be paid
        (False, [status(1, "Available")], Availability.OFFLINE),
        (True, [status(1, "Faulted")], Availability.FAULTED),
        (True, [status(1, "Unavailable")], Availability.FAULTED),
        (True, [status(0, "Faulted"), status(1, "Available")], Availability.FAULTED),
        (True, [status(1, "Charging")], Availability.BUSY),
        (True, [status(1, "SuspendedEV")], Availability.BUSY),
        (True, [status(1, "Finishing")], Availability.BUSY),
        (True, [status(1, "Reserved")], Availability.BUSY),
        (True, [status(2, "Available")], Availability.UNKNOWN),
        # 2.0.1: Occupied is plugged in without a transaction; in one, the transaction's
        # chargingState is the connector's status, whichever it is.
        (True, [status(1, "Occupied")], Availability.AVAILABLE),
        (True, [status(1, "EVConnected")], Availability.BUSY),
        (True, [status(1, "Idle")], Availability.BUSY),
        (True, [status(1, "SuspendedEVSE")], Availability.BUSY),
        (True, [status(0, "Unavailable"), status(1, "Occupied")], Availability.FAULTED),
    ],
)
def test_connector_availability(online, statuses, expected) -> None:
    assert p.connector_availability(charger(online), statuses, 1) is expected


# ------------------------------------------------------------------ receipt
def test_receipt_lines_add_up_to_the_record_total() -> None:
    ocpi = {
        "total_fixed_cost": {"excl_vat": "0.50", "incl_vat": "0.63"},
        "total_energy": "27.5",
        "total_energy_cost": {"excl_vat": "7.26", "incl_vat": "9.08"},
        "total_time": "3.25",
        "total_time_cost": {"excl_vat": "0.00", "incl_vat": "0.00"},
        "total_parking_time": "0.75",
        "total_parking_cost": {"excl_vat": "4.50", "incl_vat": "5.63"},
    }
    record = BillingRecord(
        cdr_id="42",
        session_id="42",
        charger_id="CP-1",
        connector_id=1,
        start_date_time=T0,
        end_date_time=T0,
        currency="EUR",
        total_excl_vat=Decimal("12.26"),
        total_incl_vat=Decimal("15.34"),
        energy_wh=27500,
        ocpi=ocpi,
    )
    lines = p.receipt_lines(record)
    assert [(line.label, line.volume) for line in lines] == [
        ("Start fee", ""),
        ("Energy", "27.5 kWh"),
        ("Idle fee", "0.75 h"),
    ]
    assert sum(line.incl_vat for line in lines) == record.total_incl_vat
    assert sum(line.excl_vat for line in lines) == record.total_excl_vat
