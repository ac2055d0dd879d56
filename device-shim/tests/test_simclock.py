import asyncio
import datetime as dt
import time

import pytest

from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.sim.simclock import SimClock

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


class FakeTimer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_simulated_time_runs_speed_times_faster_from_the_start():
    timer = FakeTimer()
    clock = SimClock(speed=600, start=T0, timer=timer)

    assert clock.now() == T0
    timer.now += 1.5
    assert clock.now() == T0 + dt.timedelta(minutes=15)


def test_start_in_another_zone_is_kept_as_utc():
    clock = SimClock(start=dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))))

    assert clock.now().tzinfo == dt.UTC
    assert abs(clock.now() - T0) < dt.timedelta(seconds=1)


@pytest.mark.parametrize("speed", [0, -2])
def test_speed_must_be_positive(speed):
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed=speed)


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        SimClock(start=dt.datetime(2025, 3, 1, 8, 0))


def test_sleep_takes_sim_seconds_divided_by_speed():
    clock = SimClock(speed=600, start=T0)

    async def nap() -> tuple[float, dt.datetime]:
        started = time.monotonic()
        await clock.sleep(60)
        return time.monotonic() - started, clock.now()

    real, sim = asyncio.run(nap())

    assert 0.095 <= real < 0.5
    assert sim - T0 >= dt.timedelta(seconds=60)


def test_sleep_until_a_past_moment_returns_at_once():
    clock = SimClock(speed=10, start=T0)

    async def nap() -> float:
        started = time.monotonic()
        await clock.sleep_until(T0 - dt.timedelta(hours=1))
        return time.monotonic() - started

    assert asyncio.run(nap()) < 0.05


def test_ocpp_timestamps_are_utc_with_a_z():
    berlin = dt.timezone(dt.timedelta(hours=1))

    assert (
        ocpp_timestamp(dt.datetime(2025, 3, 1, 9, 0, 0, 250_000, tzinfo=berlin)) == "2025-03-01T08:00:00.250Z"
    )
