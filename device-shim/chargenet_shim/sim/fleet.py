"""Bring up many simulated chargers at once: connect, boot, report Available, heartbeat; then charge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from ocpp.exceptions import OCPPError
from ocpp.v16.enums import ChargePointStatus, RegistrationStatus

from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.link import LinkError
from chargenet_shim.sim.chaos import ChaosConfig
from chargenet_shim.sim.charging import SessionError
from chargenet_shim.sim.session import SessionPlan, SessionTruth
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import NotAccepted, SimulatedCharger

Progress = Callable[[str, str], None]
# Runs next to a fleet's sessions, given the chargers that came up.
Alongside = Callable[[list[SimulatedCharger]], Awaitable[None]]
# BootNotifications sent again when unanswered: a fleet starting all at once can keep the
# backend busy past a reply timeout, and one lost boot must not cost a charger its sessions.
BOOT_RESENDS = 2


@dataclass(frozen=True)
class FleetResult:
    charger_id: str
    connected: bool
    boot_status: str | None = None
    heartbeat_interval: int | None = None
    boot_rtt_ms: float | None = None
    error: str | None = None


async def run_fleet(
    credentials: list[ChargerCredentials],
    on_progress: Progress | None = None,
    concurrency: int = 20,
    hold: Callable[[], Awaitable[None]] | None = None,
) -> list[FleetResult]:
    """One result per charger, in the order given; a failing charger does not stop the others.

    `concurrency` bounds how many chargers are being brought up at once; `hold`, when
    given, is awaited once all are up, while every charger is still connected.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    report = on_progress or _ignore
    chargers = [SimulatedCharger(creds) for creds in credentials]

    async def bounded(charger: SimulatedCharger) -> FleetResult:
        async with gate:
            return await _bring_up(charger, report)

    try:
        results = list(await asyncio.gather(*(bounded(charger) for charger in chargers)))
        if hold is not None:
            await hold()
        return results
    finally:
        await asyncio.gather(*(charger.stop() for charger in chargers))


@dataclass(frozen=True)
class SessionFailure:
    charger_id: str
    connector_id: int
    error: str


SessionOutcome = SessionTruth | SessionFailure


async def run_sessions(
    credentials: list[ChargerCredentials],
    plans_per_charger: Sequence[Sequence[SessionPlan]],
    clock: SimClock,
    on_progress: Progress | None = None,
    chaos: ChaosConfig | None = None,
    hold: Callable[[], Awaitable[None]] | None = None,
    concurrency: int = 20,
    alongside: Alongside | None = None,
) -> list[SessionOutcome]:
    """Bring every charger up, then run its plans; one outcome per plan, chargers in the order given.

    The sessions start once the whole fleet is up, so the fleet shares one start time. A
    charger's connectors charge at the same time, each working through its own plans in
    order. `chaos` is seeded per charger (seed + position). `concurrency` bounds the
    bring-up only. `alongside`, when given, runs next to the sessions with the chargers that
    came up (a scenario's faults, scenario_run.py); `hold` is awaited once both are over,
    while every charger is still connected, as in run_fleet.
    """
    if len(plans_per_charger) != len(credentials):
        raise ValueError("one list of plans per charger")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    report = on_progress or _ignore
    chargers = [
        SimulatedCharger(
            creds,
            connectors=max([2, *(plan.connector_id for plan in plans)]),
            chaos=chaos.for_charger(index) if chaos else None,
            clock=clock,
        )
        for index, (creds, plans) in enumerate(zip(credentials, plans_per_charger, strict=True))
    ]

    async def bring_up(charger: SimulatedCharger) -> FleetResult:
        async with gate:
            return await _bring_up(charger, report)

    async def visit(
        charger: SimulatedCharger, up: FleetResult, plans: Sequence[SessionPlan]
    ) -> list[SessionOutcome]:
        if not _is_up(up):
            error = up.error or f"boot {up.boot_status}"
            return [SessionFailure(charger.id, plan.connector_id, error) for plan in plans]
        return await _charge(charger, plans, clock, report)

    try:
        ups = await asyncio.gather(*(bring_up(charger) for charger in chargers))
        visits = asyncio.gather(
            *(visit(c, up, p) for c, up, p in zip(chargers, ups, plans_per_charger, strict=True))
        )
        running = [c for c, up in zip(chargers, ups, strict=True) if _is_up(up)]
        outcomes, _ = await asyncio.gather(visits, alongside(running) if alongside else asyncio.sleep(0))
        if hold is not None:
            await hold()
        return [outcome for per_charger in outcomes for outcome in per_charger]
    finally:
        await asyncio.gather(*(charger.stop() for charger in chargers))


