from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargenet.domain.billing import session_profile
from chargenet.domain.meter_values import MeterReading, parse_meter_values
from chargenet.domain.sessions import EventKind, SessionEvent, SessionState, fold
from chargenet.domain.tariffs import load_tariff, price_session

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def start(meter=100_000, previous=None, minutes=0):
    return SessionEvent(
        kind=EventKind.START,
        at=at(minutes),
        connector_id=1,
        id_tag="TAG1",
        meter_start_wh=meter,
        previous_register_wh=previous,
    )


def meter(minutes, wh=None, power_w=None, current_a=None):
    reading = MeterReading(
        at=at(minutes),
        energy_wh=None if wh is None else Decimal(wh),
        power_w=None if power_w is None else Decimal(power_w),
        current_a=None if current_a is None else Decimal(current_a),
    )
    return SessionEvent(kind=EventKind.METER, at=at(minutes), reading=reading)


def status(minutes, name):
    return SessionEvent(kind=EventKind.STATUS, at=at(minutes), status=name)


def stop(minutes, wh, reason="EVDisconnected"):
    return SessionEvent(kind=EventKind.STOP, at=at(minutes), meter_stop_wh=wh, stop_reason=reason)


def typical_session():
    """11 kW for 60 minutes, then 30 minutes plugged in and full, then unplugged."""
    return [
        start(),
        status(0, "Charging"),
        *[meter(m, 100_000 + m * 11_000 // 60, power_w=11_000, current_a=16) for m in range(1, 61)],
        status(60, "SuspendedEV"),
        meter(75, 111_000, power_w=0),
        stop(90, 111_000),
        status(90, "Finishing"),
        status(92, "Available"),
    ]


def test_typical_session_facts():
    facts = fold(typical_session(), rated_power_w=Decimal(22_000))
    assert facts.state is SessionState.COMPLETED
    assert facts.energy_wh == 11_000
    assert facts.charging_seconds == 60 * 60
    assert facts.parking_seconds == 32 * 60  # SuspendedEV 60->90, Finishing 90->92
    assert facts.peak_power_w == 11_000
    assert facts.freed_at == at(92)
    assert sum(p.energy_wh for p in facts.periods) == 11_000
    assert facts.review_reasons == []


def test_batch_without_energy_reading_resets_nothing():
    events = [
        start(),
        meter(10, 105_000),
        meter(20, power_w=7_000),
        stop(30, 110_000),
        status(31, "Available"),
    ]
    facts = fold(events)
    assert facts.energy_wh == 10_000 and facts.state is SessionState.COMPLETED


def test_stopped_but_still_plugged_is_not_complete():
    facts = fold([start(), meter(10, 101_000), stop(20, 102_000)])
    assert facts.state is SessionState.STOPPED
    assert facts.parking_seconds == 0  # the car is still there: parking runs until it leaves


def test_meter_values_after_the_stop_count_by_charger_time():
    late = meter(5, 100_500)  # queued offline, delivered after the stop
    facts = fold([start(), stop(10, 101_000), status(10, "Available"), late])
    assert facts.energy_wh == 1_000 and facts.state is SessionState.COMPLETED


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([start(100_000), meter(10, 100_500), stop(20, 90_000)], "below start register"),
        ([start(0, previous=910_000), meter(10, 500), stop(20, 1_000)], "meter reset"),
        ([start(100_000), meter(1, 200_000), stop(2, 200_000)], "exceeds the rated power"),
        ([start(100_000), meter(10, 101_000), meter(20, 100_900), stop(30, 101_500)], "went back"),
        ([start(100_000), stop(60, 105_000)], "no energy readings"),
    ],
)
def test_anomalies_go_to_review_not_to_a_bill(events, reason):
    facts = fold([*events, status(61, "Available")], rated_power_w=Decimal(22_000))
    assert facts.state is SessionState.NEEDS_REVIEW
    assert any(reason in r for r in facts.review_reasons), facts.review_reasons


def test_short_session_without_samples_is_fine():
    facts = fold([start(), stop(3, 100_200), status(3, "Available")])
    assert facts.state is SessionState.COMPLETED and facts.energy_wh == 200


def test_operator_settles_with_a_chosen_reading():
    events = [start(100_000), meter(10, 100_500), stop(20, 90_000), status(21, "Available")]
    settled = fold([*events, SessionEvent(kind=EventKind.SETTLE, at=at(30), settle_reading_wh=100_800)])
    assert (
        settled.state is SessionState.COMPLETED and settled.energy_wh == 800 and settled.review_reasons == []
    )
    voided = fold([*events, SessionEvent(kind=EventKind.SETTLE, at=at(30), void=True)])
    assert voided.state is SessionState.VOIDED and voided.energy_wh == 0


