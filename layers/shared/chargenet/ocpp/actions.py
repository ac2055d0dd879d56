"""The OCPP actions chargenet routes or sends, named as `ocpp.v16.enums.Action` (and `v201`) names them.

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


class Action201(StrEnum):
    """The OCPP 2.0.1 actions chargenet routes or sends, spelled as `ocpp.v201.enums.Action`."""

    authorize = "Authorize"
    boot_notification = "BootNotification"
    certificate_signed = "CertificateSigned"
    change_availability = "ChangeAvailability"
    cost_updated = "CostUpdated"
    data_transfer = "DataTransfer"
    firmware_status_notification = "FirmwareStatusNotification"
    get_base_report = "GetBaseReport"
    get_log = "GetLog"
    get_variables = "GetVariables"
    heartbeat = "Heartbeat"
    log_status_notification = "LogStatusNotification"
    meter_values = "MeterValues"
    notify_event = "NotifyEvent"
    notify_report = "NotifyReport"
    request_start_transaction = "RequestStartTransaction"
    request_stop_transaction = "RequestStopTransaction"
    reset = "Reset"
    security_event_notification = "SecurityEventNotification"
    set_variables = "SetVariables"
    sign_certificate = "SignCertificate"
    status_notification = "StatusNotification"
    transaction_event = "TransactionEvent"
    trigger_message = "TriggerMessage"
    unlock_connector = "UnlockConnector"
    update_firmware = "UpdateFirmware"
