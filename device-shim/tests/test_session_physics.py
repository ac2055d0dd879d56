import datetime as dt
import math
import random

import pytest
from ocpp.v16.enums import ReadingContext
from pydantic import ValidationError

from chargenet_shim.sim.session import (
    TAPER_FROM_SOC,
    ChargeCurve,
    SessionPlan,
    Step,
    charging_power_kw,
    reading_at,
    sample_plan,
    timeline,
)

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def _plan(**changes) -> SessionPlan:
    fields = dict(
        connector_id=1,
        id_tag="TAG-1",
        battery_kwh=60.0,
        start_soc=20.0,
        target_soc=95.0,
        max_power_kw=50.0,
        meter_interval_s=60,
        idle_minutes_after=10,
    )
    return SessionPlan(**{**fields, **changes})


def _integral_wh(curve: ChargeCurve, until: float, step: float = 1.0) -> float:
    """Midpoint rule over the power curve: independent of the model's closed form."""
    steps = math.ceil(until / step)
    return sum(curve.power_kw_at((i + 0.5) * step) * step for i in range(steps)) * 1000 / 3600


def test_power_is_flat_up_to_80_percent_then_tapers_linearly_to_a_tenth_at_100():
    assert charging_power_kw(0, 50) == charging_power_kw(TAPER_FROM_SOC, 50) == 50
    assert charging_power_kw(90, 50) == pytest.approx(50 * 0.55)
    assert charging_power_kw(100, 50) == pytest.approx(5.0)
    powers = [charging_power_kw(soc / 10, 50) for soc in range(0, 1001)]
    assert max(powers) == 50
    assert powers == sorted(powers, reverse=True)


def test_energy_equals_the_integral_of_power_and_the_soc_gained():
    curve = ChargeCurve.for_plan(_plan())
    end = curve.full_after_s + 600

    assert curve.energy_wh_at(end) == pytest.approx(_integral_wh(curve, end), rel=1e-4)
    assert curve.energy_wh_at(end) == pytest.approx(60_000 * (95 - 20) / 100)
    for t in (0.0, 100.0, curve.full_after_s / 2):
        assert curve.energy_wh_at(t) == pytest.approx(_integral_wh(curve, t, step=0.5), rel=1e-3, abs=0.5)


def test_constant_power_phase_lasts_as_long_as_the_energy_needs():
    # 20 -> 80 % of 60 kWh is 36 kWh; at 50 kW that is 0.72 h.
    curve = ChargeCurve.for_plan(_plan(target_soc=80))

    assert curve.full_after_s == pytest.approx(0.72 * 3600)
    assert curve.power_kw_at(curve.full_after_s - 1) == 50


def test_taper_begins_at_80_percent():
    curve = ChargeCurve.for_plan(_plan())
    reaches_80 = ChargeCurve.for_plan(_plan(target_soc=80)).full_after_s

    assert curve.soc_at(reaches_80) == pytest.approx(80)
    assert curve.power_kw_at(reaches_80 - 1) == 50
    assert curve.power_kw_at(reaches_80 + 60) < 50
    assert curve.soc_at(reaches_80 + 60) > 80


def test_never_above_max_power_nor_target_soc_and_nothing_drawn_once_full():
    curve = ChargeCurve.for_plan(_plan(start_soc=5, target_soc=99, max_power_kw=150, battery_kwh=77))
    samples = [t * 10.0 for t in range(int(curve.full_after_s / 10) + 100)]

    assert max(curve.power_kw_at(t) for t in samples) <= 150
    assert max(curve.soc_at(t) for t in samples) <= 99
    assert curve.soc_at(curve.full_after_s) == 99
    assert curve.power_kw_at(curve.full_after_s) == 0
    socs = [curve.soc_at(t) for t in samples]
    assert socs == sorted(socs)


def test_a_session_starting_above_80_percent_starts_tapered():
    curve = ChargeCurve.for_plan(_plan(start_soc=85, target_soc=95))

    assert curve.peak_power_kw == pytest.approx(50 * (1 - 0.045 * 5))
    assert curve.power_kw_at(0) == curve.peak_power_kw
    assert curve.energy_wh_at(curve.full_after_s) == pytest.approx(6000)


