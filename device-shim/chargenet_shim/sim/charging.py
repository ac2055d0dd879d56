"""One charging session as the charger tells it to the backend (OCPP 1.6).

Lifecycle of the connector, and what the backend is sent:

    Preparing        cable plugged in                    StatusNotification
                     driver presents the tag             Authorize (stop here unless Accepted)
                     energy offered                      StartTransaction -> transactionId
    Charging         every meter_interval_s              MeterValues (Transaction.Begin first,
                                                         then Sample.Periodic)
    SuspendedEV      EV full: it draws no more power,    MeterValues continue (power 0): the
                     the car stays plugged in for        idle (parking) time is on the meter's
                     idle_minutes_after                  timeline too
                     driver unplugs                      MeterValues (Transaction.End),
                                                         StopTransaction (reason EVDisconnected,
                                                         or the plan's stop_reason)
    Finishing        transaction over
    Available        vehicle gone: the charger tells what the connector is now
                     (charger_state.py), Unavailable if the backend made it Inoperative

The charger acts as with StopTransactionOnInvalidId=false: Authorize has already checked
the tag, the idTagInfo in the StartTransaction reply does not end the session.
Transaction messages go through the charger's Outbox, so an outage mid-session delays
them but loses none; statuses sent while offline are lost.

A reset, an injected fault or an UnlockConnector ends a session early (Visit.interrupt):
at once, with a Transaction.End sample and a StopTransaction giving the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from typing import TYPE_CHECKING

from ocpp.v16 import call
from ocpp.v16.datatypes import MeterValue, SampledValue
from ocpp.v16.enums import (
    AuthorizationStatus,
    ChargePointStatus,
    Measurand,
    ReadingContext,
    Reason,
    UnitOfMeasure,
)

from chargenet_shim.link import LinkError
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.sim.outbox import TransactionRef
from chargenet_shim.sim.session import (
    ChargeCurve,
    MeterReading,
    SessionPlan,
    SessionTruth,
    Step,
    full_reported_at_s,
    reading_at,
    timeline,
)
from chargenet_shim.sim.simclock import SimClock

if TYPE_CHECKING:
    from chargenet_shim.sim.charger201 import SimulatedCharger201
    from chargenet_shim.sim.simulator import SimulatedCharger

LOG = logging.getLogger(__name__)

_CONTEXTS = {
    Step.BEGIN: ReadingContext.transaction_begin,
    Step.PERIODIC: ReadingContext.sample_periodic,
    Step.END: ReadingContext.transaction_end,
}


class SessionError(RuntimeError):
    """The session could not take place: tag refused, or the backend refused its transaction."""


async def run_session(charger: SimulatedCharger, plan: SessionPlan, clock: SimClock) -> SessionTruth:
    if plan.connector_id > charger.connectors:
        raise ValueError(f"{charger.id} has no connector {plan.connector_id}")
    if plan.meter_interval_s is None:
        interval = charger.configuration.meter_value_sample_interval
        plan = plan.model_copy(update={"meter_interval_s": interval})
    visit = Visit(charger, plan, clock)
    charger.occupy(visit)
    try:
        return await visit.run()
    finally:
        await charger.vacate(visit)


class Visit:
    """One session while it runs; times are offsets in simulated seconds from the StartTransaction."""

    def __init__(
        self, charger: SimulatedCharger | SimulatedCharger201, plan: SessionPlan, clock: SimClock
    ) -> None:
        self.charger = charger
        self.plan = plan
        self.clock = clock
        self.curve = ChargeCurve.for_plan(plan)
        self.transaction = TransactionRef()
        # The connector's physical register at the start; what the charger sends goes through its meter.
        self.register_base = charger.meter_wh[plan.connector_id]
        self.meter = charger.meters[plan.connector_id]
        self.started_at: dt.datetime | None = None
        self.stopped_at: dt.datetime | None = None
        # Set once the charger has the connector back (ChargerState.vacate).
        self.ended = asyncio.Event()
        self._interrupted = asyncio.Event()
        self._interrupt_reason: Reason | None = None
        # What the visit waits for now: tells a slow session from a stuck one (the chaos run's report).
        self.stage = "plugging in"

    def describe(self) -> str:
        """Where the session is, for a report on sessions that have not ended."""
        elapsed = "not started" if self.started_at is None else f"{self.elapsed_s():.0f} s after its start"
        online = "online" if self.charger.link.online else "offline"
        backlog = self.charger.outbox.backlog
        return f"connector {self.plan.connector_id}: {self.stage}, {elapsed}, {online}, {backlog} queued"

    def elapsed_s(self) -> float:
        """Simulated seconds since the StartTransaction (0 before it)."""
        return 0.0 if self.started_at is None else (self.clock.now() - self.started_at).total_seconds()

    def interrupt(self, reason: Reason) -> None:
        """End the session now, with `reason` in its StopTransaction (the first reason given counts)."""
        self._interrupt_reason = self._interrupt_reason or reason
        self._interrupted.set()

    def register_wh_now(self) -> float:
        """The connector's physical register at this moment of the session (what really flowed)."""
        if self.started_at is None:
            return self.register_base
        offset = ((self.stopped_at or self.clock.now()) - self.started_at).total_seconds()
        return self.register_base + self.curve.energy_wh_at(max(offset, 0.0))

    async def run(self) -> SessionTruth:
        await self._announce(ChargePointStatus.preparing, self.clock.now())
        # This charger authorizes online only: a driver finding it offline waits until its screen
        # says it is back, then taps the tag.
        self.stage = "waiting for the charger to be back online"
        await self.charger.link.wait_online()
        self.stage = "awaiting the Authorize reply"
        await self._authorize()
        self.started_at = started_at = self.clock.now()
        start = call.StartTransaction(
            connector_id=self.plan.connector_id,
            id_tag=self.plan.id_tag,
            meter_start=math.floor(self.meter.register_wh(self.register_base)),
            timestamp=ocpp_timestamp(started_at),
        )
        self.stage = "sending StartTransaction"
        await self.charger.outbox.transaction_call(start, self.transaction)
        await self._announce(ChargePointStatus.charging, started_at)
        readings, stop_offset = await self._charge(started_at)

        self.stopped_at = stopped_at = started_at + dt.timedelta(seconds=stop_offset)
        reason = self._interrupt_reason or self.plan.stop_reason or Reason.ev_disconnected
        stop = call.StopTransaction(
            meter_stop=readings[-1].register_wh,
            timestamp=ocpp_timestamp(stopped_at),
            # Still None if the StartTransaction is queued: the Outbox fills it in from its reply.
            transaction_id=self.transaction.id,
            reason=reason,
            id_tag=self.plan.id_tag,
        )
        self.stage = "sending StopTransaction"
        await self._send_reading(readings[-1])
        await self.charger.outbox.transaction_call(stop, self.transaction)
        self.charger.meter_wh[self.plan.connector_id] = self.register_base + self.curve.energy_wh_at(
            stop_offset
        )
        await self._announce(ChargePointStatus.finishing, stopped_at)

        # The truth carries the backend's transaction id: wait until the Start has been answered.
        self.stage = "waiting for its queued messages to be delivered"
        await self.charger.outbox.flushed()
        if self.transaction.id is None:
            raise SessionError(f"{self.charger.id}: the backend refused the StartTransaction")
        return self._truth(self.transaction.id, start.meter_start, readings, stop_offset, reason)

    def _truth(
        self,
        transaction_id: int | str,
        meter_start_wh: int,
        readings: list[MeterReading],
        stop_offset: float,
        reason: Reason,
        ocpp_version: str = "ocpp1.6",
    ) -> SessionTruth:
        """What happened in the session that ran `stop_offset` seconds from its start."""
        assert self.started_at is not None and self.stopped_at is not None, "the session has ended"
        return SessionTruth(
            charger_id=self.charger.id,
            connector_id=self.plan.connector_id,
            id_tag=self.plan.id_tag,
            transaction_id=transaction_id,
            meter_start_wh=meter_start_wh,
            meter_stop_wh=readings[-1].register_wh,
            started_at=self.started_at,
            stopped_at=self.stopped_at,
            charging_s=min(full_reported_at_s(self.curve), stop_offset),
            idle_s=max(stop_offset - full_reported_at_s(self.curve), 0.0),
            peak_power_kw=self.curve.peak_power_kw,
            stop_reason=reason,
            readings=tuple(readings),
            ocpp_version=ocpp_version,
        )

    async def _authorize(self) -> None:
        status = await self.charger.authorize(self.plan.id_tag)
        if status != AuthorizationStatus.accepted:
            # The driver unplugs again; the connector is back to idle (ChargerState.vacate).
            raise SessionError(f"{self.charger.id}: Authorize({self.plan.id_tag}) answered {status}")

    async def _charge(self, started_at: dt.datetime) -> tuple[list[MeterReading], float]:
        """From the Transaction.Begin sample to the Transaction.End one, and the offset of the latter."""
        readings: list[MeterReading] = []
        offset = 0.0
        for planned, step in timeline(self.plan, self.curve):
            self.stage = f"waiting until {planned:.0f} s for its {step.name.lower()} step"
            if await self.clock.wait_until(started_at + dt.timedelta(seconds=planned), self._interrupted):
                # Stopped early: the Transaction.End sample is taken there and then.
                offset, step = min(max(self.elapsed_s(), offset), planned), Step.END
            else:
                offset = planned
            moment = started_at + dt.timedelta(seconds=offset)
            if step is Step.FULL:
                await self._ev_full(moment)
                continue
            physical_wh = self.register_base + self.curve.energy_wh_at(offset)
            reading = self.meter.shown(
                reading_at(self.curve, self.register_base, offset, moment, _CONTEXTS[step]), physical_wh
            )
            readings.append(reading)
            if step is Step.END:
                break
            self.stage = f"sending its {step.name.lower()} meter values of {offset:.0f} s"
            await self._send_reading(reading)
        return readings, offset

    async def _ev_full(self, moment: dt.datetime) -> None:
        """The EV stops drawing power and stays plugged in."""
        await self._announce(ChargePointStatus.suspended_ev, moment)

    async def _send_reading(self, reading: MeterReading) -> None:
        """A sample before the Transaction.End one, which goes with the transaction's end."""
        request = call.MeterValues(
            connector_id=self.plan.connector_id,
            meter_value=[meter_value(reading)],
            transaction_id=self.transaction.id,
        )
        await self.charger.outbox.transaction_call(request, self.transaction)

    async def _announce(self, status: ChargePointStatus, moment: dt.datetime) -> None:
        self.stage = f"sending status {status}"
        try:
            await self.charger.send_status(self.plan.connector_id, status, timestamp=moment)
        except (LinkError, TimeoutError) as exc:
            LOG.info(
                "%s: status %s on connector %d lost: %s", self.charger.id, status, self.plan.connector_id, exc
            )


def meter_value(reading: MeterReading) -> MeterValue:
    """OCPP 1.6 sends values as strings: fixed decimals, the register in whole Wh."""

    def sampled(value: str, measurand: Measurand, unit: UnitOfMeasure) -> SampledValue:
        return SampledValue(value=value, context=reading.context, measurand=measurand, unit=unit)

    return MeterValue(
        timestamp=ocpp_timestamp(reading.timestamp),
        sampled_value=[
            sampled(str(reading.register_wh), Measurand.energy_active_import_register, UnitOfMeasure.wh),
            sampled(f"{reading.power_w:.1f}", Measurand.power_active_import, UnitOfMeasure.w),
            sampled(f"{reading.current_a:.1f}", Measurand.current_import, UnitOfMeasure.a),
            sampled(f"{reading.soc_percent:.1f}", Measurand.soc, UnitOfMeasure.percent),
            sampled(f"{reading.temperature_c:.1f}", Measurand.temperature, UnitOfMeasure.celsius),
        ],
    )
