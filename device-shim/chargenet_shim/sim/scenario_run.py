"""Run a scenario (scenario.py) on simulated chargers: the sessions and the scripted faults, with the ground truth.

The fleet comes up and charges through fleet.run_sessions; next to the sessions, each
injection waits for its time on the scenario's SimClock, starts its fault on its charger
(injections.py), and ends it after its duration. What happened, and when in real time, is
kept as the ground truth (`Injected`) that scoring.py holds the backend's alerts against.

Once the sessions and faults are over every charger times a few Heartbeats: the round trip
through the broker and the backend, the baseline the detection times are compared with.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import assert_never

from ocpp.exceptions import OCPPError

from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.sim.fleet import FleetCharger, Progress, SessionOutcome, run_sessions
from chargenet_shim.sim.scenario import (
    ConnectionBlip,
    ConnectionOutage,
    ErrorCode,
    Injection,
    MeterReset,
    PowerAboveRating,
    RebootLoop,
    Scenario,
    StopAnswering,
    StuckMeter,
)
from chargenet_shim.sim.simclock import SimClock

LOG = logging.getLogger(__name__)

RTT_SAMPLES = 3
# A fault that cannot be injected (link down, a reboot under way: LinkError, NotAccepted and
# SessionError are RuntimeErrors) is recorded, not raised: the rest of the run goes on.
_FAILURES = (RuntimeError, ValueError, TimeoutError, OCPPError)


@dataclass(frozen=True)
class Injected:
    """One scripted fault as it really happened."""

    index: int  # its place in the scenario's injections
    injection: Injection
    charger_id: str
    started_at: dt.datetime  # real time (UTC) the fault began
    ended_at: dt.datetime | None = None  # real time it was over; None: it lasted until the run ended
    error: str | None = None  # the fault could not be injected


@dataclass(frozen=True)
class ScenarioRun:
    started_at: dt.datetime  # real time of the scenario's time 0: the whole fleet up
    injected: list[Injected]
    sessions: list[SessionOutcome]
    rtt_ms: list[float]  # Heartbeat round trips once the sessions and faults were over
    heartbeat_interval_s: int | None  # what the backend's BootNotification reply set


# Awaited once the sessions and the faults are over, with the chargers still connected.
Hold = Callable[[Sequence[Injected]], Awaitable[None]]


async def run_scenario(
    scenario: Scenario,
    credentials: list[ChargerCredentials],
    hold: Hold | None = None,
    on_progress: Progress | None = None,
) -> ScenarioRun:
    """`credentials` are the scenario's chargers in order (FleetSpec.charger_ids)."""
    if [c.charger_id for c in credentials] != scenario.chargers.charger_ids:
        raise ValueError("one set of credentials per scenario charger, in the scenario's order")
    clock = SimClock(speed=scenario.speed)
    seen = _Seen()

    async def faults(chargers: list[FleetCharger]) -> None:
        origin = clock.now()
        seen.started_at = dt.datetime.now(dt.UTC)
        seen.chargers = chargers
        seen.heartbeat_interval_s = next((c.heartbeat_interval for c in chargers), None)
        up = {charger.id: charger for charger in chargers}
        await asyncio.gather(
            *(
                _inject(index, injection, up, scenario, clock, origin, seen.injected.append)
                for index, injection in enumerate(scenario.injections)
            )
        )

    async def held() -> None:
        # Measured once the sessions and faults are over: the quiet fleet's round trip, not one
        # delaying the first faults or slowed by a reboot.
        seen.rtt_ms = await _round_trips(seen.chargers)
        if hold is not None:
            await hold(seen.injected)

    sessions = await run_sessions(
        credentials,
        scenario.plans_per_charger(),
        clock,
        on_progress=on_progress,
        hold=held,
        alongside=faults,
        versions=scenario.chargers.versions,
    )
    assert seen.started_at is not None, "run_sessions runs `alongside` once the fleet is up"
    return ScenarioRun(
        started_at=seen.started_at,
        injected=sorted(seen.injected, key=lambda i: i.index),
        sessions=sessions,
        rtt_ms=seen.rtt_ms,
        heartbeat_interval_s=seen.heartbeat_interval_s,
    )


