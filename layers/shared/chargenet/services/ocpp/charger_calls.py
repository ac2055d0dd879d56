"""What the backend does with each CALL a charger sends (OCPP 1.6J)."""

from __future__ import annotations

from chargenet.domain.clock import ocpp_time
from chargenet.domain.fault_rules import made_inoperative, reboot_loop, security_event, status_raises_fault
from chargenet.domain.faults import FaultSignal
from chargenet.domain.models import (
    BootNotification,
    ConnectorStatus,
    DeviceStatusNotification,
    SecurityEventNotification,
    StatusNotification,
)
from chargenet.ocpp.actions import Action
from chargenet.ocpp.router import Payload, on
from chargenet.ocpp.versions import OcppVersion
from chargenet.services.ocpp.context import Ctx
from chargenet.services.ocpp.session_log import record_status


@on(Action.boot_notification)
def boot_notification(ctx: Ctx, payload: Payload) -> Payload:
    return accept_boot(ctx, BootNotification.model_validate(payload), OcppVersion.V16)


def accept_boot(ctx: Ctx, boot: BootNotification, version: OcppVersion, rebooted: bool = True) -> Payload:
    """Record a boot of either version and accept it (the two replies have the same fields)."""
    charger = ctx.deps.registry.record_boot(ctx.charger_id, boot, ctx.received_at, version, rebooted)
    # Only the loop is news at boot time; the sweep sees when it is over.
    loop = reboot_loop(charger, ctx.received_at)
    if isinstance(loop, FaultSignal):
        ctx.deps.faults.apply([loop])
    return {
        "status": "Accepted",
        "currentTime": ocpp_time(ctx.deps.clock()),
        "interval": ctx.deps.heartbeat_interval_s,
    }


@on(Action.heartbeat, replay_safe=True)
def heartbeat(ctx: Ctx, payload: Payload) -> Payload:
    # The ingest service already records that the charger was seen.
    return {"currentTime": ocpp_time(ctx.deps.clock())}


@on(Action.status_notification, replay_safe=True)
def status_notification(ctx: Ctx, payload: Payload) -> Payload:
    notification = StatusNotification.model_validate(payload)
    status = ConnectorStatus(
        charger_id=ctx.charger_id,
        connector_id=notification.connector_id,
        status=notification.status,
        error_code=notification.error_code,
        info=notification.info,
        vendor_id=notification.vendor_id,
        vendor_error_code=notification.vendor_error_code,
        # Queued notifications arrive late and out of order: the charger's clock orders them.
        status_at=notification.timestamp or ctx.received_at,
        received_at=ctx.received_at,
    )
    apply_connector_status(ctx, status)
    return {}


def apply_connector_status(ctx: Ctx, status: ConnectorStatus, *, to_session: bool = True) -> None:
    """A connector's status of either version: stored, its faults raised or resolved, and (unless
    not `to_session`: a status the session fold does not know) its session told."""
    raises = status_raises_fault(status.status, status.error_code)
    # The history entry is written last, with the session event when there is one to append:
    # one request for the two puts. A crash before it is retried (the invocation fails, and the
    # whole frame is replayed: every write is keyed on the status), so no entry is lost.
    latest = ctx.deps.registry.record_latest_status(status, raises_fault=raises)
    # Only a status newer than the stored one says anything about faults now; a clean one only
    # resolves, so it looks the faults up only while the connector may have one open.
    if latest and (raises or ctx.deps.view.may_have_status_fault(status.connector_id)):
        ctx.deps.faults.on_status(status, _site_of(ctx), _inoperative_by_operator(ctx, status))
        if not raises:
            ctx.deps.registry.clear_status_fault(ctx.charger_id, status.connector_id, status.status_at)
    if to_session:
        record_status(ctx, status, latest, with_history=True)
    else:
        ctx.deps.registry.record_status_history(status)


def _inoperative_by_operator(ctx: Ctx, status: ConnectorStatus) -> bool:
    """Whether an operator's ChangeAvailability explains an Unavailable; only then are the
    charger's calls read (Unavailable is rare, Available and Charging are not)."""
    if status.status != "Unavailable":
        return False
    calls = ctx.deps.pending.of_charger(ctx.charger_id)
    return made_inoperative(calls, status.connector_id, status.received_at)


@on(Action.diagnostics_status_notification)
def diagnostics_status_notification(ctx: Ctx, payload: Payload) -> Payload:
    # Uploading / Uploaded / UploadFailed / Idle: what the operator's GetDiagnostics came to.
    status = DeviceStatusNotification.model_validate(payload).status
    ctx.deps.registry.record_device_status(ctx.charger_id, "diagnostics_status", status)
    return {}


@on(Action.firmware_status_notification)
def firmware_status_notification(ctx: Ctx, payload: Payload) -> Payload:
    status = DeviceStatusNotification.model_validate(payload).status
    ctx.deps.registry.record_device_status(ctx.charger_id, "firmware_status", status)
    return {}


@on(Action.security_event_notification)
def security_event_notification(ctx: Ctx, payload: Payload) -> Payload:
    event = SecurityEventNotification.model_validate(payload)
    signal = security_event(ctx.charger_id, _site_of(ctx), event.type, event.tech_info, event.timestamp)
    if signal is not None:
        ctx.deps.faults.apply([signal])
    return {}


def _site_of(ctx: Ctx) -> str:
    return ctx.deps.view.charger.site_id
