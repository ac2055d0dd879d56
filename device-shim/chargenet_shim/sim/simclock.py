"""Accelerated simulated time: an hour-long session in seconds, with timestamps that look real."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable


class SimClock:
    """Simulated UTC wall time running `speed` times faster than real time from `start` (default: now).

    Every OCPP timestamp of a simulated session comes from here, so the backend sees a
    plausible timeline (a 1-hour session spans one hour of timestamps) however fast it ran.
    """

    def __init__(
        self,
        speed: float = 1.0,
        start: dt.datetime | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.speed = speed
        self._timer = timer
        self._real_origin = timer()
        self._sim_origin = (start or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        elapsed = (self._timer() - self._real_origin) * self.speed
        return self._sim_origin + dt.timedelta(seconds=elapsed)

    async def sleep(self, sim_seconds: float) -> None:
        # A negative wait (already late) still yields, so a lagging session cannot starve the loop.
        await asyncio.sleep(max(sim_seconds, 0.0) / self.speed)

    async def sleep_until(self, moment: dt.datetime) -> None:
        await self.sleep((moment - self.now()).total_seconds())

    async def wait_until(self, moment: dt.datetime, event: asyncio.Event) -> bool:
        """Sleep until `moment` unless `event` is set before; whether it was."""
        real_seconds = max((moment - self.now()).total_seconds(), 0.0) / self.speed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(real_seconds):
                await event.wait()
        return event.is_set()
