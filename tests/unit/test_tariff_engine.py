from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from chargenet.domain.tariffs import (
    CdrDimensionType,
    PricedSession,
    SessionProfile,
    Tariff,
    TariffDimensionType,
    TariffError,
    describe,
    load_tariff,
    price_display,
    price_session,
)

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "tariffs"
MONDAY_10 = "2025-03-03T10:00:00+01:00"


def fixture(name: str) -> Tariff:
    return load_tariff((FIXTURES / f"{name}.json").read_text())


def tariff(*elements, **fields) -> Tariff:
    return Tariff.model_validate(
        {
            "country_code": "NL",
            "party_id": "CNT",
            "id": "T1",
            "currency": "EUR",
            "elements": list(elements),
            "last_updated": "2025-01-01T00:00:00Z",
            **fields,
        }
    )


def element(*components, **restrictions):
    return {"price_components": list(components), "restrictions": restrictions or None}


def component(kind: str, price: str, vat: str | None = "0", step: int = 1):
    return {"type": kind, "price": price, "vat": vat, "step_size": step}


def energy(price, vat="0", step=1):
    return component("ENERGY", price, vat, step)


def charging_time(price, vat="0", step=1):
    return component("TIME", price, vat, step)


def parking_time(price, vat="0", step=1):
    return component("PARKING_TIME", price, vat, step)


def flat(price, vat="0"):
    return component("FLAT", price, vat)


def charging(minutes, kwh="0", power=None, current=None):
    return {"minutes": str(minutes), "energy_kwh": str(kwh), "power_kw": power, "current_a": current}


def parked(minutes):
    return {"minutes": str(minutes), "parking": True}


def session(start: str, *periods) -> SessionProfile:
    return SessionProfile.model_validate({"start": start, "periods": list(periods)})


def price(t: Tariff, start: str, *periods) -> PricedSession:
    return price_session(t, session(start, *periods))


def costs(priced: PricedSession) -> tuple[str, str]:
    return str(priced.total_cost.excl_vat), str(priced.total_cost.incl_vat)


# --- the SPEC section 5 examples (OCPI 2.2.1 tariff examples), exactly ---------------------------------


def test_spec_energy_025_vat_10():
    priced = price(fixture("energy_025"), MONDAY_10, charging(60, "20"))
    assert costs(priced) == ("5.00", "5.50")
    assert (str(priced.total_energy_cost.excl_vat), str(priced.total_energy_cost.incl_vat)) == (
        "5.00",
        "5.50",
    )
    assert priced.total_energy == Decimal(20)


def test_spec_energy_plus_start_fee():
    priced = price(fixture("energy_025_flat"), MONDAY_10, charging(60, "20"))
    assert costs(priced) == ("5.50", "6.10")
    assert (priced.total_fixed_cost.excl_vat, priced.total_fixed_cost.incl_vat) == (
        Decimal("0.50"),
        Decimal("0.60"),
    )


def test_spec_time_2_per_hour_step_60():
    priced = price(fixture("time_2_per_hour"), MONDAY_10, charging(150, "20"))
    assert costs(priced) == ("5.00", "5.50")
    assert priced.total_time == Decimal("2.5")


def test_spec_start_fee_energy_and_parking_step_900():
    priced = price(fixture("energy_flat_parking"), MONDAY_10, charging(60, "20"), parked(40))
    assert costs(priced) == ("7.00", "7.90")
    # 40 min of parking billed as 45 min: 1.50 excl., 1.80 incl. 20 % VAT
    assert (priced.total_parking_cost.excl_vat, priced.total_parking_cost.incl_vat) == (
        Decimal("1.50"),
        Decimal("1.80"),
    )
    assert priced.total_time == Decimal("1.666667")  # OCPI total_time: the whole session, parking included
    assert priced.total_parking_time == Decimal("0.666667")
    assert "PARKING_TIME: 2400 s billed as 2700 s (rounded up to steps of 900 s)" in priced.notes


# --- more OCPI examples: price limits, power tiers, step_size when switching elements -------------------


@pytest.mark.parametrize(("kwh", "expected"), [("50", ("10.00", "11.00")), ("30", ("8.00", "8.85"))])
def test_max_price_clamps_the_total(kwh, expected):
    priced = price(fixture("max_price"), MONDAY_10, charging(120, kwh))
    assert costs(priced) == expected
    assert priced.total_energy_cost.excl_vat == Decimal(kwh) / 4  # the lines keep what was used


