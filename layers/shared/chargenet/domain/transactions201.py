"""OCPP 2.0.1 transactions in the domain's terms: the payloads, and a TransactionEvent as the
`SessionEvent`s the session fold already understands. Pure: no I/O.

A 2.0.1 transaction is told in TransactionEvents (Started, Updated..., Ended) numbered by seqNo
per transaction. Each maps to the same facts a 1.6 charger states in StartTransaction,
MeterValues, StatusNotification and StopTransaction, each fact carrying the event's seqNo, so
the fold sees gaps; an event that states nothing else leaves a SEQUENCE marker for its number.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from chargenet.domain.meter_values import MeterReading, SampledValue201, reading_201
from chargenet.domain.models import MAX_READING, ChargerTime, OcppPayload
from chargenet.domain.sessions import EventKind, SessionEvent

# Where a 2.0.1 charger says the register was read at the transaction's edges.
BEGIN_CONTEXT = "Transaction.Begin"
END_CONTEXT = "Transaction.End"
# 2.0.1: stoppedReason "MAY only be omitted when Reason is Local".
DEFAULT_STOPPED_REASON = "Local"
# The chargingState during a transaction, as the 1.6 status the fold reads the same way (idle
# fees run in SuspendedEV). EVConnected is plugged in without drawing: before the first energy
# it is not idle (1.6's Preparing), after it the fold's own rule (no power after energy) makes
# it parking. Idle means no car: the connector is free.
STATUS_OF_CHARGING_STATE = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
    "EVConnected": "Preparing",
    "Idle": "Available",
}
CAR_GONE_STATUS = "Available"
# The connector's status a transaction tells, stored beside its StatusNotifications (newer wins
# by the charger's clock): 2.0.1's connectorStatus says Occupied both for a car plugged in and
# waiting for its driver to pay and for one in a transaction. While one runs, the connector's
# status is the transaction's chargingState (busy whatever it is: the EVSE is taken); a Started
# that names none was most likely started by the plug-in. An Ended with the car still plugged in
# leaves the connector Finishing, 1.6's word for it, until the car leaves.
STARTED_WITHOUT_STATE_STATUS = "EVConnected"
ENDED_WITH_CAR_STATUS = "Finishing"
# What says the car has left, in an event's triggerReason or the Ended's stoppedReason.
EV_DEPARTED_TRIGGER = "EVDeparted"
EV_DISCONNECTED_REASON = "EVDisconnected"
# An idToken in a stop's authorization is whoever stopped it (a group member, a master pass):
# it does not make the session theirs.
STOP_AUTHORIZED_TRIGGER = "StopAuthorized"
# How often plain readings have the running cost priced: pricing folds the whole log, whose read
# and CPU grow with the session (bench figures in the report); between two, readings take the hot
# path, the reply carries no totalCost and the station keeps showing the last one.
RUNNING_COST_INTERVAL = timedelta(minutes=5)
# The first event of a transaction must name its EVSE; a station that leaves it out has only one.
SOLE_EVSE_ID = 1


class TransactionEventType(StrEnum):
    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


class IdToken(OcppPayload):
    """Every token type (ISO14443, eMAID, Central, ...) keys on `id_token` in the tag directory."""

    id_token: str
    type: str


class Evse(OcppPayload):
    id: int = Field(gt=0)  # our connector id: an EVSE charges one car at a time
    connector_id: int | None = None


class MeterValue201(OcppPayload):
    timestamp: ChargerTime
    sampled_value: list[SampledValue201]

    @field_validator("sampled_value")
    @classmethod
    def _within_bounds(cls, sampled: list[SampledValue201]) -> list[SampledValue201]:
        for value in sampled:
            in_base = value.in_base_unit()
            if in_base is not None and abs(in_base) > MAX_READING:
                raise ValueError(f"sampled values must be within +-{MAX_READING}")
        return sampled

    def reading(self) -> MeterReading:
        return reading_201(self.timestamp, self.sampled_value)

    def in_context(self, context: str) -> bool:
        return any(value.context == context for value in self.sampled_value)


class TransactionInfo(OcppPayload):
    transaction_id: str
    charging_state: str | None = None
    stopped_reason: str | None = None
    remote_start_id: int | None = None


class TransactionEventRequest(OcppPayload):
    event_type: TransactionEventType
    timestamp: ChargerTime
    trigger_reason: str
    seq_no: int = Field(ge=0)
    transaction_info: TransactionInfo
    offline: bool = False
    evse: Evse | None = None
    id_token: IdToken | None = None
    meter_value: list[MeterValue201] = []

    @property
    def driver_tag(self) -> str | None:
        """The tag this event makes the session's, if it names one (an empty idToken names none)."""
        if self.id_token is None or not self.id_token.id_token:
            return None
        stopping = (
            self.event_type is TransactionEventType.ENDED or self.trigger_reason == STOP_AUTHORIZED_TRIGGER
        )
        return None if stopping else self.id_token.id_token

    @property
    def car_left(self) -> bool:
        return (
            self.trigger_reason == EV_DEPARTED_TRIGGER
            or self.transaction_info.charging_state == "Idle"
            or self.transaction_info.stopped_reason == EV_DISCONNECTED_REASON
        )


