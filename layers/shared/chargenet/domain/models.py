"""The charger registry's records and the OCPP payloads that change them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


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


class StatusNotification(OcppPayload):
    connector_id: int
    error_code: str
    status: str
    info: str | None = None
    timestamp: datetime | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None


class Charger(BaseModel):
    model_config = ConfigDict(frozen=True)

    charger_id: str
    site_id: str = ""
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    registered_at: datetime
    last_boot_at: datetime | None = None
    last_seen_at: datetime | None = None
    online: bool = False
    presence_version: int = -1
    presence_changed_at: datetime | None = None
    disconnect_reason: str | None = None


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
