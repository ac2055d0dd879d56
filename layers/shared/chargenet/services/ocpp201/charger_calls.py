"""What the backend does with each charger-level CALL an OCPP 2.0.1 charger sends.

The same registry, fault and session paths as the 1.6 handlers (services/ocpp/charger_calls.py);
only the shapes differ:

- BootNotification: `chargingStation` is the 1.6 boot's facts; the boot records version 2.0.1.
  Reason Triggered (answering TriggerMessage) records the facts but is no reboot.
- StatusNotification: our connector is the EVSE (`evseId`; 0 is the station). 2.0.1 has no
  errorCode: the status is stored with NoError, so Faulted raises what a 1.6 "Faulted/NoError"
  does (a major connector error coded "Faulted") and the reason, when the charger knows one,
  arrives as a NotifyEvent. Available / Unavailable / Faulted reach the session as 1.6's
  statuses of the same name do; Occupied and Reserved are stored on the connector only (the
  charging state within a transaction comes from TransactionEvent).
- NotifyEvent: each entry that reports a problem opens or resolves a connector error
  (domain.fault_rules.device_event; the component table is there and in docs/faults.md):

      component                                   fault code (severity as 1.6's code)
      RCD, GroundIsolationProtection              GroundFailure         safety critical
      OverCurrentProtection                       OverCurrentFailure    safety critical
      TemperatureSensor, ExternalTemperatureSensor HighTemperature      safety critical
      ConnectorPlugRetentionLock, EVRetentionLock ConnectorLockFailure  major
      FiscalMetering, ControlMetering             PowerMeterFailure     major
      PowerContactor                              PowerSwitchFailure    major
      AcDcConverter, Controller, CPPWMController, InternalError         major
      ChargingStation
      TokenReader                                 ReaderFailure         minor
      DataLink                                    WeakSignal            minor
      any other                                   OtherError            minor

  A problem is a `Problem` or `Tripped` variable reported "true", or any variable a monitor
  raised (trigger Alerting); `cleared: true`, or the variable back to "false", resolves it.
  A Faulted status and the NotifyEvent naming its problem are one problem paged once, in either
  order (FaultTracker: the named problem supersedes the bare "Faulted"); a named problem cleared
  while the EVSE is still Faulted raises the bare "Faulted" again (docs/faults.md).
- SecurityEventNotification: the 1.6 security extension's message, field for field.
- FirmwareStatusNotification / LogStatusNotification: the charger's firmware_status /
  diagnostics_status, as 1.6's firmware and diagnostics notifications. The word is kept as sent
  (2.0.1 has fourteen); readers take its meaning from domain.firmware.FIRMWARE_STATUS_PROGRESS.
- NotifyReport: each part (seqNo) of a GetBaseReport's answer is kept on the charger
  (registry.record_device_model_part; read with registry.device_model).
"""

from __future__ import annotations

from datetime import datetime

from chargenet.domain.fault_rules import NO_ERROR, device_event
from chargenet.domain.faults import FaultResolution
from chargenet.domain.models import ConnectorStatus
from chargenet.domain.ocpp201_messages import (
    BootNotification201,
    NotifyEvent,
    NotifyReport,
    StatusNotification201,
)
from chargenet.ocpp.actions import Action201
from chargenet.ocpp.router import Payload, on
from chargenet.ocpp.versions import OcppVersion
from chargenet.services.ocpp import charger_calls as ocpp16
from chargenet.services.ocpp.context import Ctx

TRIGGERED = "Triggered"  # BootReasonEnumType
# The 2.0.1 connector statuses the session fold reads as 1.6's statuses of the same name.
FAULTED_STATUS = "Faulted"
SESSION_STATUSES = frozenset({"Available", "Unavailable", FAULTED_STATUS})


@on(Action201.boot_notification)
def boot_notification(ctx: Ctx, payload: Payload) -> Payload:
    boot = BootNotification201.model_validate(payload)
    # A BootNotification the backend asked for (TriggerMessage) reports the station but is no
    # reboot: it must not count towards a reboot loop.
    rebooted = boot.reason != TRIGGERED
    return ocpp16.accept_boot(ctx, boot.as_boot(), OcppVersion.V201, rebooted)


@on(Action201.heartbeat, replay_safe=True)
def heartbeat(ctx: Ctx, payload: Payload) -> Payload:
    return ocpp16.heartbeat(ctx, payload)  # the same message in both versions


@on(Action201.status_notification, replay_safe=True)
def status_notification(ctx: Ctx, payload: Payload) -> Payload:
    notification = StatusNotification201.model_validate(payload)
    status = ConnectorStatus(
        charger_id=ctx.charger_id,
        connector_id=notification.evse_id,
        status=notification.connector_status,
        error_code=NO_ERROR,
        status_at=notification.timestamp,
        received_at=ctx.received_at,
    )
    ocpp16.apply_connector_status(ctx, status, to_session=status.status in SESSION_STATUSES)
    return {}


@on(Action201.notify_event, replay_safe=True)
def notify_event(ctx: Ctx, payload: Payload) -> Payload:
    # Replay safe: faults fold idempotently (a repeated sighting is recognised by its evidence).
    notification = NotifyEvent.model_validate(payload)
    site_id = ctx.deps.view.charger.site_id
    findings = [device_event(ctx.charger_id, site_id, event) for event in notification.event_data]
    found = [finding for finding in findings if finding is not None]
    if found:
        ctx.deps.faults.apply(found)
    cleared: dict[int, datetime] = {}
    for resolution in (finding for finding in found if isinstance(finding, FaultResolution)):
        cleared[resolution.connector_id] = max(
            resolution.at, cleared.get(resolution.connector_id, resolution.at)
        )
    for connector_id, at in sorted(cleared.items()):
        _still_faulted(ctx, connector_id, at)
    return {}


def _still_faulted(ctx: Ctx, connector_id: int, cleared_at: datetime) -> None:
    """A named problem cleared on an EVSE whose last status is still Faulted: the EVSE is out of
    service for a reason not (yet) named, so its bare "Faulted" fault, folded into the named
    problem while that was open, is raised again (unless another named problem explains it)."""
    current = next(
        (c for c in ctx.deps.registry.connectors(ctx.charger_id) if c.connector_id == connector_id), None
    )
    if current is None or current.status != FAULTED_STATUS:
        return
    again = current.model_copy(update={"status_at": max(current.status_at, cleared_at)})
    ctx.deps.faults.on_status(again, ctx.deps.view.charger.site_id)


@on(Action201.security_event_notification)
def security_event_notification(ctx: Ctx, payload: Payload) -> Payload:
    return ocpp16.security_event_notification(ctx, payload)  # type, timestamp, techInfo in both


@on(Action201.firmware_status_notification)
def firmware_status_notification(ctx: Ctx, payload: Payload) -> Payload:
    # 1.6's status word, 2.0.1's list of them; the requestId (the UpdateFirmware it reports on)
    # is not kept: a charger runs one update at a time, and the latest status is the one to show.
    return ocpp16.firmware_status_notification(ctx, payload)


@on(Action201.log_status_notification)
def log_status_notification(ctx: Ctx, payload: Payload) -> Payload:
    # GetLog's progress: what 1.6's DiagnosticsStatusNotification reported for GetDiagnostics.
    return ocpp16.diagnostics_status_notification(ctx, payload)


@on(Action201.notify_report, replay_safe=True)
def notify_report(ctx: Ctx, payload: Payload) -> Payload:
    # Replay safe: a copy writes the same part over itself.
    part = NotifyReport.model_validate(payload).as_part()
    ctx.deps.registry.record_device_model_part(ctx.charger_id, part)
    return {}
