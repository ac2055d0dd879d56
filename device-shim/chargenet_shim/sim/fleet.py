"""Bring up many simulated chargers at once: connect, boot, report Available, heartbeat; then charge.

A fleet may mix OCPP versions: each charger is a SimulatedCharger (1.6) or a SimulatedCharger201
as `versions` says, brought up and charged the same way, and its result says which it spoke.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16.enums import ChargePointStatus, RegistrationStatus

from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.link import LinkError
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim.chaos import ChaosConfig
from chargenet_shim.sim.charger201 import SimulatedCharger201
from chargenet_shim.sim.charger_state import NotAccepted
from chargenet_shim.sim.charging import SessionError
from chargenet_shim.sim.session import SessionPlan, SessionTruth
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import SimulatedCharger

Progress = Callable[[str, str], None]
FleetCharger = SimulatedCharger | SimulatedCharger201
# Runs next to a fleet's sessions, given the chargers that came up.
Alongside = Callable[[list[FleetCharger]], Awaitable[None]]
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
    ocpp_version: OcppVersion = OcppVersion.V16


def parse_versions(spec: str) -> list[OcppVersion]:
    """`--ocpp-versions`: a comma-separated cycle over the fleet, "1.6,2.0.1" every other charger
    2.0.1, "1.6,1.6,2.0.1" every third; "2.0.1" all of them. A bare number is as good as its name."""
    names = [part.strip() for part in spec.split(",") if part.strip()]
    try:
        versions = [OcppVersion(name if name.startswith("ocpp") else f"ocpp{name}") for name in names]
    except ValueError as exc:
        known = ", ".join(v.schemas for v in OcppVersion)
        raise ValueError(f"OCPP versions are {known}, comma-separated; not {spec!r}") from exc
    if not versions:
        raise ValueError("no OCPP version given")
    return versions


def versions_for(count: int, cycle: Sequence[OcppVersion] | None) -> list[OcppVersion]:
    """Each of `count` chargers' version, `cycle` repeated over them (none: all 1.6)."""
    repeated = list(cycle or [OcppVersion.V16])
    return [repeated[index % len(repeated)] for index in range(count)]


def new_charger(credentials: ChargerCredentials, version: OcppVersion, **options: Any) -> FleetCharger:
    """A simulated charger speaking `version` (SimulatedCharger's options for both)."""
    if version is OcppVersion.V201:
        return SimulatedCharger201(credentials, **options)
    return SimulatedCharger(credentials, **options)


async def run_fleet(
    credentials: list[ChargerCredentials],
    on_progress: Progress | None = None,
    concurrency: int = 20,
    hold: Callable[[], Awaitable[None]] | None = None,
    versions: Sequence[OcppVersion] | None = None,
) -> list[FleetResult]:
    """One result per charger, in the order given; a failing charger does not stop the others.

    `concurrency` bounds how many chargers are being brought up at once; `hold`, when
    given, is awaited once all are up, while every charger is still connected. `versions` is
    the cycle of OCPP versions over the fleet (versions_for; none: all 1.6).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    report = on_progress or _ignore
    spoken = versions_for(len(credentials), versions)
    chargers = [new_charger(creds, version) for creds, version in zip(credentials, spoken, strict=True)]

    async def bounded(charger: FleetCharger) -> FleetResult:
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
    versions: Sequence[OcppVersion] | None = None,
) -> list[SessionOutcome]:
    """Bring every charger up, then run its plans; one outcome per plan, chargers in the order given.

    The sessions start once the whole fleet is up, so the fleet shares one start time. A
    charger's connectors charge at the same time, each working through its own plans in
    order. `chaos` is seeded per charger (seed + position). `concurrency` bounds the
    bring-up only. `alongside`, when given, runs next to the sessions with the chargers that
    came up (a scenario's faults, scenario_run.py); `hold` is awaited once both are over,
    while every charger is still connected, as in run_fleet. `versions` as in run_fleet.
    """
    if len(plans_per_charger) != len(credentials):
        raise ValueError("one list of plans per charger")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    report = on_progress or _ignore
    spoken = versions_for(len(credentials), versions)
    chargers = [
        new_charger(
            creds,
            version,
            connectors=max([2, *(plan.connector_id for plan in plans)]),
            chaos=chaos.for_charger(index) if chaos else None,
            clock=clock,
        )
        for index, (creds, plans, version) in enumerate(
            zip(credentials, plans_per_charger, spoken, strict=True)
        )
    ]

    async def bring_up(charger: FleetCharger) -> FleetResult:
        async with gate:
            return await _bring_up(charger, report)

    async def visit(
        charger: FleetCharger, up: FleetResult, plans: Sequence[SessionPlan]
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
    charger: FleetCharger, plans: Sequence[SessionPlan], clock: SimClock, report: Progress
) -> list[SessionOutcome]:
    outcomes: list[SessionOutcome | None] = [None] * len(plans)

    async def connector_queue(connector_id: int) -> None:
        for index, plan in enumerate(plans):
            if plan.connector_id == connector_id:
                outcomes[index] = await _session(charger, plan, clock, report)

    await asyncio.gather(*(connector_queue(c) for c in sorted({plan.connector_id for plan in plans})))
    return [outcome for outcome in outcomes if outcome is not None]


async def _session(
    charger: FleetCharger, plan: SessionPlan, clock: SimClock, report: Progress
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


async def _bring_up(charger: FleetCharger, report: Progress) -> FleetResult:
    report(charger.id, "connecting")
    try:
        await charger.start()
    except LinkError as exc:
        report(charger.id, "failed")
        return FleetResult(charger.id, connected=False, error=str(exc), ocpp_version=charger.ocpp_version)
    report(charger.id, "connected")
    return await boot_and_announce(charger, report)


async def boot_and_announce(charger: FleetCharger, report: Progress) -> FleetResult:
    """Boot (a boot left unanswered is sent again), then report every connector Available and
    heartbeat once; a failure is the charger's result, not an exception."""
    started = time.perf_counter()
    try:
        reply = await charger.run_boot(resends=BOOT_RESENDS)
    except (TimeoutError, OCPPError, LinkError) as exc:
        report(charger.id, "failed")
        return FleetResult(
            charger.id, connected=True, error=_describe(exc), ocpp_version=charger.ocpp_version
        )
    result = FleetResult(
        charger.id,
        connected=True,
        boot_status=str(reply.status),
        heartbeat_interval=charger.heartbeat_interval,
        boot_rtt_ms=round((time.perf_counter() - started) * 1000, 1),
        ocpp_version=charger.ocpp_version,
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