@pytest.mark.parametrize(("kwh", "expected"), [("1", ("0.50", "0.55")), ("20", ("5.00", "5.50"))])
def test_min_price_raises_the_total(kwh, expected):
    assert costs(price(fixture("min_price"), MONDAY_10, charging(60, kwh))) == expected


def test_price_limits_given_excl_vat_only_apply_incl_vat_at_the_sessions_vat_ratio():
    low = tariff(element(energy("0.25", "25")), min_price={"excl_vat": "2.00"})
    priced = price(low, MONDAY_10, charging(60, "1"))
    assert costs(priced) == ("2.00", "2.50")
    assert any(note.startswith("min_price applied") for note in priced.notes)
    high = tariff(element(energy("0.25", "25")), max_price={"excl_vat": "2.00"})
    assert costs(price(high, MONDAY_10, charging(60, "40"))) == ("2.00", "2.50")


def test_power_switches_elements_mid_session():
    # OCPI max_power example: 1 kWh at 6 kW, 40 kWh at 48 kW, 0.5 kWh at 4 kW
    priced = price(
        fixture("max_power_tiers"),
        MONDAY_10,
        charging(10, "1", power="6"),
        charging(50, "40", power="48"),
        charging("7.5", "0.5", power="4"),
    )
    assert costs(priced) == ("20.30", "24.36")


def test_unknown_power_satisfies_no_power_restriction():
    priced = price(fixture("max_power_tiers"), MONDAY_10, charging(60, "10"))
    assert costs(priced) == ("5.00", "6.00")  # the unrestricted 0.50/kWh element


def test_current_switches_elements_mid_session():
    # Monday: below 32 A 1.00/h, from 32 A (inclusive: min is, max is not) 2.00/h on weekdays
    priced = price(
        fixture("complex_current_weekday"),
        "2025-03-03T12:00:00+01:00",
        charging(60, "5", current="16"),
        charging(60, "20", current="32"),
    )
    assert (priced.total_time_cost.excl_vat, priced.total_time_cost.incl_vat) == (
        Decimal("3.00"),
        Decimal("3.60"),
    )


def test_step_size_switching_elements_rounds_the_total_with_the_last_step():
    # OCPI "switching to different Tariff Element #2": 16:35, 35 min charging -> 25 min at 1.20/h,
    # then 35 min rounded up to 45 (the 17:00 element's 900 s) -> 20 min at 2.40/h
    priced = price(fixture("switching_step_size"), "2025-03-03T16:35:00+01:00", charging(35))
    assert costs(priced) == ("1.30", "1.30")


def test_step_size_switching_to_free_parking_rounds_the_charging_time():
    # OCPI "switching to Free-of-Charge Tariff Element": the parking after 20:00 is free, so TIME is
    # billed last and rounded: 10 min -> 15 min at 2.40/h
    priced = price(fixture("switching_step_size"), "2025-03-03T19:55:00+01:00", charging(10), parked(2))
    assert costs(priced) == ("0.60", "0.60")
    assert priced.total_parking_cost.excl_vat == 0


def test_charging_followed_by_paid_parking_rounds_only_the_parking():
    # SPEC: TIME and PARKING_TIME are rounded together, once; when charging is followed by parking,
    # only the parking is rounded. OCPI's own "switching #1" text bills this 0.50 (charging rounded,
    # parking absorbed) and its complex example rounds both; SPEC's rule is the one implemented.
    priced = price(fixture("switching_step_size"), "2025-03-03T16:55:00+01:00", charging(10), parked(2))
    assert (priced.total_time_cost.excl_vat, priced.total_parking_cost.excl_vat) == (
        Decimal("0.30"),
        Decimal("0.25"),
    )
    assert costs(priced) == ("0.55", "0.55")