def _is_up(result: FleetResult) -> bool:
    return result.error is None and result.boot_status == RegistrationStatus.accepted


async def _charge(
    charger: SimulatedCharger, plans: Sequence[SessionPlan], clock: SimClock, report: Progress
) -> list[SessionOutcome]:
    outcomes: list[SessionOutcome | None] = [None] * len(plans)

    async def connector_queue(connector_id: int) -> None:
        for index, plan in enumerate(plans):
            if plan.connector_id == connector_id:
                outcomes[index] = await _session(charger, plan, clock, report)

    await asyncio.gather(*(connector_queue(c) for c in sorted({plan.connector_id for plan in plans})))
    return [outcome for outcome in outcomes if outcome is not None]


async def _session(
    charger: SimulatedCharger, plan: SessionPlan, clock: SimClock, report: Progress
) -> SessionOutcome:
    # A fleet's drivers do not all arrive at once: a plan may leave the connector free a while first.
    await clock.sleep(plan.arrives_after_s)
    report(charger.id, f"connector {plan.connector_id}: session started")
    try:
        truth = await charger.run_session(plan, clock)
    # NotAccepted: the backend reset the charger and has not accepted its new boot yet.
    except (SessionError, TimeoutError, OCPPError, LinkError, NotAccepted) as exc:
        report(charger.id, f"connector {plan.connector_id}: session failed")
        return SessionFailure(charger.id, plan.connector_id, _describe(exc))
    report(charger.id, f"connector {plan.connector_id}: transaction {truth.transaction_id} done")
    return truth


def _ignore(charger_id: str, stage: str) -> None:
    pass


async def _bring_up(charger: SimulatedCharger, report: Progress) -> FleetResult:
    report(charger.id, "connecting")
    try:
        await charger.start()
    except LinkError as exc:
        report(charger.id, "failed")
        return FleetResult(charger.id, connected=False, error=str(exc))
    report(charger.id, "connected")
    return await boot_and_announce(charger, report)


async def boot_and_announce(charger: SimulatedCharger, report: Progress) -> FleetResult:
    """Boot (a boot left unanswered is sent again), then report every connector Available and
    heartbeat once; a failure is the charger's result, not an exception."""
    started = time.perf_counter()
    try:
        reply = await charger.run_boot(resends=BOOT_RESENDS)
    except (TimeoutError, OCPPError, LinkError) as exc:
        report(charger.id, "failed")
        return FleetResult(charger.id, connected=True, error=_describe(exc))
    result = FleetResult(
        charger.id,
        connected=True,
        boot_status=str(reply.status),
        heartbeat_interval=charger.heartbeat_interval,
        boot_rtt_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    report(charger.id, "booted")
    if charger.registration != RegistrationStatus.accepted:
        return result
    try:
        for connector_id in range(charger.connectors + 1):
            await charger.send_status(connector_id, ChargePointStatus.available)
        report(charger.id, "available")
        await charger.heartbeat()
    except (TimeoutError, OCPPError, LinkError) as exc:
        report(charger.id, "failed")
        return replace(result, error=_describe(exc))
    report(charger.id, "done")
    return result


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
