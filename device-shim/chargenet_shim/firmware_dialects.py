"""The gateway's firmware relay in each OCPP version: what it reads, offers and tells (gateway_firmware.py).

| step                                  | OCPP 1.6 (security extension)         | OCPP 2.0.1                                  |
|---------------------------------------|---------------------------------------|---------------------------------------------|
| the backend's request                 | UpdateFirmware{location, retrieveDate} | UpdateFirmware{requestId, firmware{location, retrieveDateTime}} |
| the gateway's answer                  | {} (1.6 has no refusal)               | {status: Accepted}; Rejected while an update is under way |
| the offer to the charger              | SignedUpdateFirmware                  | UpdateFirmware, the backend's requestId     |
| its firmware{signingCertificate, signature} | the manufacturer's, from the operator-signed manifest | the same                  |
| the charger's statuses                | SignedFirmwareStatusNotification      | FirmwareStatusNotification{status, requestId} |
| told to the backend                   | FirmwareStatusNotification in 1.6's seven words | the same words, with the requestId    |
| a bad signature the gateway found     | SecurityEventNotification InvalidFirmwareSignature, then InstallationFailed | the event, then InvalidSignature |

The charger answers either offer with the same statuses (Accepted, Rejected, AcceptedCanceled,
InvalidCertificate, RevokedCertificate). A 2.0.1 charger that finds a bad signature itself sends its
own SecurityEventNotification (L01.FR.03), relayed like any frame; a 1.6 status cannot say it, so
the gateway sends the event for it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from ocpp.v16 import call as call16
from ocpp.v16.enums import Action, FirmwareStatus
from ocpp.v201 import call as call201
from ocpp.v201.enums import FirmwareStatusEnumType

from chargenet_firmware_format import VendorSignature
from chargenet_shim.firmware import (
    INVALID_FIRMWARE_SIGNATURE,
    TECH_INFO_LENGTH,
    core_notifications,
    retrieve_moment,
)
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.ocpp_version import OcppVersion

# Request ids are OCPP integers (int32), in both versions.
_REQUEST_IDS = 2**31


@dataclass(frozen=True)
class UpdateRequest:
    """A firmware update to carry out: the backend's UpdateFirmware, or an IoT job's."""

    location: str
    retrieve_at: dt.datetime
    # What the charger's offer and every status of this update carry (2.0.1's requestId).
    request_id: int
    retries: int | None = None
    retry_interval: int | None = None
    install_at: str | None = None


def job_update(location: str) -> UpdateRequest:
    """An IoT job's update: at once, with a request id of the gateway's own."""
    return UpdateRequest(location, dt.datetime.now(dt.UTC), secrets.randbelow(_REQUEST_IDS))


@dataclass(frozen=True)
class ChargerIdentity:
    """What a BootNotification says the charger is and runs (None: it did not say)."""

    vendor: str | None
    model: str | None
    firmware_version: str | None


@dataclass(frozen=True)
class StatusReport:
    """A firmware status to tell the backend: the gateway's own, or one the charger reported."""

    status: FirmwareStatus
    detail: str
    timestamp: str
    request_id: int | None
    security_event: str | None = None
    from_charger: bool = False


class FirmwareDialect(ABC):
    version: ClassVar[OcppVersion]
    # The charger's CALL that reports the offer's progress.
    status_action: ClassVar[str]
    # The CALL that offers the verified image: both versions' have the same fields.
    offer_call: ClassVar[type[Any]]

    @abstractmethod
    def update_request(self, payload: dict[str, Any]) -> UpdateRequest:
        """The backend's UpdateFirmware (schema-valid) as an update; an OCPPError for what the schema cannot check."""

    @abstractmethod
    def accepted(self) -> dict[str, Any]:
        """The answer to an UpdateFirmware the gateway takes."""

    @abstractmethod
    def busy(self) -> dict[str, Any]:
        """The answer to an UpdateFirmware while another update is under way."""

    @abstractmethod
    def identity(self, boot: dict[str, Any]) -> ChargerIdentity:
        """What the charger's BootNotification says it is and runs."""

    @abstractmethod
    def notifications(self, report: StatusReport) -> list[Any]:
        """The CALLs that tell the backend of `report`, in the order to send them."""

    def offer(self, update: UpdateRequest, location: str, vendor: VendorSignature) -> Any:
        """The CALL that offers the verified image, served at `location`, to the charger."""
        firmware = {
            "location": location,
            "retrieveDateTime": ocpp_timestamp(dt.datetime.now(dt.UTC)),
            "signingCertificate": vendor.signing_certificate,
            "signature": vendor.signature,
        }
        if update.install_at is not None:
            firmware["installDateTime"] = update.install_at
        return self.offer_call(
            request_id=update.request_id,
            firmware=firmware,
            retries=update.retries,
            retry_interval=update.retry_interval,
        )


