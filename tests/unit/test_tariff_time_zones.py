"""Tariff restrictions read on the site's wall clock: its IANA zone, daylight-saving changes included.

The worked examples are computed by hand in their docstrings; 2026's EU changes are on 29 March (02:00
CET -> 03:00 CEST, at 01:00 UTC) and 25 October (03:00 CEST -> 02:00 CET, at 01:00 UTC).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chargenet.domain.tariffs import (
    PricedSession,
    SessionPeriod,
    SessionProfile,
    TariffError,
    load_session,
    load_tariff,
    price_display,
    price_session,
)
from tests.unit.test_tariff_engine import element, tariff
from tests.unit.test_tariff_properties import PROPERTY_SETTINGS, every_tariff, periods, sessions, split

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tariffs"
EXAMPLE_TARIFF = load_tariff((DOCS / "example-tariff.json").read_text())
STOCKHOLM = "Europe/Stockholm"
ZONES = [STOCKHOLM, "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "UTC"]
# Starts within two days of a 2026 DST change in Europe and North America, so sessions cross them.
DST_CHANGES = [datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 3, 29, 1, tzinfo=UTC)]
DST_CHANGES += [datetime(2026, 10, 25, 1, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)]


def time_price(price: str) -> dict:
    return {"type": "TIME", "price": price, "vat": "25", "step_size": 1}


def energy_price(price: str) -> dict:
    return {"type": "ENERGY", "price": price, "vat": "0", "step_size": 1}


def charging(minutes: int, kwh: str = "0") -> SessionPeriod:
    return SessionPeriod(minutes=Decimal(minutes), energy_kwh=Decimal(kwh))


def profile(start: str, *periods: SessionPeriod, time_zone: str | None = STOCKHOLM) -> SessionProfile:
    return SessionProfile(start=datetime.fromisoformat(start), time_zone=time_zone, periods=list(periods))


def example_session(start: str, time_zone: str | None) -> SessionProfile:
    document = load_session((DOCS / "example-session.json").read_text())
    return document.model_copy(update={"start": datetime.fromisoformat(start), "time_zone": time_zone})


def total(priced: PricedSession) -> tuple[Decimal, Decimal | None]:
    return priced.total_cost.excl_vat, priced.total_cost.incl_vat


def test_a_charger_reporting_utc_is_billed_the_night_rate_from_22_local_in_winter():
    """The issue's measurement, 15.34 EUR from 21:30 local however the start is written: 0.50 flat, 5.5 kWh
    at 0.36 until 22:00 and 22 kWh at 0.24 after, 45 min idle at 6.00/h after 2 h: 12.26, 15.34 incl. VAT."""
    local = price_session(EXAMPLE_TARIFF, example_session("2025-03-01T21:30:00+01:00", None))
    utc = price_session(EXAMPLE_TARIFF, example_session("2025-03-01T20:30:00Z", STOCKHOLM))
    assert total(local) == total(utc) == (Decimal("12.26"), Decimal("15.34"))
    assert utc.time_zone == STOCKHOLM
    assert local.time_zone == "+01:00"
    # On UTC hours, as before zones: the night rate starts an hour late.
    assert total(price_session(EXAMPLE_TARIFF, example_session("2025-03-01T20:30:00Z", None)))[1] == Decimal(
        "16.99"
    )


def test_and_in_summer_from_22_local_which_is_20_utc():
    summer = price_session(EXAMPLE_TARIFF, example_session("2025-07-01T19:30:00Z", STOCKHOLM))
    assert total(summer) == (Decimal("12.26"), Decimal("15.34"))


def test_a_boundary_in_the_missing_spring_hour_takes_effect_at_the_jump():
    """TIME 6.00/h from 02:30 to 05:00, else 12.00/h, 25 % VAT; 29 March 2026, 00:00-03:00 UTC.

    The wall clock reads 01:00-02:00 CET (12.00), jumps to 03:00 CEST at 01:00 UTC, inside the window,
    and reads 03:00-05:00 (2 h at 6.00): 12.00 + 12.00 = 24.00, 30.00 incl. VAT. On a fixed +01:00 it
    would be 1.5 h at 12.00 and 1.5 h at 6.00: 27.00.
    """
    cheap_early = tariff(
        element(time_price("6.00"), start_time="02:30", end_time="05:00"), element(time_price("12.00"))
    )
    priced = price_session(cheap_early, profile("2026-03-29T00:00:00Z", charging(180)))
    assert total(priced) == (Decimal("24.00"), Decimal("30.00"))
    assert [p.start_date_time for p in priced.charging_periods] == [
        datetime(2026, 3, 29, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 1, tzinfo=UTC),
    ]
    fixed = profile("2026-03-29T01:00:00+01:00", charging(180), time_zone=None)
    assert total(price_session(cheap_early, fixed))[0] == Decimal("27.00")


def test_the_repeated_autumn_hour_counts_twice():
    """TIME 6.00/h from 02:30 to 06:00, else 12.00/h; 25 October 2026, 00:00-02:00 UTC.

    Wall clock: 02:00 CEST (12.00 for 30 min), 02:30 CEST (6.00 for 30 min), back to 02:00 CET at 01:00
    UTC (12.00 for 30 min), 02:30 CET (6.00 for 30 min): 6 + 3 + 6 + 3 = 18.00, 22.50 incl. VAT.
    """
    cheap_night = tariff(
        element(time_price("6.00"), start_time="02:30", end_time="06:00"), element(time_price("12.00"))
    )
    priced = price_session(cheap_night, profile("2026-10-25T00:00:00Z", charging(120)))
    assert total(priced) == (Decimal("18.00"), Decimal("22.50"))
    assert len(priced.charging_periods) == 4


def test_a_weekend_price_starts_at_local_midnight():
    """ENERGY 0.20/kWh on Saturdays and Sundays, else 0.40; Friday 9 January 2026 23:00-01:00 local.

    11 kWh on Friday at 0.40 (4.40) and 11 kWh on Saturday at 0.20 (2.20): 6.60. On UTC hours, both
    hours fall on Friday: 8.80.
    """
    weekend = tariff(
        element(energy_price("0.20"), day_of_week=["SATURDAY", "SUNDAY"]), element(energy_price("0.40"))
    )
    friday_night = charging(60, "11"), charging(60, "11")
    assert total(price_session(weekend, profile("2026-01-09T22:00:00Z", *friday_night)))[0] == Decimal("6.60")
    on_utc = profile("2026-01-09T22:00:00Z", *friday_night, time_zone=None)
    assert total(price_session(weekend, on_utc))[0] == Decimal("8.80")


def test_durations_stay_elapsed_time_across_a_dst_change():
    """PARKING 6.00/h after 2 h (min_duration 7200 s) across the spring change: the idle fee starts
    two real hours after the start, 02:00 UTC, not when the wall clock has moved two hours (01:00 UTC)."""
    idle_after_two_hours = tariff(
        element({"type": "PARKING_TIME", "price": "6.00", "vat": "0", "step_size": 1}, min_duration=7200)
    )
    parked = SessionPeriod(minutes=Decimal(180), parking=True)
    priced = price_session(idle_after_two_hours, profile("2026-03-29T00:00:00Z", parked))
    assert priced.total_parking_cost.excl_vat == Decimal("6.00")


def test_the_price_shown_before_a_session_reads_the_same_wall_clock():
    at = datetime(2026, 1, 15, 21, 30, tzinfo=UTC)  # 22:30 in Stockholm: the night rate
    assert price_display(EXAMPLE_TARIFF, at, STOCKHOLM).per_kwh.excl_vat == Decimal("0.24")
    assert price_display(EXAMPLE_TARIFF, at).per_kwh.excl_vat == Decimal("0.36")


def test_an_unknown_zone_is_a_clear_error():
    with pytest.raises(TariffError, match="unknown time zone 'Europe/Atlantis'"):
        load_session('{"start": "2026-01-01T00:00:00Z", "time_zone": "Europe/Atlantis", "periods": []}')


def crosses_a_dst_change(start: datetime, minutes: Decimal, zone: ZoneInfo) -> bool:
    # an independent check: the zone's offset sampled every 15 minutes over the session
    steps = int(minutes // 15) + 2
    offsets = {(start + timedelta(minutes=15 * i)).astimezone(zone).utcoffset() for i in range(steps)}
    return len(offsets) > 1


@PROPERTY_SETTINGS
@given(every_tariff, sessions, st.sampled_from(ZONES))
def test_a_utc_start_with_its_zone_prices_as_the_local_start_when_no_dst_change_falls_inside(
    tariff, session, zone_name
):
    zone = ZoneInfo(zone_name)
    minutes = sum((p.minutes for p in session.periods), Decimal(0))
    assume(not crosses_a_dst_change(session.start, minutes, zone))
    local_start = session.start.astimezone(zone)
    fixed_local = session.model_copy(update={"start": local_start.replace(tzinfo=local_start.tzinfo)})
    from_utc = session.model_copy(update={"start": session.start.astimezone(UTC), "time_zone": zone_name})
    assert price_session(tariff, from_utc).model_dump(exclude={"time_zone"}) == price_session(
        tariff, fixed_local
    ).model_dump(exclude={"time_zone"})


@PROPERTY_SETTINGS
@given(
    every_tariff,
    st.sampled_from(DST_CHANGES),
    st.integers(-36 * 60, 12 * 60),
    st.lists(periods, min_size=1, max_size=6),
    st.sampled_from([STOCKHOLM, "America/New_York"]),
    st.data(),
)
def test_across_dst_changes_splitting_a_period_changes_nothing(tariff, change, minutes, spans, zone, data):
    session = SessionProfile(start=change + timedelta(minutes=minutes), time_zone=zone, periods=spans)
    index = data.draw(st.integers(0, len(spans) - 1))
    assume(spans[index].minutes >= 2)
    first_minutes = data.draw(st.integers(1, int(spans[index].minutes) - 1))
    assert price_session(tariff, split(session, index, first_minutes)) == price_session(tariff, session)
