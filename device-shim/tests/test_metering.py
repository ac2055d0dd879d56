"""What a connector's meter shows against what really flowed: healthy, stuck, reset, misreading power."""

import datetime as dt

from ocpp.v16.enums import ReadingContext

from chargenet_shim.sim.metering import Meter
from chargenet_shim.sim.session import MeterReading

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def _reading(register_wh: int, power_w: float) -> MeterReading:
    return MeterReading(T0, ReadingContext.sample_periodic, register_wh, power_w, 30.0, 50.0, 25.0)


def test_a_healthy_meter_shows_the_physical_register_and_power():
    meter = Meter()

    shown = meter.shown(_reading(1_000_400, 22_000.0), 1_000_400.7)

    assert (shown.register_wh, shown.power_w) == (1_000_400, 22_000.0)


def test_a_stuck_register_stands_still_and_loses_what_flowed_until_it_counts_again():
    meter = Meter()
    meter.stick(1_000_000.0)

    assert meter.register_wh(1_000_500.0) == 1_000_000.0
    meter.unstick(1_000_500.0)

    # It counts on from where it stood: the 500 Wh that flowed meanwhile are gone for good.
    assert meter.register_wh(1_000_600.0) == 1_000_100.0


def test_sticking_twice_keeps_the_first_value():
    meter = Meter()
    meter.stick(10.0)
    meter.stick(20.0)

    assert meter.register_wh(30.0) == 10.0


def test_a_reset_register_reads_zero_then_counts_on():
    meter = Meter()
    meter.reset(1_250_000.0)

    assert meter.register_wh(1_250_000.0) == 0.0
    assert meter.shown(_reading(1_250_730, 11_000.0), 1_250_730.9).register_wh == 730


def test_a_reset_while_stuck_reads_zero_until_the_register_counts_again():
    meter = Meter()
    meter.stick(5_000.0)
    meter.reset(5_200.0)

    assert meter.register_wh(5_400.0) == 0.0
    meter.unstick(5_400.0)
    assert meter.register_wh(5_500.0) == 100.0


def test_a_misread_power_shows_only_while_the_ev_draws_power():
    meter = Meter(power_w=33_000.0)

    assert meter.shown(_reading(100, 11_000.0), 100.0).power_w == 33_000.0
    assert meter.shown(_reading(100, 0.0), 100.0).power_w == 0.0