def test_power_near_zero_while_connected_is_idle_even_without_status():
    events = [start(), meter(30, 105_000), meter(60, 105_010), stop(60, 105_010), status(60, "Available")]
    facts = fold(events)
    assert facts.charging_seconds == 30 * 60 and facts.parking_seconds == 30 * 60


def test_parse_meter_values_units_and_phases():
    [reading] = parse_meter_values(
        [
            {
                "timestamp": "2026-11-26T08:00:00Z",
                "sampledValue": [
                    {"value": "12.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                    {"value": "3.7", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L1"},
                    {"value": "3.6", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L2"},
                    {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
                    {"value": "15", "measurand": "Current.Import", "unit": "A", "phase": "L2"},
                    {"value": "57", "measurand": "SoC", "unit": "Percent"},
                    {"value": "31.5", "measurand": "Temperature", "unit": "Celcius"},
                    {"value": "garbage", "measurand": "Voltage"},
                ],
            }
        ]
    )
    assert reading.energy_wh == Decimal("12500.0")
    assert reading.power_w == Decimal("7300.0")
    assert (reading.current_a, reading.soc_percent, reading.temperature_c) == (16, 57, Decimal("31.5"))


def test_parse_meter_values_default_measurand_is_energy_in_wh_and_phase_sum():
    [total, phases, none] = parse_meter_values(
        [
            {"timestamp": "2026-11-26T08:00:00Z", "sampledValue": [{"value": "1500"}]},
            {
                "timestamp": "2026-11-26T08:01:00Z",
                "sampledValue": [
                    {"value": "100", "phase": "L1"},
                    {"value": "200", "phase": "L2"},
                    {"value": "300", "phase": "L3"},
                ],
            },
            {
                "timestamp": "2026-11-26T08:02:00Z",
                "sampledValue": [{"value": "11", "measurand": "Current.Import"}],
            },
        ]
    )
    assert total.energy_wh == 1500 and phases.energy_wh == 600 and none.energy_wh is None


TARIFF = load_tariff(
    (Path(__file__).resolve().parents[2] / "docs" / "tariffs" / "example-tariff.json").read_text()
)


@settings(max_examples=60, deadline=None)
@given(st.permutations(typical_session()), st.lists(st.integers(0, 63), max_size=10))
def test_any_order_and_duplication_gives_the_same_session_and_the_same_bill(order, duplicates):
    reference = fold(typical_session(), rated_power_w=Decimal(22_000))
    shuffled = [*order, *(order[i % len(order)] for i in duplicates)]
    facts = fold(shuffled, rated_power_w=Decimal(22_000))
    assert facts == reference
    assert price_session(TARIFF, session_profile(facts, "Europe/Stockholm")) == price_session(
        TARIFF, session_profile(reference, "Europe/Stockholm")
    )


def test_parking_periods_never_carry_energy_and_the_total_is_kept():
    # The car is still drawing a trickle while SuspendedEV and after the stop.
    events = [
        start(),
        status(0, "Charging"),
        meter(30, 105_000),
        status(30, "SuspendedEV"),
        meter(60, 105_020),
        stop(60, 105_030),
        status(70, "Available"),
    ]
    facts = fold(events)
    assert all(p.energy_wh == 0 for p in facts.periods if p.parking)
    assert sum(p.energy_wh for p in facts.periods) == facts.energy_wh == 5_030
    assert facts.parking_seconds == 40 * 60


def test_idle_limit_completes_a_session_the_car_never_left():
    events = [
        start(),
        meter(30, 105_000),
        stop(40, 105_000),
        SessionEvent(kind=EventKind.IDLE_LIMIT, at=at(160)),
    ]
    facts = fold(events)
    assert facts.state is SessionState.COMPLETED and facts.freed_at == at(160)
    assert facts.parking_seconds == 130 * 60  # idle from 30 (no power drawn) to the limit at 160
    # The car leaving before the limit wins.
    left_early = fold([*events, status(100, "Available")])
    assert left_early.freed_at == at(100)


def test_the_next_session_on_the_connector_completes_a_session_whose_available_never_came():
    events = [start(), meter(30, 105_000), stop(40, 105_000)]
    facts = fold([*events, SessionEvent(kind=EventKind.NEXT_SESSION, at=at(50))])
    assert facts.state is SessionState.COMPLETED and facts.freed_at == at(50)
    assert facts.energy_wh == 5_000
    # Before its stop it frees nothing: the car was still charging then.
    assert fold([*events[:2], SessionEvent(kind=EventKind.NEXT_SESSION, at=at(50))]).state is (
        SessionState.ACTIVE
    )
    # Its own Available, earlier, wins.
    assert fold(
        [*events, SessionEvent(kind=EventKind.NEXT_SESSION, at=at(50)), status(45, "Available")]
    ).freed_at == (at(45))