def _text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) else None


class Dialect16(FirmwareDialect):
    version = OcppVersion.V16
    status_action = Action.signed_firmware_status_notification.value
    offer_call = call16.SignedUpdateFirmware

    def update_request(self, payload: dict[str, Any]) -> UpdateRequest:
        return UpdateRequest(
            location=payload["location"],
            retrieve_at=retrieve_moment(payload["retrieveDate"]),
            request_id=secrets.randbelow(_REQUEST_IDS),
            retries=payload.get("retries"),
            retry_interval=payload.get("retryInterval"),
        )

    def accepted(self) -> dict[str, Any]:
        return {}

    def busy(self) -> dict[str, Any]:
        # 1.6 gives no way to refuse: the update under way goes on, this one is dropped.
        return {}

    def identity(self, boot: dict[str, Any]) -> ChargerIdentity:
        return ChargerIdentity(
            _text(boot, "chargePointVendor"), _text(boot, "chargePointModel"), _text(boot, "firmwareVersion")
        )

    def notifications(self, report: StatusReport) -> list[Any]:
        return list(
            core_notifications(
                report.status, report.detail, report.timestamp, security_event=report.security_event
            )
        )


class Dialect201(FirmwareDialect):
    version = OcppVersion.V201
    status_action = Action.firmware_status_notification.value
    offer_call = call201.UpdateFirmware

    def update_request(self, payload: dict[str, Any]) -> UpdateRequest:
        firmware = payload["firmware"]
        return UpdateRequest(
            location=firmware["location"],
            retrieve_at=retrieve_moment(firmware["retrieveDateTime"]),
            request_id=payload["requestId"],
            retries=payload.get("retries"),
            retry_interval=payload.get("retryInterval"),
            install_at=firmware.get("installDateTime"),
        )

    def accepted(self) -> dict[str, Any]:
        return {"status": "Accepted"}

    def busy(self) -> dict[str, Any]:
        # L01.FR.24 has a station cancel the update under way for a new one; the gateway cannot
        # take back an image it already offered the charger, so it refuses the new one, and says why.
        return {
            "status": "Rejected",
            "statusInfo": {
                "reasonCode": "UpdateInProgress",
                "additionalInfo": "a firmware update is under way",
            },
        }

    def identity(self, boot: dict[str, Any]) -> ChargerIdentity:
        station = boot.get("chargingStation")
        if not isinstance(station, dict):
            return ChargerIdentity(None, None, None)
        return ChargerIdentity(
            _text(station, "vendorName"), _text(station, "model"), _text(station, "firmwareVersion")
        )

    def notifications(self, report: StatusReport) -> list[Any]:
        own_bad_signature = report.status is FirmwareStatus.invalid_signature and not report.from_charger
        event = INVALID_FIRMWARE_SIGNATURE if own_bad_signature else report.security_event
        notifications: list[Any] = []
        if event is not None:
            tech_info = report.detail[:TECH_INFO_LENGTH] or None
            notifications.append(
                call201.SecurityEventNotification(type=event, timestamp=report.timestamp, tech_info=tech_info)
            )
        status = FirmwareStatusEnumType(report.status.value)
        notifications.append(call201.FirmwareStatusNotification(status=status, request_id=report.request_id))
        return notifications


DIALECTS: dict[OcppVersion, FirmwareDialect] = {OcppVersion.V16: Dialect16(), OcppVersion.V201: Dialect201()}
