"""The charger registry's records and the OCPP payloads that change them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from chargenet.domain.meter_values import parse_meter_values

# A charger's clock: an unset one says 1970, which is late news, not garbage. Outside these
# bounds a time cannot be stored, compared or have an idle limit added (9999-12-31 overflows).
EARLIEST_CHARGER_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_CHARGER_TIME = datetime(2100, 1, 1, tzinfo=UTC)
# More than any meter reads in any unit (a 350 kW charger makes 6e10 Wh in 20 years): beyond
# it a reading is garbage, and would overflow DynamoDB's 38 digits or Decimal's exponent.
MAX_READING = Decimal(10**12)


def _charger_time(at: datetime) -> datetime:
    """OCPP times are UTC: one without an offset is read as UTC rather than refused."""
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if not EARLIEST_CHARGER_TIME <= at < LATEST_CHARGER_TIME:
        raise ValueError("timestamp must be from 1970 to 2099")
    return at


ChargerTime = Annotated[datetime, AfterValidator(_charger_time)]
_CHARGER_TIME = TypeAdapter(ChargerTime)


def _sane_meter_values(meter_values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Timestamps as ChargerTime (rewritten as ISO 8601 with offset), readings within MAX_READING."""
    checked = [{**meter_value, "timestamp": _meter_value_time(meter_value)} for meter_value in meter_values]
    for reading in parse_meter_values(checked):
        values = (
            reading.energy_wh,
            reading.power_w,
            reading.current_a,
            reading.soc_percent,
            reading.temperature_c,
        )
        if any(value is not None and abs(value) > MAX_READING for value in values):
            raise ValueError(f"sampled values must be within +-{MAX_READING}")
    return checked


def _meter_value_time(meter_value: dict[str, Any]) -> str:
    try:
        return _CHARGER_TIME.validate_python(meter_value.get("timestamp")).isoformat()
    except ValidationError:
        raise ValueError("timestamp must be an ISO 8601 time from 1970 to 2099") from None


SaneMeterValues = Annotated[list[dict[str, Any]], AfterValidator(_sane_meter_values)]


class OcppPayload(BaseModel):
    """An OCPP payload already checked against its JSON schema, in snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class BootNotification(OcppPayload):
    charge_point_vendor: str
    charge_point_model: str
    charge_point_serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None

    def reported_facts(self) -> dict[str, str]:
        """What the boot says of the charger, by `Charger` field. A field the boot leaves out is
        absent, not None: a boot without a serial number does not mean the charger has none."""
        facts = {
            "vendor": self.charge_point_vendor,
            "model": self.charge_point_model,
            "serial_number": self.charge_point_serial_number or self.charge_box_serial_number,
            "firmware_version": self.firmware_version,
        }
        return {field: value for field, value in facts.items() if value is not None}


class StatusNotification(OcppPayload):
    connector_id: int = Field(ge=0)
    error_code: str
    status: str
    info: str | None = None
    timestamp: ChargerTime | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None


class DeviceStatusNotification(OcppPayload):
    """DiagnosticsStatusNotification and FirmwareStatusNotification: a status word and nothing else."""

    status: str


class SecurityEventNotification(OcppPayload):
    """OCPP 1.6 security extension."""

    type: str
    timestamp: ChargerTime
    tech_info: str | None = None


class Charger(BaseModel):
    model_config = ConfigDict(frozen=True)

    charger_id: str
    site_id: str = ""
    time_zone: str | None = None  # its own IANA zone; None: its site's, else the deployment default
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    rated_power_w: int | None = None  # the most any connector can deliver: meter jumps above it are anomalies
    registered_at: datetime
    last_boot_at: datetime | None = None
    last_seen_at: datetime | None = None
    online: bool = False
    presence_version: int = -1
    presence_changed_at: datetime | None = None
    disconnect_reason: str | None = None
    recent_boots: list[datetime] = []  # the last few BootNotifications, to catch reboot loops
    certificate_not_after: datetime | None = None
    revoked_at: datetime | None = None  # `chargenet charger revoke`: the charger may never connect again
    revocation_reason: str | None = None
    diagnostics_status: str | None = None  # the last DiagnosticsStatusNotification
    firmware_status: str | None = None  # the last FirmwareStatusNotification
    # The OCPP version its last BootNotification came in ("ocpp1.6", "ocpp2.0.1"; None: not booted
    # since versions were recorded, which is 1.6): what the backend's CALLs to it are written in.
    ocpp_version: str | None = None


class ConnectorStatus(BaseModel):
    """Latest status of one connector (0 = the charger as a whole)."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    connector_id: int
    status: str
    error_code: str
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    status_at: datetime  # the charger's timestamp, or the receive time when it sent none
    received_at: datetime


class PresenceEventType(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class PresenceEvent(BaseModel):
    """An IoT Core lifecycle event (they repeat and reorder: versionNumber orders them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    client_id: str
    event_type: PresenceEventType
    timestamp: int  # ms since epoch
    version_number: int
    disconnect_reason: str | None = None


class Authorize(OcppPayload):
    id_tag: str


class StartTransaction(OcppPayload):
    connector_id: int = Field(gt=0)  # a transaction is on a connector, never the charger (0)
    id_tag: str
    meter_start: int
    timestamp: ChargerTime
    reservation_id: int | None = None


class StopTransaction(OcppPayload):
    transaction_id: int
    meter_stop: int
    timestamp: ChargerTime
    reason: str = "Local"  # OCPP 1.6: absent means Local
    id_tag: str | None = None
    transaction_data: SaneMeterValues | None = None


class MeterValues(OcppPayload):
    connector_id: int = Field(ge=0)
    transaction_id: int | None = None
    meter_value: SaneMeterValues


class TagStatus(StrEnum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


class TagAuthorization(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: TagStatus
    expires_at: datetime | None = None
    max_concurrent_sessions: int = 1


def mask_tag(id_tag: str) -> str:
    """Tag ids identify people: logs and records show only the first four characters."""
    return id_tag[:4] + "*" * max(0, len(id_tag) - 4)


class SessionRecord(BaseModel):
    """The session as operators and drivers see it, recomputed from its events."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    transaction_id: int  # network-wide; what a 1.6 charger was given
    # The transaction id a 2.0.1 charger chose itself (unique on that charger only); None for 1.6.
    charger_transaction_id: str | None = None
    charger_id: str
    site_id: str = ""
    connector_id: int
    id_tag: str
    tag_status: TagStatus
    started_at: datetime
    state: str = "active"
    tariff_id: str | None = None
    tariff_json: str | None = None  # snapshot at start: later edits never change this session
    time_zone: str | None = None  # the site's IANA zone at start: the wall clock the tariff reads
    rated_power_w: int | None = None
    energy_wh: int = 0
    peak_power_w: int = 0
    charging_seconds: int = 0
    parking_seconds: int = 0
    stopped_at: datetime | None = None
    freed_at: datetime | None = None
    stop_reason: str | None = None
    review_reasons: list[str] = []
    last_reading_at: datetime | None = None
    event_count: int = 0

    @property
    def masked_tag(self) -> str:
        return mask_tag(self.id_tag)


class PendingCall(BaseModel):
    """A CALL the backend sent to a charger, and what became of it."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    message_id: str
    action: str
    payload: dict[str, Any]
    sent_at: datetime
    answered_at: datetime | None = None
    outcome: dict[str, Any] | None = None  # {"result": ...} | {"error": ...} | {"timeout": true}