def test_complex_ocpi_example_under_the_spec_step_rule():
    # Monday 09:30, 147 min at 16 A then 42 min parking: TIME 2.45 h unrounded (SPEC rule; OCPI's text
    # rounds it to 150 min for 8.75/10.00), parking 45 min at 5.00/h, start fee 2.50
    priced = price(
        fixture("complex_current_weekday"),
        "2025-03-03T09:30:00+01:00",
        charging(147, "30", current="16"),
        parked(42),
    )
    assert (priced.total_time_cost.excl_vat, priced.total_time_cost.incl_vat) == (
        Decimal("2.45"),
        Decimal("2.94"),
    )
    assert (priced.total_parking_cost.excl_vat, priced.total_parking_cost.incl_vat) == (
        Decimal("3.75"),
        Decimal("4.13"),
    )
    assert (priced.total_fixed_cost.excl_vat, priced.total_fixed_cost.incl_vat) == (
        Decimal("2.50"),
        Decimal("2.88"),
    )
    assert costs(priced) == ("8.70", "9.95")


# --- every restriction kind ------------------------------------------------------------------------------

DAY_NIGHT = (
    element(energy("0.20"), start_time="22:00", end_time="06:00"),
    element(energy("0.40")),
)


def test_time_window_wraps_midnight():
    # 21:00 to 07:00 at 10 kW: 1 h day, 8 h night (across midnight), 1 h day
    priced = price(tariff(*DAY_NIGHT), "2025-03-03T21:00:00+01:00", charging(600, "100"))
    assert priced.total_energy_cost.excl_vat == Decimal("24.00")  # 20 kWh x 0.40 + 80 kWh x 0.20
    starts = [p.start_date_time for p in priced.charging_periods]
    assert starts == [
        datetime(2025, 3, 3, 20, tzinfo=UTC),
        datetime(2025, 3, 3, 21, tzinfo=UTC),
        datetime(2025, 3, 4, 5, tzinfo=UTC),
    ]


def test_time_window_start_inclusive_end_exclusive():
    assert price(tariff(*DAY_NIGHT), "2025-03-03T22:00:00+01:00", charging(60, "10")).total_cost.excl_vat == 2
    assert price(tariff(*DAY_NIGHT), "2025-03-03T06:00:00+01:00", charging(60, "10")).total_cost.excl_vat == 4


def test_wall_clock_is_the_offset_of_the_session_start():
    # the same instant, 21:30 UTC: 22:30 in Amsterdam (night), 16:30 in New York (day)
    night = price(tariff(*DAY_NIGHT), "2025-03-03T22:30:00+01:00", charging(30, "10"))
    day = price(tariff(*DAY_NIGHT), "2025-03-03T16:30:00-05:00", charging(30, "10"))
    assert (night.total_cost.excl_vat, day.total_cost.excl_vat) == (Decimal("2.00"), Decimal("4.00"))


def test_start_time_only_and_end_time_only():
    evening = tariff(element(energy("0.10"), start_time="18:00"), element(energy("0.30")))
    morning = tariff(element(energy("0.10"), end_time="08:00"), element(energy("0.30")))
    # 17:00 to 19:00 and 07:00 to 09:00, 10 kWh an hour
    assert price(evening, "2025-03-03T17:00:00+00:00", charging(120, "20")).total_cost.excl_vat == 4
    assert price(morning, "2025-03-03T07:00:00+00:00", charging(120, "20")).total_cost.excl_vat == 4


def test_date_bounds_start_inclusive_end_exclusive():
    promo = tariff(
        element(energy("0.10"), start_date="2025-03-01", end_date="2025-03-02"), element(energy("0.30"))
    )
    # 28 Feb 23:00 to 2 Mar 01:00 local, 1 kWh an hour: 1 h before, 24 h in, 1 h after the promotion
    priced = price(promo, "2025-02-28T23:00:00+01:00", charging(26 * 60, "26"))
    assert priced.total_energy_cost.excl_vat == Decimal("3.00")  # 2 x 0.30 + 24 x 0.10


def test_day_of_week():
    sunday_free = tariff(element(energy("0"), day_of_week=["SUNDAY"]), element(energy("0.30")))
    # Saturday 23:00 to Sunday 01:00, 10 kWh an hour; then Sunday 23:30 to Monday 00:30
    assert price(sunday_free, "2025-03-08T23:00:00+01:00", charging(120, "20")).total_cost.excl_vat == 3
    assert price(sunday_free, "2025-03-09T23:30:00+01:00", charging(60, "10")).total_cost.excl_vat == Decimal(
        "1.50"
    )


def test_empty_day_of_week_restricts_nothing():
    assert (
        price(
            tariff(element(energy("0.30"), day_of_week=[])), MONDAY_10, charging(60, "10")
        ).total_cost.excl_vat
        == 3
    )


