"""Bring up many simulated chargers at once: connect, boot, report Available, heartbeat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ocpp.exceptions import OCPPError
from ocpp.v16.enums import ChargePointStatus, RegistrationStatus

from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.link import LinkError
from chargenet_shim.simulator import SimulatedCharger

Progress = Callable[[str, str], None]


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
    return await _boot_and_announce(charger, report)


async def _boot_and_announce(charger: SimulatedCharger, report: Progress) -> FleetResult:
    started = time.perf_counter()
    try:
        reply = await charger.run_boot()
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
