"""One charging session as a 2.0.1 charger tells it: TransactionEvents (OCPP 2.0.1 E01-E07).

The physics, the timeline and the truth are the 1.6 session's (session.py, charging.Visit);
only the words differ:

    Occupied     cable plugged in                      StatusNotification
                 driver presents the tag               Authorize (idToken ISO14443; a remote
                                                       start's token as the backend sent it)
    Started      energy offered (TxStartPoint          TransactionEvent Started, seqNo 0, triggerReason
                 PowerPathClosed)                      Authorized (RemoteStart), chargingState
                                                       Charging, idToken, evse, Transaction.Begin
    Updated      every TxUpdatedInterval               Sample.Periodic register and power
                 EV full, still plugged in             chargingState SuspendedEV (ChargingStateChanged);
                                                       periodic samples go on through the idle time
    Ended        driver unplugs (or stopped early)     triggerReason EVDeparted / RemoteStop /
                                                       StopAuthorized / ..., stoppedReason,
                                                       Transaction.End register
    Available    vehicle gone                          StatusNotification (charger_state.py)

The charger names the transaction itself (transactionId), numbers its events from seqNo 0 and
sends them through the same Outbox as 1.6's transaction messages: an outage delays them but
loses none, in order, each made while the link was down marked `offline`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import TYPE_CHECKING

from ocpp.v16.enums import ChargePointStatus, Reason
from ocpp.v201 import call
from ocpp.v201.datatypes import (
    EVSEType,
    IdTokenType,
    MeterValueType,
    SampledValueType,
    TransactionType,
    UnitOfMeasureType,
)
from ocpp.v201.enums import (
    AuthorizationStatusEnumType,
    ChargingStateEnumType,
    IdTokenEnumType,
    MeasurandEnumType,
    ReadingContextEnumType,
    ReasonEnumType,
    TransactionEventEnumType,
    TriggerReasonEnumType,
)

from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim.charging import SessionError, Visit
from chargenet_shim.sim.session import MeterReading, SessionPlan, SessionTruth, full_reported_at_s
from chargenet_shim.sim.simclock import SimClock

if TYPE_CHECKING:
    from chargenet_shim.sim.charger201 import SimulatedCharger201

# Every EVSE has one connector: our connector id is the 2.0.1 EVSE id (the shared design).
CONNECTOR_OF_EVSE = 1
# The simulator's reasons (1.6's words, as the shared state and the truth keep them), as a 2.0.1
# Ended event says them: (triggerReason, stoppedReason).
_ENDED_BY: dict[str, tuple[TriggerReasonEnumType, ReasonEnumType]] = {
    Reason.ev_disconnected: (TriggerReasonEnumType.ev_departed, ReasonEnumType.ev_disconnected),
    Reason.local: (TriggerReasonEnumType.stop_authorized, ReasonEnumType.local),
    Reason.remote: (TriggerReasonEnumType.remote_stop, ReasonEnumType.remote),
    Reason.hard_reset: (TriggerReasonEnumType.reset_command, ReasonEnumType.immediate_reset),
    Reason.soft_reset: (TriggerReasonEnumType.reset_command, ReasonEnumType.reboot),
    Reason.reboot: (TriggerReasonEnumType.abnormal_condition, ReasonEnumType.reboot),
    Reason.unlock_command: (TriggerReasonEnumType.unlock_command, ReasonEnumType.other),
    Reason.de_authorized: (TriggerReasonEnumType.deauthorized, ReasonEnumType.de_authorized),
    Reason.emergency_stop: (TriggerReasonEnumType.abnormal_condition, ReasonEnumType.emergency_stop),
    Reason.power_loss: (TriggerReasonEnumType.abnormal_condition, ReasonEnumType.power_loss),
}
_OTHER = (TriggerReasonEnumType.abnormal_condition, ReasonEnumType.other)


def new_transaction_id() -> str:
    """Unique per charger and unguessable enough; 2.0.1 allows up to 36 characters."""
    return uuid.uuid4().hex[:24]


async def run_session(
    charger: SimulatedCharger201,
    plan: SessionPlan,
    clock: SimClock,
    *,
    token_type: IdTokenEnumType = IdTokenEnumType.iso14443,
) -> SessionTruth:
    if plan.connector_id > charger.connectors:
        raise ValueError(f"{charger.id} has no EVSE {plan.connector_id}")
    if plan.meter_interval_s is None:
        plan = plan.model_copy(update={"meter_interval_s": charger.configuration.meter_value_sample_interval})
    return await run_visit(charger, Visit201(charger, plan, clock, token_type=token_type))


async def run_visit(charger: SimulatedCharger201, visit: Visit201) -> SessionTruth:
    """The visit on its connector, from plugging in to the connector given back."""
    charger.occupy(visit)
    try:
        return await visit.run()
    finally:
        await charger.vacate(visit)


class Visit201(Visit):
    """One session while it runs, in TransactionEvents; the same timeline as 1.6's Visit."""

    def __init__(
        self,
        charger: SimulatedCharger201,
        plan: SessionPlan,
        clock: SimClock,
        *,
        token_type: IdTokenEnumType = IdTokenEnumType.iso14443,
        remote_start_id: int | None = None,
        authorize_first: bool = True,
    ) -> None:
        super().__init__(charger, plan, clock)
        self.station = charger
        self.token_type = token_type
        self.remote_start_id = remote_start_id
        self.authorize_first = authorize_first
        self.transaction_id = new_transaction_id()
        self._seq_no = itertools.count()
        self.charging_state = ChargingStateEnumType.charging

    async def run(self) -> SessionTruth:
        await self._announce(ChargePointStatus.preparing, self.clock.now())
        # Online authorization only, as the 1.6 charger: a driver finding it offline waits.
        self.stage = "waiting for the charger to be back online"
        await self.charger.link.wait_online()
        if self.authorize_first:
            self.stage = "awaiting the Authorize reply"
            await self._authorize()
        self.started_at = started_at = self.clock.now()
        readings, stop_offset = await self._charge(started_at)

        self.stopped_at = started_at + dt.timedelta(seconds=stop_offset)
        reason = self._interrupt_reason or self.plan.stop_reason or Reason.ev_disconnected
        trigger, stopped_reason = _ENDED_BY.get(reason, _OTHER)
        # Unplugged: nothing is connected any more; stopped otherwise: the EV still is.
        departed = reason == Reason.ev_disconnected
        self.charging_state = ChargingStateEnumType.idle if departed else ChargingStateEnumType.ev_connected
        self.stage = "sending TransactionEvent Ended"
        await self._send(
            TransactionEventEnumType.ended, trigger, readings[-1], stop_offset, stopped_reason=stopped_reason
        )
        self.charger.meter_wh[self.plan.connector_id] = self.register_base + self.curve.energy_wh_at(
            stop_offset
        )
        self.stage = "waiting for its queued messages to be delivered"
        await self.charger.outbox.flushed()
        if self.transaction.refused:
            raise SessionError(f"{self.charger.id}: the backend refused transaction {self.transaction_id}")
        return self._truth(
            self.transaction_id, readings[0].register_wh, readings, stop_offset, reason, OcppVersion.V201
        )

    async def _authorize(self) -> None:
        status = await self.station.authorize(self.plan.id_tag, self.token_type)
        if status != AuthorizationStatusEnumType.accepted:
            raise SessionError(f"{self.charger.id}: Authorize({self.plan.id_tag}) answered {status}")

    async def _ev_full(self, moment: dt.datetime) -> None:
        self.charging_state = ChargingStateEnumType.suspended_ev
        offset = (moment - self._started()).total_seconds()
        await self._send(
            TransactionEventEnumType.updated, TriggerReasonEnumType.charging_state_changed, None, offset
        )

    async def _send_reading(self, reading: MeterReading) -> None:
        offset = (reading.timestamp - self._started()).total_seconds()
        if reading.context == ReadingContextEnumType.transaction_begin:
            trigger = (
                TriggerReasonEnumType.remote_start
                if self.remote_start_id is not None
                else TriggerReasonEnumType.authorized
            )
            await self._send(TransactionEventEnumType.started, trigger, reading, offset)
        else:
            await self._send(
                TransactionEventEnumType.updated, TriggerReasonEnumType.meter_value_periodic, reading, offset
            )

    async def trigger_update(self) -> None:
        """TriggerMessage TransactionEvent: an Updated event with the register now."""
        await self._send(
            TransactionEventEnumType.updated, TriggerReasonEnumType.trigger, None, self.elapsed_s()
        )

    def _started(self) -> dt.datetime:
        if self.started_at is None:
            raise RuntimeError("the transaction has not started")
        return self.started_at

    async def _send(
        self,
        event_type: TransactionEventEnumType,
        trigger: TriggerReasonEnumType,
        reading: MeterReading | None,
        offset: float,
        *,
        stopped_reason: ReasonEnumType | None = None,
    ) -> None:
        started = event_type == TransactionEventEnumType.started
        moment = self._started() + dt.timedelta(seconds=offset)
        event = call.TransactionEvent(
            event_type=event_type,
            timestamp=ocpp_timestamp(moment),
            trigger_reason=trigger,
            seq_no=next(self._seq_no),
            transaction_info=TransactionType(
                transaction_id=self.transaction_id,
                charging_state=self.charging_state,
                time_spent_charging=round(min(full_reported_at_s(self.curve), offset)),
                stopped_reason=stopped_reason,
                remote_start_id=self.remote_start_id if started else None,
            ),
            meter_value=None if reading is None else [meter_value(reading)],
            # E04: an event the charger made while it could not reach the backend.
            offline=None if self.charger.link.online else True,
            evse=EVSEType(id=self.plan.connector_id, connector_id=CONNECTOR_OF_EVSE) if started else None,
            id_token=IdTokenType(id_token=self.plan.id_tag, type=self.token_type) if started else None,
        )
        await self.charger.outbox.transaction_call(event, self.transaction)


def meter_value(reading: MeterReading) -> MeterValueType:
    """2.0.1 sends numbers: the register in whole Wh, the rest to one decimal (TxUpdatedMeasurands;
    2.0.1 has no Temperature measurand, 1.6's fifth sample)."""

    def sampled(value: float, measurand: MeasurandEnumType, unit: str) -> SampledValueType:
        return SampledValueType(
            value=value,
            context=ReadingContextEnumType(reading.context.value),
            measurand=measurand,
            unit_of_measure=UnitOfMeasureType(unit=unit),
        )

    return MeterValueType(
        timestamp=ocpp_timestamp(reading.timestamp),
        sampled_value=[
            sampled(reading.register_wh, MeasurandEnumType.energy_active_import_register, "Wh"),
            sampled(round(reading.power_w, 1), MeasurandEnumType.power_active_import, "W"),
            sampled(round(reading.current_a, 1), MeasurandEnumType.current_import, "A"),
            sampled(round(reading.soc_percent, 1), MeasurandEnumType.soc, "Percent"),
        ],
    )