class AuthorizeRequest(OcppPayload):
    id_token: IdToken
    certificate: str | None = None
    iso15118_certificate_hash_data: list[dict[str, Any]] | None = None

    @property
    def plug_and_charge(self) -> bool:
        """An ISO 15118 contract to verify: the contract certificate or its OCSP hash data."""
        return self.certificate is not None or bool(self.iso15118_certificate_hash_data)


class MeterValuesRequest(OcppPayload):
    evse_id: int = Field(ge=0)  # 0: the charging station's main meter
    meter_value: list[MeterValue201]


def transaction_key(charger_id: str, transaction_id: str) -> str:
    """What the network-wide transaction id is allocated for: a 2.0.1 charger picks its ids
    itself, unique on that charger only."""
    return f"ocpp2.0.1|{charger_id}|{transaction_id}"


def session_events(request: TransactionEventRequest, previous_register_wh: int | None) -> list[SessionEvent]:
    """The facts one TransactionEvent states, each with its seqNo. `previous_register_wh`: the
    connector's last register before it, the Started's start register when it carries none."""
    readings = [meter_value.reading() for meter_value in request.meter_value]
    events = [_edge_event(request, readings, previous_register_wh)]
    events += [SessionEvent(kind=EventKind.METER, at=r.at, reading=r) for r in readings]
    status = CAR_GONE_STATUS if request.car_left else _status(request.transaction_info.charging_state)
    if status is not None:
        events.append(SessionEvent(kind=EventKind.STATUS, at=request.timestamp, status=status))
    driver = request.driver_tag
    if driver is not None and request.event_type is not TransactionEventType.STARTED:
        events.append(SessionEvent(kind=EventKind.AUTHORIZED, at=request.timestamp, id_tag=driver))
    found = [event for event in events if event is not None]
    marked = found or [SessionEvent(kind=EventKind.SEQUENCE, at=request.timestamp)]
    return [event.model_copy(update={"seq_no": request.seq_no}) for event in marked]


def _edge_event(
    request: TransactionEventRequest, readings: list[MeterReading], previous_register_wh: int | None
) -> SessionEvent | None:
    if request.event_type is TransactionEventType.STARTED:
        begin = _register(request, readings, BEGIN_CONTEXT, latest=False)
        return SessionEvent(
            kind=EventKind.START,
            at=request.timestamp,
            connector_id=request.evse.id if request.evse else SOLE_EVSE_ID,
            id_tag=request.driver_tag,
            meter_start_wh=int(begin) if begin is not None else previous_register_wh,
            previous_register_wh=previous_register_wh,
        )
    if request.event_type is TransactionEventType.ENDED:
        end = _register(request, readings, END_CONTEXT, latest=True)
        return SessionEvent(
            kind=EventKind.STOP,
            at=request.timestamp,
            # None: the fold ends on the last register it knows.
            meter_stop_wh=int(end) if end is not None else None,
            stop_reason=request.transaction_info.stopped_reason or DEFAULT_STOPPED_REASON,
        )
    return None


def _register(
    request: TransactionEventRequest, readings: list[MeterReading], context: str, latest: bool
) -> Decimal | None:
    """The energy register read in `context`, else the event's first (or `latest`) one."""
    registers = [
        (meter_value.in_context(context), reading.at, reading.energy_wh)
        for meter_value, reading in zip(request.meter_value, readings, strict=True)
        if reading.energy_wh is not None
    ]
    in_context = [(at, wh) for matches, at, wh in registers if matches]
    candidates = sorted(in_context or [(at, wh) for _, at, wh in registers])
    if not candidates:
        return None
    return candidates[-1][1] if latest else candidates[0][1]


def connector_status(request: TransactionEventRequest) -> str | None:
    """The connector's status as of this event, None when it tells none (an Updated without a
    chargingState: its state has not changed)."""
    if request.event_type is TransactionEventType.ENDED:
        return CAR_GONE_STATUS if request.car_left else ENDED_WITH_CAR_STATUS
    if request.transaction_info.charging_state:
        return request.transaction_info.charging_state
    return STARTED_WITHOUT_STATE_STATUS if request.event_type is TransactionEventType.STARTED else None


def _status(charging_state: str | None) -> str | None:
    return STATUS_OF_CHARGING_STATE.get(charging_state) if charging_state else None


def running_cost_due(
    started_at: datetime, last_reading_at: datetime | None, readings: list[MeterReading]
) -> bool:
    """Whether `readings` reach a new RUNNING_COST_INTERVAL of the session's (charger) clock since
    the last reading: decided from the readings and the session record alone, the same in any
    delivery order, so a copy is answered as the first was."""
    latest = max(reading.at for reading in readings)
    previous = last_reading_at or started_at
    return (latest - started_at) // RUNNING_COST_INTERVAL != (previous - started_at) // RUNNING_COST_INTERVAL
