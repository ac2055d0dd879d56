"""The payment services on in-memory fakes: checkout, start, settle, retry, cap, sweep, driver pages."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import SessionRecord, TagStatus
from chargenet.domain.payments import (
    Availability,
    CheckoutMethod,
    HoldGone,
    IntentFacts,
    InvalidTransition,
    PaymentConfig,
    PaymentDeclined,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentState,
    Reason,
)
from chargenet.domain.sessions import EventKind, SessionEvent
from chargenet.services.commands import request_id
from chargenet.services.payments import CaptureOutcome, CheckoutRefused, StopOutcome
from tests.payment_fakes import T0, PaymentWorld

S = PaymentState
BASE = "https://pay.example"


@pytest.fixture
def world() -> PaymentWorld:
    world = PaymentWorld()
    world.add_charger()
    return world


def open_checkout(world: PaymentWorld, method: CheckoutMethod = CheckoutMethod.CARD) -> str:
    world.desk.open_checkout("CP-1", 1, method, BASE)
    return world.payments.only().payment_id


def paid(world: PaymentWorld, method: CheckoutMethod = CheckoutMethod.CARD) -> str:
    """Checkout completed and its webhook handled: the charger was asked to start."""
    payment_id = open_checkout(world, method)
    intent_id = world.gateway.pay(world.gateway.requests[-1], prepay=method is CheckoutMethod.SWISH)
    world.authorizations.money_secured(payment_id, intent_id, world.clock())
    return payment_id


def start_session(world: PaymentWorld, payment_id: str, session_id: str = "42") -> SessionRecord:
    payment = world.payments.get(payment_id)
    session = SessionRecord(
        session_id=session_id,
        transaction_id=int(session_id),
        charger_id="CP-1",
        connector_id=1,
        id_tag=payment.id_tag,
        tag_status=TagStatus.ACCEPTED,
        started_at=world.clock(),
        tariff_json=world.tariff_json,
    )
    world.sessions.records[session_id] = session
    world.registry.link_session("CP-1", 1, session_id, world.clock())
    return session


def meter(world: PaymentWorld, session_id: str, *readings: tuple[int, int]) -> None:
    """(minutes after the start, register Wh) readings; the start register is 0."""
    from chargenet.domain.meter_values import MeterReading

    session = world.sessions.records[session_id]
    events = [SessionEvent(kind=EventKind.START, at=session.started_at, connector_id=1, meter_start_wh=0)]
    events += [
        SessionEvent(
            kind=EventKind.METER,
            at=session.started_at + timedelta(minutes=minutes),
            reading=MeterReading(at=session.started_at + timedelta(minutes=minutes), energy_wh=Decimal(wh)),
        )
        for minutes, wh in readings
    ]
    world.sessions.event_log[session_id] = events
    world.sessions.records[session_id] = session.model_copy(update={"energy_wh": readings[-1][1]})


def bill(world: PaymentWorld, session_id: str = "42", total: str = "15.34", currency: str = "EUR") -> None:
    world.sessions.records[session_id] = world.sessions.records[session_id].model_copy(
        update={"state": "billed"}
    )
    world.cdrs.records[session_id] = BillingRecord(
        cdr_id=session_id,
        session_id=session_id,
        charger_id="CP-1",
        connector_id=1,
        start_date_time=T0,
        end_date_time=T0 + timedelta(hours=1),
        currency=currency,
        total_excl_vat=(Decimal(total) / Decimal("1.25")).quantize(Decimal("0.01")),
        total_incl_vat=Decimal(total),
        energy_wh=20000,
        ocpi={},
    )


# ------------------------------------------------------------------ pay page and checkout
def test_the_pay_page_shows_the_price_in_force_and_the_hold(world) -> None:
    page = world.desk.pay_page("CP-1", 1)
    assert page.payable and page.hold_minor == 5000 and page.methods == [CheckoutMethod.CARD]
    assert any("0.50 EUR/kWh incl. 25% VAT" in line for line in page.price_lines)
    assert any("per session" in line for line in page.price_lines)
    assert any(line.startswith("idle fee") for line in page.price_lines)


MORNING_OFFER = json.dumps(
    {
        "country_code": "SE",
        "party_id": "CGN",
        "id": "morning",
        "currency": "EUR",
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": "0.20", "vat": "25", "step_size": 1}],
                "restrictions": {"start_time": "09:30", "end_time": "12:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": "0.40", "vat": "25", "step_size": 1}]},
        ],
        "last_updated": "2026-01-01T00:00:00Z",
    }
)


@pytest.mark.parametrize(
    ("site_zone", "price_line"), [("Europe/Stockholm", "0.25 EUR/kWh"), (None, "0.50 EUR/kWh")]
)
def test_the_pay_page_shows_the_price_on_the_sites_wall_clock(site_zone, price_line) -> None:
    world = PaymentWorld(tariff_json=MORNING_OFFER)  # the clock reads 09:00 UTC, 10:00 in Stockholm
    world.registry.add("CP-1", world.clock(), site_id="SITE-SE")
    if site_zone:
        world.registry.site_zones["SITE-SE"] = site_zone
    world.set_status("CP-1", 1, "Available")
    world.registry.chargers["CP-1"] = world.registry.chargers["CP-1"].model_copy(update={"online": True})
    assert any(line.startswith(price_line) for line in world.desk.pay_page("CP-1", 1).price_lines)


@pytest.mark.parametrize(
    ("online", "status", "availability"),
    [
        (False, "Available", Availability.OFFLINE),
        (True, "Faulted", Availability.FAULTED),
        (True, "Charging", Availability.BUSY),
    ],
)
def test_an_offline_faulted_or_busy_connector_cannot_be_paid_for(online, status, availability) -> None:
    world = PaymentWorld()
    world.add_charger(online=online, status=status)
    page = world.desk.pay_page("CP-1", 1)
    assert (page.payable, page.availability) == (False, availability)
    with pytest.raises(CheckoutRefused, match=availability.value):
        world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, BASE)
    assert world.payments.payments == {} and world.gateway.requests == []


def test_no_tariff_no_sale() -> None:
    world = PaymentWorld(tariff_json=None)
    world.add_charger()
    assert not world.desk.pay_page("CP-1", 1).payable
    with pytest.raises(CheckoutRefused):
        world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, BASE)


def test_an_unknown_charger_has_no_page(world) -> None:
    assert world.desk.pay_page("CP-404", 1) is None


def test_checkout_stores_the_payment_then_opens_a_hold_checkout(world) -> None:
    started = world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, BASE)
    payment = world.payments.only()
    [request] = world.gateway.requests
    assert started.url == "https://checkout.test/cs_1"
    assert (payment.state, payment.checkout_session_id, payment.hold_minor) == (S.CHECKOUT_OPEN, "cs_1", 5000)
    assert (request.amount_minor, request.currency, request.idempotency_key) == (5000, "EUR", "checkout-pay1")
    assert request.success_url.startswith(f"{BASE}/session/token-01-")
    assert request.cancel_url == f"{BASE}/pay/CP-1/1"
    token = request.success_url.rsplit("/", 1)[1]
    assert token not in payment.model_dump_json()  # only its digest is kept


def test_a_provider_error_at_checkout_cancels_the_payment(world) -> None:
    world.gateway.create_checkout = lambda request: (_ for _ in ()).throw(PaymentProviderUnavailable("down"))
    with pytest.raises(PaymentProviderUnavailable):
        world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, BASE)
    assert (world.payments.only().state, world.payments.only().reason) == (
        S.CANCELLED,
        Reason.CHECKOUT_FAILED,
    )


# ------------------------------------------------------------------ authorization and start
def test_secured_money_starts_the_charger_with_the_payment_tag(world) -> None:
    payment_id = paid(world)
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.start_message_id, payment.payment_intent_id) == (
        S.AUTHORIZED,
        "m-1",
        "pi_pay1",
    )
    assert world.sent_frames() == [
        [2, "m-1", "RemoteStartTransaction", {"connectorId": 1, "idTag": payment.id_tag}]
    ]
    assert world.tags.tags[payment.id_tag] == (TagStatus.ACCEPTED, T0 + timedelta(minutes=2))


def test_repeated_and_reordered_notifications_start_the_charger_once(world) -> None:
    payment_id = paid(world)
    for _ in range(3):
        world.authorizations.money_secured(payment_id, "pi_pay1", world.clock())
    assert len(world.channel.sent) == 1


def test_a_concurrent_delivery_that_loses_the_authorization_sends_no_start(world) -> None:
    payment_id = open_checkout(world)
    intent_id = world.gateway.pay(world.gateway.requests[-1])
    store, real_save = world.payments, world.payments.save

    def racing_save(payment):
        store.save = real_save
        real_save(payment.model_copy(update={"start_message_id": "m-other"}))  # the other delivery wins
        return real_save(payment)

    store.save = racing_save
    assert world.authorizations.money_secured(payment_id, intent_id, T0).start_message_id == "m-other"
    assert world.channel.sent == []


def test_a_start_never_sent_times_out_and_the_hold_is_released(world) -> None:
    payment_id = open_checkout(world)
    intent_id = world.gateway.pay(world.gateway.requests[-1])
    authorized = world.authorizations.money_secured(payment_id, intent_id, T0)
    world.payments.payments[payment_id] = authorized.model_copy(update={"start_message_id": None})  # crashed
    world.clock.advance(seconds=30)
    assert world.monitor.check(world.payments.get(payment_id)).state is S.AUTHORIZED  # being sent, maybe
    world.clock.advance(minutes=2)
    payment = world.monitor.check(world.payments.get(payment_id))
    assert (payment.state, payment.reason) == (S.CANCELLED, Reason.START_TIMEOUT)


def test_an_abort_that_fails_is_retried_after_the_backoff(world) -> None:
    payment_id = paid(world)
    world.answer("m-1", "Rejected")
    world.gateway.failures = [PaymentProviderUnavailable("down")] * 3
    assert world.monitor.check(world.payments.get(payment_id)).state is S.AUTHORIZED
    assert world.monitor.check(world.payments.get(payment_id)).capture_attempts == 1  # waits for the backoff
    world.clock.advance(minutes=1)
    assert world.monitor.check(world.payments.get(payment_id)).state is S.CANCELLED


def test_an_intent_not_yet_secured_waits_for_a_later_event(world) -> None:
    payment_id = open_checkout(world)
    world.gateway.intents["pi_x"] = IntentFacts("pi_x", "requires_payment_method", "EUR", 0, 0)  # declined
    assert world.authorizations.money_secured(payment_id, "pi_x", T0).state is S.CHECKOUT_OPEN
    assert world.channel.sent == []


def test_money_that_arrives_after_the_start_window_is_given_back(world) -> None:
    payment_id = open_checkout(world)
    intent_id = world.gateway.pay(world.gateway.requests[-1])
    world.clock.advance(minutes=10)
    payment = world.authorizations.money_secured(payment_id, intent_id, T0)
    assert (payment.state, payment.reason) == (S.CANCELLED, Reason.AUTHORIZATION_LATE)
    assert world.gateway.calls == [("cancel", intent_id, 0, "cancel-pay1")]
    assert world.channel.sent == []


def test_a_refused_start_cancels_the_hold_and_blocks_the_tag(world) -> None:
    payment_id = paid(world)
    world.answer("m-1", "Rejected")
    payment = world.monitor.check(world.payments.get(payment_id))
    assert (payment.state, payment.reason) == (S.CANCELLED, Reason.CHARGER_REFUSED)
    assert world.gateway.calls == [("cancel", "pi_pay1", 0, "cancel-pay1")]
    assert world.tags.tags[payment.id_tag][0] is TagStatus.BLOCKED


def test_a_charger_that_never_starts_gets_the_hold_cancelled_after_the_timeout(world) -> None:
    payment_id = paid(world)
    world.answer("m-1", "Accepted")
    world.clock.advance(seconds=60)
    assert world.monitor.check(world.payments.get(payment_id)).state is S.AUTHORIZED
    world.clock.advance(seconds=61)
    payment = world.monitor.check(world.payments.get(payment_id))
    assert (payment.state, payment.reason) == (S.CANCELLED, Reason.START_TIMEOUT)


def test_a_swish_prepay_is_refunded_in_full_when_the_charger_never_starts() -> None:
    world = PaymentWorld(config=PaymentConfig(holds={"SEK": Decimal("500.00")}, swish=True))
    world.tariff_json = world.tariff_json.replace('"EUR"', '"SEK"')
    world.__post_init__()
    world.add_charger()
    payment_id = paid(world, CheckoutMethod.SWISH)
    world.clock.advance(minutes=3)
    payment = world.monitor.check(world.payments.get(payment_id))
    assert (payment.state, payment.refunded_minor, payment.kept_minor) == (S.REFUNDED, 50000, 0)
    assert world.gateway.calls == [("refund", "pi_pay1", 50000, "refund-pay1-1")]


def test_the_session_on_the_payment_tag_is_linked(world) -> None:
    payment_id = paid(world)
    start_session(world, payment_id)
    payment = world.monitor.check(world.payments.get(payment_id))
    assert (payment.state, payment.session_id) == (S.CHARGING, "42")


def test_another_drivers_session_on_the_connector_is_not_linked(world) -> None:
    payment_id = paid(world)
    start_session(world, payment_id)
    world.sessions.records["42"] = world.sessions.records["42"].model_copy(update={"id_tag": "SOMEONE-ELSE"})
    assert world.monitor.check(world.payments.get(payment_id)).state is S.AUTHORIZED


# ------------------------------------------------------------------ capture from the billing record
def charging(world: PaymentWorld, method: CheckoutMethod = CheckoutMethod.CARD) -> str:
    payment_id = paid(world, method)
    start_session(world, payment_id)
    world.monitor.check(world.payments.get(payment_id))
    return payment_id


def test_the_billing_record_total_incl_vat_is_captured_once(world) -> None:
    payment_id = charging(world)
    bill(world, total="15.34")
    assert world.capture.on_record("42") is CaptureOutcome.SETTLED
    assert world.capture.on_record("42") is CaptureOutcome.ALREADY_SETTLED  # stream redelivery
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.captured_minor, payment.due_minor) == (S.CAPTURED, 1534, 1534)
    assert world.gateway.calls == [("capture", "pi_pay1", 1534, "capture-pay1")]
    assert world.tags.tags[payment.id_tag][0] is TagStatus.BLOCKED


def test_a_short_session_nothing_linked_is_still_captured(world) -> None:
    payment_id = paid(world)
    start_session(world, payment_id)
    bill(world, total="3.10")
    assert world.capture.on_record("42") is CaptureOutcome.SETTLED
    assert world.payments.get(payment_id).session_id == "42"


def test_a_cost_above_the_hold_captures_the_hold(world) -> None:
    payment_id = charging(world)
    bill(world, total="72.00")
    world.capture.on_record("42")
    payment = world.payments.get(payment_id)
    assert (payment.captured_minor, payment.uncollected_minor) == (5000, 2200)


def test_a_session_below_the_minimum_is_free(world) -> None:
    payment_id = charging(world)
    bill(world, total="0.40")
    world.capture.on_record("42")
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.reason, payment.kept_minor) == (S.CANCELLED, Reason.BELOW_MINIMUM, 0)
    assert world.gateway.calls[-1] == ("cancel", "pi_pay1", 0, "cancel-pay1")


def test_records_that_are_not_payments_are_left_alone(world) -> None:
    world.sessions.records["7"] = SessionRecord(
        session_id="7",
        transaction_id=7,
        charger_id="CP-1",
        connector_id=1,
        id_tag="RFID-1",
        tag_status=TagStatus.ACCEPTED,
        started_at=T0,
    )
    bill(world, session_id="7")
    assert world.capture.on_record("7") is CaptureOutcome.NOT_A_PAYMENT
    assert world.capture.on_record("missing") is CaptureOutcome.NOT_A_PAYMENT
    credit = world.cdrs.records["7"].model_copy(update={"cdr_id": "7-CREDIT", "credit_reference_id": "7"})
    world.cdrs.records["7-CREDIT"] = credit
    assert world.capture.on_record("7-CREDIT") is CaptureOutcome.NOT_A_PAYMENT


def test_provider_outage_retries_with_the_same_key_until_it_succeeds(world) -> None:
    payment_id = charging(world)
    bill(world)
    world.gateway.failures = [PaymentProviderUnavailable("APIConnectionError")] * 3
    assert world.capture.on_record("42") is CaptureOutcome.RETRY_SCHEDULED
    assert world.pauses == [0.5, 1.5]  # quick retries inside the invocation first
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.capture_attempts) == (S.CHARGING, 1)
    assert world.monitor.check(payment).state is S.CHARGING  # backoff not over yet
    world.clock.advance(minutes=1)
    world.monitor.sweep()
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.captured_minor) == (S.CAPTURED, 1534)
    assert [key for *_, key in world.gateway.calls] == ["capture-pay1"]
    # The deferral was counted once, as it happened: the operators knew while it was retrying.
    [deferred] = world.alarm.failed_payments
    assert (deferred.payment_id, deferred.state, deferred.capture_attempts) == (payment_id, S.CHARGING, 1)
    assert deferred.failure == "APIConnectionError"


def test_a_quick_retry_that_succeeds_alarms_nobody(world) -> None:
    charging(world)
    bill(world)
    world.gateway.failures = [PaymentProviderUnavailable("APIError")] * 2
    assert world.capture.on_record("42") is CaptureOutcome.SETTLED
    assert world.alarm.failed_payments == []


def test_the_sweep_acts_on_the_stored_payment_not_on_its_older_list(world) -> None:
    payment_id = charging(world)
    listed = world.payments.get(payment_id)  # what the sweep's query returned
    bill(world)
    assert world.capture.on_record("42") is CaptureOutcome.SETTLED  # meanwhile, the capture path
    world.gateway.failures = [PaymentProviderUnavailable("APIError")]  # would be consumed by a call
    assert world.monitor.check(listed).state is S.CAPTURED
    assert world.gateway.failures != []  # nothing sent to the provider again


def test_the_sweep_respects_a_backoff_set_after_its_list_was_read(world) -> None:
    payment_id = charging(world)
    listed = world.payments.get(payment_id)
    bill(world)
    world.gateway.failures = [PaymentProviderUnavailable("APIError")] * 3
    assert world.capture.on_record("42") is CaptureOutcome.RETRY_SCHEDULED
    world.gateway.failures = [PaymentProviderUnavailable("APIError")]  # would be consumed by a call
    assert world.monitor.check(listed).capture_attempts == 1
    assert world.gateway.failures != []  # no call made before the backoff is over


def test_exhausted_retries_end_in_a_visible_failed_state_and_the_alarm(world) -> None:
    payment_id = charging(world)
    bill(world)
    world.gateway.failures = [PaymentProviderUnavailable("APIError")] * 100
    world.capture.on_record("42")
    for _ in range(10):
        world.clock.advance(minutes=30)
        world.monitor.sweep()
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.reason, payment.capture_attempts) == (S.FAILED, Reason.CAPTURE_FAILED, 6)
    # Paged at the first deferral and when it gave up; not at every retry in between.
    assert [(p.payment_id, p.state) for p in world.alarm.failed_payments] == [
        (payment_id, S.CHARGING),
        (payment_id, S.FAILED),
    ]


def test_a_refused_capture_fails_at_once(world) -> None:
    payment_id = charging(world)
    bill(world)
    world.gateway.failures = [PaymentDeclined("CardError (card_declined)")]
    assert world.capture.on_record("42") is CaptureOutcome.FAILED
    assert world.payments.get(payment_id).failure == "CardError (card_declined)"
    assert len(world.alarm.failed_payments) == 1


def test_a_capture_that_went_through_before_its_key_expired_is_recognised(world) -> None:
    payment_id = charging(world)
    bill(world)
    world.gateway.capture("pi_pay1", 1534, "capture-pay1")  # done, but our record never heard
    world.gateway.keys.clear()  # 24 h later: Stripe forgot the key and refuses the repeat
    assert world.capture.on_record("42") is CaptureOutcome.SETTLED
    assert world.payments.get(payment_id).captured_minor == 1534


def test_a_swish_session_refunds_the_difference(world) -> None:
    world = PaymentWorld(config=PaymentConfig(holds={"SEK": Decimal("500.00")}, swish=True))
    world.tariff_json = world.tariff_json.replace('"EUR"', '"SEK"')
    world.__post_init__()
    world.add_charger()
    payment_id = charging(world, CheckoutMethod.SWISH)
    bill(world, total="123.45", currency="SEK")
    world.capture.on_record("42")
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.kept_minor, payment.refunded_minor) == (S.REFUNDED, 12345, 37655)
    assert world.gateway.calls == [("refund", "pi_pay1", 37655, "refund-pay1-1")]


def test_operator_refunds_never_exceed_the_capture(world) -> None:
    payment_id = charging(world)
    bill(world)
    world.capture.on_record("42")
    assert world.settlements.refund(payment_id, 1000).kept_minor == 534
    with pytest.raises(Exception, match="1 to 534"):
        world.settlements.refund(payment_id, 535)
    assert world.settlements.refund(payment_id).kept_minor == 0
    assert [key for *_, key in world.gateway.calls][-2:] == ["refund-pay1-1", "refund-pay1-2"]


# ------------------------------------------------------------------ cost cap, hold expiry, voided sessions
def test_the_running_cost_reaching_the_cap_stops_the_session_once(world) -> None:
    payment_id = charging(world)
    # 0.50 flat + 0.40/kWh, 25 % VAT: 89 kWh cost 45.13 incl. VAT, past the 45.00 cap
    meter(world, "42", (30, 40000), (60, 80000))
    world.monitor.sweep()
    assert world.payments.get(payment_id).stop_requested_at is None
    meter(world, "42", (30, 40000), (60, 80000), (70, 89000))
    world.monitor.sweep()
    world.monitor.sweep()
    stops = [frame for frame in world.sent_frames() if frame[2] == "RemoteStopTransaction"]
    assert stops == [[2, "m-2", "RemoteStopTransaction", {"transactionId": 42}]]
    assert world.payments.get(payment_id).stop_requested_at == world.clock()


def test_a_hold_about_to_expire_is_captured_from_the_running_cost(world) -> None:
    payment_id = charging(world)
    meter(world, "42", (30, 10000))
    world.clock.advance(days=6)
    world.monitor.sweep()
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.reason, payment.captured_minor) == (S.CAPTURED, Reason.HOLD_EXPIRY, 563)
    assert any(frame[2] == "RemoteStopTransaction" for frame in world.sent_frames())


def test_a_voided_session_releases_the_hold(world) -> None:
    payment_id = charging(world)
    world.sessions.records["42"] = world.sessions.records["42"].model_copy(update={"state": "voided"})
    world.monitor.sweep()
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.reason) == (S.CANCELLED, Reason.SESSION_VOIDED)


def test_the_sweep_settles_a_billing_record_the_stream_missed(world) -> None:
    payment_id = charging(world)
    bill(world)
    world.monitor.sweep()
    assert world.payments.get(payment_id).state is S.CAPTURED


def test_a_checkout_whose_webhook_never_came_is_resolved_by_asking_stripe(world) -> None:
    payment_id = open_checkout(world)
    intent_id = world.gateway.pay(world.gateway.requests[-1])
    world.gateway.checkouts["cs_1"] = world.gateway.checkouts["cs_1"].__class__("cs_1", "complete", intent_id)
    world.clock.advance(minutes=20)
    world.monitor.sweep()
    assert world.payments.get(payment_id).state is S.CHECKOUT_OPEN  # still within the checkout's life
    world.clock.advance(minutes=20)
    world.monitor.sweep()
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.reason) == (S.CANCELLED, Reason.AUTHORIZATION_LATE)
    assert world.channel.sent == []  # never started late


def test_an_expired_checkout_is_closed(world) -> None:
    payment_id = open_checkout(world)
    world.gateway.checkouts["cs_1"] = world.gateway.checkouts["cs_1"].__class__("cs_1", "expired", None)
    world.clock.advance(minutes=40)
    world.monitor.sweep()
    assert world.payments.get(payment_id).reason is Reason.CHECKOUT_EXPIRED


def test_a_connector_takes_a_bounded_number_of_checkouts_until_they_expire(world) -> None:
    # Anyone may open a checkout: without a bound, one client fills the table and every sweep.
    world.add_charger("CP-2")
    for _ in range(world.config.checkouts_per_connector):
        world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, BASE)
    with pytest.raises(CheckoutRefused, match="too_many_checkouts"):
        world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, BASE)
    assert len(world.payments.payments) == world.config.checkouts_per_connector  # nothing stored
    world.desk.open_checkout("CP-2", 1, CheckoutMethod.CARD, BASE)  # other connectors are not affected
    world.clock.advance(seconds=world.config.checkout_ttl.total_seconds())
    world.desk.open_checkout(
        "CP-1", 1, CheckoutMethod.CARD, BASE
    )  # the first checkout expired: its slot is free


def test_the_sweep_reads_checkouts_only_once_they_have_expired(world) -> None:
    for _ in range(world.config.checkouts_per_connector):
        world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, BASE)
    world.monitor.sweep()
    assert world.payments.listed == 0  # open checkouts are the provider's until they expire
    world.clock.advance(minutes=40)
    world.monitor.sweep()
    assert world.payments.listed == world.config.checkouts_per_connector


def test_a_checkout_never_recorded_expires_instead_of_staying_open_for_ever(world) -> None:
    payment_id = open_checkout(world)
    unrecorded = world.payments.get(payment_id).model_copy(update={"checkout_session_id": None})
    world.payments.payments[payment_id] = unrecorded  # the function stopped before recording it
    world.clock.advance(minutes=40)
    world.monitor.sweep()
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.reason) == (S.CANCELLED, Reason.CHECKOUT_EXPIRED)


def test_the_provider_cancelling_our_hold_is_a_visible_failure(world) -> None:
    payment_id = charging(world)
    world.authorizations.hold_cancelled(payment_id, "pi_pay1")
    assert world.payments.get(payment_id).reason is Reason.HOLD_LOST
    assert len(world.alarm.failed_payments) == 1


# ------------------------------------------------------------------ the driver's page and Stop
def test_the_driver_sees_only_their_session_by_token(world) -> None:
    paid(world)
    token = world.gateway.requests[-1].success_url.rsplit("/", 1)[1]
    assert world.monitor.driver_view(token).payment.state is S.AUTHORIZED
    assert world.monitor.driver_view("token-99-" + "x" * 36) is None
    assert world.monitor.stop("token-99-" + "x" * 36) is None


def test_stop_sends_remote_stop_for_the_running_session_only(world) -> None:
    payment_id = charging(world)
    token = world.gateway.requests[-1].success_url.rsplit("/", 1)[1]
    meter(world, "42", (10, 5000))
    view = world.monitor.driver_view(token)
    assert (view.session.session_id, view.running_cost) == ("42", Decimal("3.13"))
    assert world.monitor.stop(token) is StopOutcome.SENT
    assert world.sent_frames()[-1][2:] == ["RemoteStopTransaction", {"transactionId": 42}]
    world.sessions.records["42"] = world.sessions.records["42"].model_copy(update={"state": "stopped"})
    assert world.monitor.stop(token) is StopOutcome.NOT_RUNNING
    bill(world)
    world.capture.on_record("42")
    after = world.monitor.driver_view(token)
    assert (after.payment.payment_id, after.payment.state, after.record.cdr_id) == (
        payment_id,
        S.CAPTURED,
        "42",
    )


def test_provider_errors_are_one_family(world) -> None:
    assert issubclass(PaymentDeclined, PaymentProviderError)
    assert issubclass(PaymentProviderUnavailable, PaymentProviderError)


# ------------------------------------------------------------------ an operator settles a failed payment
def failed(world: PaymentWorld, total: str = "15.34") -> str:
    """A capture Stripe refused for good: the payment failed, the hold still there."""
    payment_id = charging(world)
    bill(world, total=total)
    world.gateway.failures = [PaymentProviderError("InvalidRequestError: try later")]
    assert world.capture.on_record("42") is CaptureOutcome.FAILED
    return payment_id


def test_a_failed_payment_is_settled_once_for_the_cdr_total_with_the_capture_key(world) -> None:
    payment_id = failed(world)
    settled = world.settlements.settle_failed(payment_id, world.cdrs.records["42"])
    assert (settled.state, settled.captured_minor, settled.reason) == (S.CAPTURED, 1534, Reason.SESSION_COST)
    assert world.payments.get(payment_id) == settled
    assert world.gateway.calls == [("capture", "pi_pay1", 1534, "capture-pay1")]
    with pytest.raises(InvalidTransition, match="captured, not failed"):
        world.settlements.settle_failed(payment_id, world.cdrs.records["42"])
    assert len(world.gateway.calls) == 1


def test_a_failed_payment_never_captures_more_than_the_hold_and_below_the_minimum_cancels(world) -> None:
    payment_id = failed(world, total="72.00")
    assert world.settlements.settle_failed(payment_id, world.cdrs.records["42"]).captured_minor == 5000
    below = PaymentWorld()
    below.add_charger()
    payment_id = failed(below, total="0.40")
    settled = below.settlements.settle_failed(payment_id, below.cdrs.records["42"])
    assert (settled.state, settled.reason) == (S.CANCELLED, Reason.BELOW_MINIMUM)
    assert below.gateway.calls == [("cancel", "pi_pay1", 0, "cancel-pay1")]


def test_only_a_failed_payment_is_settled_by_an_operator(world) -> None:
    payment_id = charging(world)
    bill(world)
    with pytest.raises(InvalidTransition, match="charging, not failed"):
        world.settlements.settle_failed(payment_id, world.cdrs.records["42"])
    with pytest.raises(InvalidTransition, match="charging, not failed"):
        world.settlements.release_failed(payment_id)
    assert world.gateway.calls == [] and world.payments.get(payment_id).state is S.CHARGING


def test_an_operator_releases_a_failed_payments_hold(world) -> None:
    payment_id = failed(world)
    released = world.settlements.release_failed(payment_id)
    assert (released.state, released.reason, released.kept_minor) == (
        S.CANCELLED,
        Reason.OPERATOR_RELEASE,
        0,
    )
    assert world.gateway.calls == [("cancel", "pi_pay1", 0, "cancel-pay1")]


def test_a_failed_payment_whose_hold_is_gone_is_refused_with_the_intents_state(world) -> None:
    payment_id = failed(world)
    world.gateway.intents["pi_pay1"] = IntentFacts("pi_pay1", "canceled", "EUR", 0, 0)  # expired
    with pytest.raises(HoldGone, match="intent pi_pay1 is canceled"):
        world.settlements.settle_failed(payment_id, world.cdrs.records["42"])
    assert world.gateway.calls == [] and world.payments.get(payment_id).state is S.FAILED


def test_a_hold_already_gone_can_still_be_recorded_as_released(world) -> None:
    payment_id = failed(world)
    world.gateway.intents["pi_pay1"] = IntentFacts("pi_pay1", "canceled", "EUR", 0, 0)
    world.gateway.failures = [PaymentProviderError("InvalidRequestError: already canceled")]
    released = world.settlements.release_failed(payment_id)
    assert (released.state, released.kept_minor) == (S.CANCELLED, 0)


def test_a_capture_that_reached_stripe_before_it_failed_is_recorded_not_taken_again(world) -> None:
    payment_id = failed(world)
    world.gateway.capture("pi_pay1", 1534, "capture-pay1")  # it went through; the answer was lost
    settled = world.settlements.settle_failed(payment_id, world.cdrs.records["42"])
    assert (settled.state, settled.captured_minor) == (S.CAPTURED, 1534)
    assert len(world.gateway.calls) == 1


def test_stripe_still_failing_leaves_the_payment_failed_with_the_error(world) -> None:
    payment_id = failed(world)
    before = world.payments.get(payment_id)
    world.gateway.failures = [PaymentProviderUnavailable("APIError: still down")] * 3
    with pytest.raises(PaymentProviderUnavailable):
        world.settlements.settle_failed(payment_id, world.cdrs.records["42"])
    payment = world.payments.get(payment_id)
    assert (payment.state, payment.failure) == (S.FAILED, "APIError: still down")
    assert payment.capture_attempts == before.capture_attempts + 1
    assert world.gateway.calls == []
    assert world.settlements.settle_failed(payment_id, world.cdrs.records["42"]).state is S.CAPTURED


def test_a_failed_swish_prepay_refunds_the_difference_under_the_settlement_key() -> None:
    world = PaymentWorld(config=PaymentConfig(holds={"SEK": Decimal("500.00")}, swish=True))
    world.tariff_json = world.tariff_json.replace('"EUR"', '"SEK"')
    world.__post_init__()
    world.add_charger()
    payment_id = charging(world, CheckoutMethod.SWISH)
    bill(world, total="123.45", currency="SEK")
    world.gateway.failures = [PaymentProviderError("InvalidRequestError")]
    assert world.capture.on_record("42") is CaptureOutcome.FAILED
    settled = world.settlements.settle_failed(payment_id, world.cdrs.records["42"])
    assert (settled.state, settled.kept_minor) == (S.REFUNDED, 12345)
    assert world.gateway.calls == [("refund", "pi_pay1", 37655, "refund-pay1-1")]


def test_the_running_cost_the_cap_watches_is_priced_on_the_sessions_wall_clock() -> None:
    from chargenet.services.payments import running_cost

    world = PaymentWorld(tariff_json=MORNING_OFFER)
    world.add_charger()
    session = start_session(world, paid(world))  # 09:00 UTC: 10:00 in Stockholm, in the 0.20 window
    meter(world, session.session_id, (60, 10_000))
    events = world.sessions.event_log[session.session_id]
    in_stockholm = session.model_copy(update={"time_zone": "Europe/Stockholm"})
    assert running_cost(in_stockholm, events) == (Decimal("2.50"), "EUR")  # 10 kWh x 0.20 x 1.25
    # 09:00-09:30 UTC at 0.40, 09:30-10:00 at 0.20: 5 kWh each, 3.00 excl. VAT
    assert running_cost(session, events) == (Decimal("3.75"), "EUR")


# ------------------------------------------------------------------ OCPP 2.0.1 chargers
@pytest.fixture
def world_201() -> PaymentWorld:
    world = PaymentWorld()
    world.add_charger()
    world.registry.chargers["CP-1"] = world.registry.chargers["CP-1"].model_copy(
        update={"ocpp_version": "ocpp2.0.1"}
    )
    return world


def start_transaction_201(world: PaymentWorld, payment_id: str) -> None:
    """The 2.0.1 charger's transaction on the payment's tag, by the id it chose itself."""
    session = start_session(world, payment_id)
    world.sessions.records["42"] = session.model_copy(update={"charger_transaction_id": "9f8e-0001"})


def test_secured_money_starts_a_2_0_1_charger_with_request_start_transaction(world_201) -> None:
    payment_id = paid(world_201)
    payment = world_201.payments.get(payment_id)

    [[_, message_id, action, start]] = world_201.sent_frames()
    assert (action, payment.start_message_id, message_id) == ("RequestStartTransaction", "m-1", "m-1")
    assert start == {
        "idToken": {"idToken": payment.id_tag, "type": "Central"},
        "remoteStartId": request_id(payment_id),
        "evseId": 1,
    }
    assert world_201.tags.tags[payment.id_tag] == (TagStatus.ACCEPTED, T0 + timedelta(minutes=2))


def test_a_2_0_1_charger_refusing_the_start_cancels_the_hold_as_for_1_6(world_201) -> None:
    payment_id = paid(world_201)
    world_201.answer("m-1", "Rejected")
    payment = world_201.monitor.check(world_201.payments.get(payment_id))
    assert (payment.state, payment.reason) == (S.CANCELLED, Reason.CHARGER_REFUSED)


def test_a_2_0_1_transaction_on_the_payment_tag_is_linked(world_201) -> None:
    payment_id = paid(world_201)
    world_201.answer("m-1", "Accepted")
    assert world_201.monitor.check(world_201.payments.get(payment_id)).state is S.AUTHORIZED
    start_transaction_201(world_201, payment_id)
    payment = world_201.monitor.check(world_201.payments.get(payment_id))
    assert (payment.state, payment.session_id) == (S.CHARGING, "42")


def test_the_cost_cap_stops_a_2_0_1_transaction_by_its_own_id_once(world_201) -> None:
    payment_id = paid(world_201)
    start_transaction_201(world_201, payment_id)
    world_201.monitor.check(world_201.payments.get(payment_id))
    meter(world_201, "42", (30, 40000), (60, 80000), (70, 89000))  # 45.13 incl. VAT: past the 45.00 cap
    world_201.monitor.sweep()
    world_201.monitor.sweep()

    stops = [frame for frame in world_201.sent_frames() if frame[2] != "RequestStartTransaction"]
    assert stops == [[2, "m-2", "RequestStopTransaction", {"transactionId": "9f8e-0001"}]]
    assert world_201.payments.get(payment_id).stop_requested_at == world_201.clock()


def test_the_drivers_stop_button_stops_a_2_0_1_transaction(world_201) -> None:
    payment_id = paid(world_201)
    start_transaction_201(world_201, payment_id)
    token = world_201.gateway.requests[-1].success_url.rsplit("/", 1)[1]
    assert world_201.monitor.stop(token) is StopOutcome.SENT
    assert world_201.sent_frames()[-1][2:] == ["RequestStopTransaction", {"transactionId": "9f8e-0001"}]


def test_a_1_6_transaction_on_a_charger_now_on_2_0_1_is_not_sent_a_stop_it_cannot_read(world_201) -> None:
    payment_id = paid(world_201)
    start_session(world_201, payment_id)  # started before the charger's firmware moved to 2.0.1
    token = world_201.gateway.requests[-1].success_url.rsplit("/", 1)[1]
    assert world_201.monitor.stop(token) is StopOutcome.NOT_RUNNING
    assert [frame[2] for frame in world_201.sent_frames()] == ["RequestStartTransaction"]