def test_kwh_threshold_crossed_inside_a_period_is_interpolated():
    tiers = tariff(element(energy("0.50"), max_kwh="10"), element(energy("0.30")))
    priced = price(tiers, MONDAY_10, charging(60, "15"))
    assert priced.total_energy_cost.excl_vat == Decimal("6.50")  # 10 x 0.50 + 5 x 0.30
    # 10 of the 15 kWh are delivered after 40 of the 60 minutes: a new charging period starts there
    assert [p.start_date_time.strftime("%H:%M") for p in priced.charging_periods] == ["09:00", "09:40"]
    assert [p.dimensions[0].volume for p in priced.charging_periods] == [Decimal(10), Decimal(5)]


def test_min_kwh_switches_charging_time_pricing():
    # charging time is billed once 5 kWh are in: 10 kWh in 60 min -> the second half hour
    after_5 = tariff(element(charging_time("6.00"), min_kwh="5"))
    assert price(after_5, MONDAY_10, charging(60, "10")).total_cost.excl_vat == 3


def test_min_and_max_duration():
    first_hour_free = tariff(element(charging_time("0"), max_duration=3600), element(charging_time("3.00")))
    assert price(first_hour_free, MONDAY_10, charging(90, "10")).total_cost.excl_vat == Decimal("1.50")
    idle_after_2h = tariff(element(parking_time("12.00"), min_duration=7200))
    # 100 min charging, then 40 min parking of which 20 min are past 2 h
    priced = price(idle_after_2h, MONDAY_10, charging(100, "30"), parked(40))
    assert priced.total_parking_cost.excl_vat == Decimal("4.00")


def test_first_element_with_the_dimension_wins():
    # the FLAT-only first element matches but has no ENERGY: the second one prices energy
    first_match = tariff(element(flat("1.00")), element(energy("0.30")), element(energy("0.99")))
    assert costs(price(first_match, MONDAY_10, charging(60, "10"))) == ("4.00", "4.00")


def test_no_matching_element_makes_the_dimension_free():
    nights_only = tariff(element(energy("0.20"), start_time="22:00", end_time="06:00"))
    assert costs(price(nights_only, MONDAY_10, charging(60, "10"))) == ("0.00", "0.00")


def test_multi_element_night_is_cheaper_in_sek():
    # 21:00 to 24:00 at 10 kW: 10 kWh at 4.00 then 20 kWh at 2.40, 25 % VAT
    priced = price(fixture("night_cheaper_sek"), "2025-03-03T21:00:00+01:00", *[charging(60, "10")] * 3)
    assert costs(priced) == ("88.00", "110.00")
    assert priced.currency == "SEK"


def test_reservation_elements_do_not_price_the_session():
    assert costs(price(fixture("reservation"), MONDAY_10, charging(60, "20"))) == ("5.50", "6.10")


# --- step_size ---------------------------------------------------------------------------------------------


def test_energy_step_rounds_the_session_total_up():
    per_500_wh = tariff(element(energy("0.25", step=500)))
    priced = price(per_500_wh, MONDAY_10, charging(60, "1.2"))
    assert priced.total_cost.excl_vat == Decimal("0.38")  # 1.5 kWh
    assert priced.total_energy == Decimal("1.2")  # the CDR keeps the energy delivered


def test_step_is_applied_once_per_session_not_per_meter_interval():
    # meter readings every 5 min, step 1 kWh: 7 x 0.3 kWh is billed as 3 kWh, not 7 x 1 kWh
    per_kwh = tariff(element(energy("1.00", step=1000)))
    assert price(per_kwh, MONDAY_10, *[charging(5, "0.3")] * 7).total_cost.excl_vat == 3
    # readings every minute, charging billed per 15 min: 20 min -> 30 min, not 20 x 15 min
    per_quarter = tariff(element(charging_time("6.00", step=900)))
    assert price(per_quarter, MONDAY_10, *[charging(1, "0.1")] * 20).total_cost.excl_vat == 3
    # parking in 7 slices of 5 min, billed per 15 min: 35 min -> 45 min
    parking = tariff(element(parking_time("4.00", step=900)))
    assert price(parking, MONDAY_10, charging(10, "1"), *[parked(5)] * 7).total_cost.excl_vat == 3


