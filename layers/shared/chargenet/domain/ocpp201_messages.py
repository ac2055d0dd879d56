"""The OCPP 2.0.1 charger-level payloads chargenet handles, already checked against their schemas.

Each model reads only what the backend uses and says how it maps onto the domain's terms
(the same records the 1.6 messages fill): a boot onto `models.BootNotification`, a connector
status onto `models.ConnectorStatus` (our connector id is the EVSE id), a reported variable onto
a `DeviceModelEntry`. customData and fields nobody reads are ignored, not refused: the schema
has already decided what may be there.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from chargenet.domain.models import BootNotification, ChargerTime, OcppPayload


class Payload201(OcppPayload):
    """A 2.0.1 payload. Built on first use (defer_build): the ingest function of a 1.6-only fleet
    never validates one, and building every model at import would add to each cold start."""

    model_config = ConfigDict(defer_build=True)


# What a device-model value may keep: GetBaseReport's answers are for an operator's eyes,
# and a value may be up to 2500 characters (a certificate, a vendor's blob).
DEVICE_MODEL_VALUE_CHARS = 200


class Modem(Payload201):
    iccid: str | None = None
    imsi: str | None = None


class ChargingStation(Payload201):
    model: str
    vendor_name: str
    serial_number: str | None = None
    firmware_version: str | None = None
    modem: Modem | None = None


class BootNotification201(Payload201):
    """BootNotificationRequest; `reason` (PowerUp, Watchdog, FirmwareUpdate, ...) is kept for the log."""

    charging_station: ChargingStation
    reason: str

    def as_boot(self) -> BootNotification:
        """The boot in the registry's terms: the same facts a 1.6 boot reports."""
        station = self.charging_station
        modem = station.modem or Modem()
        return BootNotification(
            charge_point_vendor=station.vendor_name,
            charge_point_model=station.model,
            charge_point_serial_number=station.serial_number,
            firmware_version=station.firmware_version,
            iccid=modem.iccid,
            imsi=modem.imsi,
        )


class StatusNotification201(Payload201):
    """StatusNotificationRequest: one connector of one EVSE; evseId 0 is the station as a whole."""

    timestamp: ChargerTime
    connector_status: str  # Available, Occupied, Reserved, Unavailable, Faulted
    evse_id: int = Field(ge=0)
    connector_id: int = Field(ge=0)


class Evse(Payload201):
    id: int = Field(ge=0)
    connector_id: int | None = None


class Component(Payload201):
    name: str
    instance: str | None = None
    evse: Evse | None = None

    @property
    def evse_id(self) -> int:
        """Our connector id for what this component reports: its EVSE, else 0 (the station)."""
        return self.evse.id if self.evse is not None else 0


class Variable(Payload201):
    name: str
    instance: str | None = None


class EventData(Payload201):
    """One entry of NotifyEventRequest.eventData."""

    event_id: int
    timestamp: ChargerTime
    trigger: str  # Alerting, Delta, Periodic
    actual_value: str
    component: Component
    variable: Variable
    event_notification_type: str
    cleared: bool | None = None
    tech_code: str | None = None
    tech_info: str | None = None


class NotifyEvent(Payload201):
    generated_at: ChargerTime
    seq_no: int = Field(ge=0)
    tbc: bool = False
    event_data: list[EventData]


class VariableAttribute(Payload201):
    type: str = "Actual"
    value: str | None = None
    mutability: str | None = None


class ReportData(Payload201):
    component: Component
    variable: Variable
    variable_attribute: list[VariableAttribute]


class NotifyReport(Payload201):
    request_id: int
    generated_at: ChargerTime
    seq_no: int = Field(ge=0)
    tbc: bool = False
    report_data: list[ReportData] = []

    def as_part(self) -> DeviceModelPart:
        return DeviceModelPart(
            request_id=self.request_id,
            seq_no=self.seq_no,
            generated_at=self.generated_at,
            tbc=self.tbc,
            entries=[DeviceModelEntry.of(data) for data in self.report_data],
        )


class DeviceModelEntry(BaseModel):
    """One reported variable of the charger's device model, as an operator reads it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    component: str
    component_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    variable: str
    variable_instance: str | None = None
    # attribute type (Actual, Target, MinSet, MaxSet) -> value, cut to DEVICE_MODEL_VALUE_CHARS
    values: dict[str, str] = {}
    mutability: str | None = None

    @classmethod
    def of(cls, data: ReportData) -> DeviceModelEntry:
        evse = data.component.evse
        return cls(
            component=data.component.name,
            component_instance=data.component.instance,
            evse_id=evse.id if evse is not None else None,
            connector_id=evse.connector_id if evse is not None else None,
            variable=data.variable.name,
            variable_instance=data.variable.instance,
            values={
                attribute.type: attribute.value[:DEVICE_MODEL_VALUE_CHARS]
                for attribute in data.variable_attribute
                if attribute.value is not None
            },
            mutability=next((a.mutability for a in data.variable_attribute if a.mutability), None),
        )


class DeviceModelPart(BaseModel):
    """One NotifyReport of a report (GetBaseReport's requestId), stored as it came."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    request_id: int
    seq_no: int
    generated_at: datetime
    tbc: bool
    entries: list[DeviceModelEntry]


class DeviceModel(BaseModel):
    """The charger's latest reported device model: the parts of its newest report, in order.

    `complete` once the part without `tbc` and every part before it arrived.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    request_id: int
    generated_at: datetime
    complete: bool
    entries: list[DeviceModelEntry]

    @classmethod
    def of_parts(cls, parts: list[DeviceModelPart]) -> DeviceModel | None:
        """The newest report's parts (by generatedAt; a stale part of an older report is left out)."""
        if not parts:
            return None
        newest = max(parts, key=lambda part: part.generated_at)
        report = sorted(
            (part for part in parts if part.request_id == newest.request_id), key=lambda part: part.seq_no
        )
        last = report[-1]
        complete = not last.tbc and [part.seq_no for part in report] == list(range(last.seq_no + 1))
        return cls(
            request_id=newest.request_id,
            generated_at=min(part.generated_at for part in report),
            complete=complete,
            entries=[entry for part in report for entry in part.entries],
        )