def test_timeline_begins_samples_periodically_through_the_idle_time_and_ends_at_the_unplug():
    plan = _plan(target_soc=80, meter_interval_s=600, idle_minutes_after=15)
    curve = ChargeCurve.for_plan(plan)  # full after 2592 s, unplugged at 3492 s

    steps = timeline(plan, curve)

    assert steps[0] == (0.0, Step.BEGIN)
    assert steps[-1] == (pytest.approx(curve.full_after_s + 900), Step.END)
    assert [t for t, step in steps if step is Step.PERIODIC] == [600, 1200, 1800, 2400, 3000]
    assert [step for _, step in steps].count(Step.FULL) == 1
    assert steps == sorted(steps, key=lambda s: s[0])


def test_when_the_driver_leaves_at_once_the_ev_is_full_then_the_transaction_ends():
    plan = _plan(idle_minutes_after=0)

    steps = timeline(plan, ChargeCurve.for_plan(plan))

    assert [step for _, step in steps[-2:]] == [Step.FULL, Step.END]
    assert steps[-2][0] == steps[-1][0]


def test_a_sample_due_when_the_ev_is_full_comes_after_the_status_change():
    # 20 -> 80 % at 60 kW of 60 kWh takes exactly 2160 s = 36 samples of 60 s.
    plan = _plan(target_soc=80, max_power_kw=60, idle_minutes_after=5)

    steps = timeline(plan, ChargeCurve.for_plan(plan))

    at_full = [step for t, step in steps if t == pytest.approx(2160)]
    assert at_full == [Step.FULL, Step.PERIODIC]


def test_readings_carry_a_whole_wh_lifetime_register_that_never_runs_backwards():
    curve = ChargeCurve.for_plan(_plan())
    base = 1_234_567.8
    readings = [
        reading_at(curve, base, t, T0 + dt.timedelta(seconds=t), ReadingContext.sample_periodic)
        for t in range(0, int(curve.full_after_s) + 600, 60)
    ]

    registers = [r.register_wh for r in readings]
    assert registers[0] == 1_234_567
    assert registers == sorted(registers)
    assert registers[-1] == math.floor(base + 45_000)
    assert readings[-1].power_w == 0
    assert readings[0].current_a == pytest.approx(50_000 / 400)  # DC above 22 kW
    assert readings[0].temperature_c > readings[-1].temperature_c == 20


def test_ac_current_is_per_phase():
    curve = ChargeCurve.for_plan(_plan(max_power_kw=11))

    assert reading_at(curve, 0, 0, T0, ReadingContext.transaction_begin).current_a == pytest.approx(
        11_000 / 690
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"target_soc": 20},
        {"start_soc": 100},
        {"id_tag": "X" * 21},
        {"max_power_kw": 0},
        {"meter_interval_s": 0},
    ],
)
def test_impossible_plans_are_refused(changes):
    with pytest.raises(ValidationError):
        _plan(**changes)


def test_sampled_plans_are_reproducible_and_valid():
    first = [sample_plan(random.Random(7), connector_id=2) for _ in range(2)]

    assert first[0] == first[1]
    assert first[0].connector_id == 2
    plans = [sample_plan(random.Random(seed), 1) for seed in range(50)]
    assert all(p.start_soc < p.target_soc <= 100 for p in plans)
    # Slow chargers are not asked for more than ~1.5 h at full power.
    assert all(
        p.battery_kwh * (p.target_soc - p.start_soc) / 100 <= p.max_power_kw * 1.5 + 0.1 for p in plans
    )


def test_sampled_plans_on_a_rated_charger_stay_within_its_power_and_about_one_and_a_half_hours():
    plans = [sample_plan(random.Random(seed), 1, rated_power_kw=22.0) for seed in range(200)]

    assert max(p.max_power_kw for p in plans) == 22.0
    assert all(
        p.battery_kwh * (p.target_soc - p.start_soc) / 100 <= p.max_power_kw * 1.5 + 0.1 for p in plans
    )
