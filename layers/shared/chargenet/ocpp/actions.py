"""The OCPP 1.6 actions chargenet routes or sends, named as `ocpp.v16.enums.Action` names them.

`ocpp.v16.enums` loads the whole `ocpp.v16` package (its ChargePoint, asyncio, every message
dataclass) on import, about a fifth of the ingest function's cold start; the handlers need
only the names. The values are OCPP's own action names (a unit test holds them equal to the
package's), and the members are spelled as the package spells them, so either enum compares,
hashes and formats the same.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    authorize = "Authorize"
    boot_notification = "BootNotification"
    certificate_signed = "CertificateSigned"
    data_transfer = "DataTransfer"
    diagnostics_status_notification = "DiagnosticsStatusNotification"
    firmware_status_notification = "FirmwareStatusNotification"
    heartbeat = "Heartbeat"
    meter_values = "MeterValues"
    security_event_notification = "SecurityEventNotification"
    sign_certificate = "SignCertificate"
    start_transaction = "StartTransaction"
    status_notification = "StatusNotification"
    stop_transaction = "StopTransaction"