@dataclass
class _Seen:
    """What a run learns as it goes, for its ScenarioRun."""

    started_at: dt.datetime | None = None
    chargers: list[FleetCharger] = field(default_factory=list)
    heartbeat_interval_s: int | None = None
    rtt_ms: list[float] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)


async def _round_trips(chargers: list[FleetCharger]) -> list[float]:
    """RTT_SAMPLES Heartbeat round trips per charger, one at a time: a message's own trip, not a queue's."""
    samples = []
    for charger in chargers:
        for _ in range(RTT_SAMPLES):
            started = time.perf_counter()
            try:
                await charger.heartbeat()
            except _FAILURES as exc:
                LOG.info("%s: heartbeat round trip not measured: %s", charger.id, exc)
                continue
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _inject(
    index: int,
    injection: Injection,
    chargers: dict[str, FleetCharger],
    scenario: Scenario,
    clock: SimClock,
    origin: dt.datetime,
    record: Callable[[Injected], None],
) -> None:
    charger_id = scenario.chargers.charger_id(injection.charger)
    await clock.sleep_until(origin + dt.timedelta(seconds=injection.at_s))
    started_at = dt.datetime.now(dt.UTC)
    charger = chargers.get(charger_id)
    if charger is None:
        record(Injected(index, injection, charger_id, started_at, error="the charger did not come up"))
        return
    try:
        ended = await _perform(charger, injection, scenario.chargers.rated_kw, clock)
    except _FAILURES as exc:
        LOG.warning("%s: %s injection failed: %r", charger_id, injection.kind, exc)
        record(Injected(index, injection, charger_id, started_at, error=str(exc) or type(exc).__name__))
        return
    record(Injected(index, injection, charger_id, started_at, dt.datetime.now(dt.UTC) if ended else None))


async def _perform(charger: FleetCharger, injection: Injection, rated_kw: float, clock: SimClock) -> bool:
    """Start the fault, and end it after its duration; whether it ended (False: it lasts)."""
    match injection:
        case ErrorCode(params=p):
            await charger.inject_fault(p.connector, p.code, p.vendor_error_code, p.info)
            return await _lasting(clock, p.duration_s, lambda: charger.clear_fault(p.connector))
        case ConnectionBlip(params=p) | ConnectionOutage(params=p):
            await charger.drop_connection()
            return await _lasting(clock, p.duration_s, charger.restore_connection)
        case StuckMeter(params=p):
            charger.stick_meter(p.connector)
            return await _lasting(clock, p.duration_s, _now(charger.unstick_meter, p.connector))
        case MeterReset(params=p):
            charger.reset_meter(p.connector)
            return True
        case PowerAboveRating(params=p):
            charger.misreport_power(p.connector, rated_kw * 1000 * p.factor)
            return await _lasting(clock, p.duration_s, _now(charger.report_true_power, p.connector))
        case RebootLoop(params=p):
            for reboot in range(p.count):
                if reboot:
                    await clock.sleep(p.every_s)
                await charger.reboot()
            return True
        case StopAnswering(params=p):
            charger.go_silent()
            return await _lasting(clock, p.duration_s, _now(charger.resume))
    assert_never(injection)


async def _lasting(clock: SimClock, duration_s: float | None, end: Callable[[], Awaitable[None]]) -> bool:
    if duration_s is None:
        return False
    await clock.sleep(duration_s)
    await end()
    return True


def _now(step: Callable[..., None], *args: int) -> Callable[[], Awaitable[None]]:
    """A synchronous step as the awaitable end of a fault."""

    async def end() -> None:
        step(*args)

    return end