def test_meter_interval_longer_than_the_step():
    per_minute = tariff(element(charging_time("6.00", step=60)))
    # one 30.5 min reading: 31 min billed
    assert price(per_minute, MONDAY_10, charging("30.5", "5")).total_cost.excl_vat == Decimal("3.10")


def test_time_rounding_goes_to_the_dimension_billed_last():
    both = tariff(element(charging_time("6.00", step=900), parking_time("12.00", step=600)))
    # 10 min charging (not rounded: parking follows) + 25 min parking -> 30 min
    priced = price(both, MONDAY_10, charging(10, "2"), parked(25))
    assert (priced.total_time_cost.excl_vat, priced.total_parking_cost.excl_vat) == (
        Decimal("1.00"),
        Decimal("6.00"),
    )
    # parking, then charging again: only the charging (billed last) is rounded, 10 + 10 min -> 30 min
    priced = price(both, MONDAY_10, charging(10, "2"), parked(25), charging(10, "2"))
    assert (priced.total_time_cost.excl_vat, priced.total_parking_cost.excl_vat) == (
        Decimal("3.00"),
        Decimal("5.00"),
    )


# --- VAT and rounding --------------------------------------------------------------------------------------


def test_absent_vat_is_unknown_and_noted_zero_vat_is_zero():
    unknown = price(tariff(element(energy("0.25", vat=None))), MONDAY_10, charging(60, "20"))
    zero = price(tariff(element(energy("0.25", vat="0"))), MONDAY_10, charging(60, "20"))
    assert costs(unknown) == costs(zero) == ("5.00", "5.00")
    assert "ENERGY: VAT not given by the tariff, incl_vat is excl_vat for this line" in unknown.notes
    assert zero.notes == []


def test_lines_are_rounded_then_summed():
    # flat 0.125 -> 0.13 and energy 1 kWh x 0.125 -> 0.13: the total is 0.26, not round(0.25)
    priced = price(tariff(element(flat("0.125"), energy("0.125"))), MONDAY_10, charging(60, "1"))
    assert costs(priced) == ("0.26", "0.26")


def test_incl_vat_is_rounded_from_the_unrounded_line():
    # 3 x 1 kWh at 0.333 with 25 % VAT: 0.999 -> 1.00 excl., 1.24875 -> 1.25 incl.
    priced = price(tariff(element(energy("0.333", "25"))), MONDAY_10, *[charging(20, "1")] * 3)
    assert costs(priced) == ("1.00", "1.25")


def test_zero_decimal_currency():
    yen = tariff(element(energy("35.5", "10")), currency="JPY")
    assert costs(price(yen, MONDAY_10, charging(60, "3"))) == ("107", "117")  # 106.5 -> 107, 117.15 -> 117


# --- FLAT, charging periods, validity ------------------------------------------------------------------------


def test_flat_is_charged_once_by_the_element_in_force_at_the_start():
    fees = tariff(
        element(flat("1.00"), start_time="22:00", end_time="06:00"),
        element(flat("2.00"), energy("0.10")),
    )
    priced = price(fees, "2025-03-03T21:00:00+01:00", *[charging(30, "5")] * 6)
    assert priced.total_fixed_cost.excl_vat == 2
    assert priced.total_cost.excl_vat == 5


def test_session_without_periods_costs_the_flat_fee():
    priced = price(fixture("energy_025_flat"), MONDAY_10)
    assert costs(priced) == ("0.50", "0.60")
    assert priced.charging_periods == []


def test_charging_periods_merge_readings_priced_alike_and_report_dimensions():
    priced = price(
        fixture("energy_flat_parking"), MONDAY_10, *[charging(15, "5", power="20")] * 4, parked(40)
    )
    first, second = priced.charging_periods
    assert first.start_date_time == datetime(2025, 3, 3, 9, tzinfo=UTC)
    assert [(d.type, d.volume) for d in first.dimensions] == [
        (CdrDimensionType.ENERGY, Decimal(20)),
        (CdrDimensionType.TIME, Decimal(1)),
        (CdrDimensionType.POWER, Decimal(20)),
    ]
    assert [(d.type, d.volume) for d in second.dimensions] == [
        (CdrDimensionType.PARKING_TIME, Decimal("0.666667"))
    ]
    assert {p.tariff_id for p in priced.charging_periods} == {"energy-flat-parking"}


def test_tariff_outside_its_validity_is_refused():
    ended = tariff(element(energy("0.25")), end_date_time="2025-03-01T00:00:00Z")
    with pytest.raises(TariffError, match="not in force"):
        price(ended, MONDAY_10, charging(60, "1"))
    future = tariff(element(energy("0.25")), start_date_time="2025-04-01T00:00:00Z")
    with pytest.raises(TariffError, match="not in force"):
        price_display(future, datetime(2025, 3, 3, tzinfo=UTC))


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        ({"start": MONDAY_10, "periods": [{"minutes": "0"}]}, "greater than 0"),
        (
            {"start": MONDAY_10, "periods": [{"minutes": "5", "energy_kwh": "-1"}]},
            "greater than or equal to 0",
        ),
        (
            {"start": MONDAY_10, "periods": [{"minutes": "5", "energy_kwh": "1", "parking": True}]},
            "delivers no energy",
        ),
        ({"start": "2025-03-03T10:00:00", "periods": []}, "timezone"),
        ({"start": MONDAY_10, "periods": [{"minutes": 5.0}]}, "is a float"),
    ],
)
def test_invalid_session_profiles(profile, reason):
    with pytest.raises(ValueError, match=reason):
        SessionProfile.model_validate(profile)


# --- the price shown before the session -------------------------------------------------------------------


def test_display_shows_the_prices_billing_uses():
    display = price_display(fixture("energy_flat_parking"), datetime(2025, 3, 3, 10, tzinfo=UTC))
    assert display.per_kwh.incl_vat == Decimal("0.2750")
    assert display.idle_per_hour.incl_vat == Decimal("2.4000")
    assert display.idle_per_minute.incl_vat == Decimal("0.0400")
    assert display.flat.incl_vat == Decimal("0.60")
    assert display.per_hour is None
    assert display.vat == {
        TariffDimensionType.FLAT: Decimal(20),
        TariffDimensionType.ENERGY: Decimal(10),
        TariffDimensionType.PARKING_TIME: Decimal(20),
    }
    assert describe(display) == [
        "0.275 EUR/kWh incl. 10% VAT",
        "idle fee 0.04 EUR/min (2.40 EUR/hour) while plugged in and not charging incl. 20% VAT",
        "0.60 EUR per session incl. 20% VAT",
    ]


def test_display_follows_the_time_of_day():
    night = price_display(fixture("night_cheaper_sek"), datetime.fromisoformat("2025-03-03T23:00:00+01:00"))
    day = price_display(fixture("night_cheaper_sek"), datetime.fromisoformat("2025-03-03T12:00:00+01:00"))
    assert (night.per_kwh.incl_vat, day.per_kwh.incl_vat) == (Decimal("3.0000"), Decimal("5.0000"))
    assert describe(night)[0] == "3.00 SEK/kWh incl. 25% VAT"
    assert "prices change with the time of day or the date" in describe(night)


def test_display_per_minute_time_and_unknown_vat_and_limits():
    display = price_display(
        tariff(
            element(charging_time("2.00", "10")),
            element(energy("0.30", vat=None)),
            max_price={"excl_vat": "20"},
        ),
        datetime(2025, 3, 3, tzinfo=UTC),
    )
    assert (display.per_minute.excl_vat, display.per_minute.incl_vat) == (
        Decimal("0.0333"),
        Decimal("0.0367"),
    )
    assert describe(display) == [
        "0.30 EUR/kWh (VAT not specified)",
        "charging time 0.0367 EUR/min (2.20 EUR/hour) incl. 10% VAT",
        "maximum 20.00 EUR per session excl. VAT",
        "VAT not specified by the tariff for some prices",
    ]


def test_display_without_power_shows_the_element_without_a_power_condition():
    display = price_display(fixture("max_power_tiers"), datetime(2025, 3, 3, tzinfo=UTC))
    assert display.per_kwh.excl_vat == Decimal("0.5000")
    assert (
        "prices depend on charging power or current: shown are those without such a condition"
        in display.notes
    )


def test_display_of_a_free_tariff():
    display = price_display(tariff(element(energy("0.25"), min_kwh="1000")), datetime(2025, 3, 3, tzinfo=UTC))
    assert describe(display) == ["free of charge", "prices change with the energy delivered"]
