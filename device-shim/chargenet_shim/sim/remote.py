"""The charger side of remote diagnostics and repair: the backend's OCPP 1.6 CALLs to the charger.

RemoteControl is mixed into SimulatedCharger, on top of the state in charger_state.py.
ocpp's receive loop handles one CALL at a time and cannot take in a reply while a handler
runs, so the `@on` handlers only decide and answer; what the charger sends because of a
CALL goes out after the answer, from a task that the action's `@after` hook starts.

    Reset               Accepted; sessions stop (StopTransaction HardReset/SoftReset), faults
                        that do not survive a reset are gone, BootNotification, then every
                        connector's status. Rejected while a reset is under way.
    UnlockConnector     Unlocked; UnlockFailed with a ConnectorLockFailure fault; NotSupported
                        without a lock (`has_connector_lock`) or for a connector it does not have.
                        A session on the connector stops first (UnlockCommand), as OCPP asks.
    ChangeAvailability  Accepted, then StatusNotification Available/Unavailable; Scheduled while
                        a session runs on a connector it covers, applied when the session ends.
    TriggerMessage      Accepted, then the requested message; NotImplemented for unknown ones.
    Get/ChangeConfiguration  see configuration.py.
    GetDiagnostics      the file name, then DiagnosticsStatusNotification Uploading, the PUT,
                        Uploaded or UploadFailed. No file name while an upload is under way.
    ClearCache          Accepted: there is no authorization cache to clear.
    RemoteStartTransaction  Accepted if the connector (or, without one, some connector) is free and
                        usable, then a session on the backend's tag with the charger's `remote_plan`
                        (remote_start.py); Rejected otherwise, and while a reset is under way.
    RemoteStopTransaction   Accepted if the charger runs that transaction, which then stops with
                        reason Remote; Rejected otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from ocpp.exceptions import PropertyConstraintViolationError, TypeConstraintViolationError
from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.datatypes import MeterValue, SampledValue
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    AvailabilityType,
    ChargePointErrorCode,
    ClearCacheStatus,
    ConfigurationStatus,
    DiagnosticsStatus,
    FirmwareStatus,
    Measurand,
    MessageTrigger,
    ReadingContext,
    Reason,
    RemoteStartStopStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
    UnitOfMeasure,
    UnlockStatus,
)

from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.redaction import redacted_location
from chargenet_shim.sim import diagnostics, remote_start
from chargenet_shim.sim.charger_state import ChargerState
from chargenet_shim.sim.configuration import HEARTBEAT_INTERVAL
from chargenet_shim.sim.session import SessionPlan, SessionTruth
from chargenet_shim.sim.simclock import SimClock

LOG = logging.getLogger(__name__)

# A rebooted charger asks again while the backend answers Pending, as at the first boot.
BOOT_ATTEMPTS_AFTER_RESET = 3


class RemoteControl(ChargerState):
    """Needs SimulatedCharger's run_boot, send_status and heartbeat, and these:"""

    boot_request: call.BootNotification

    def _setup_remote(self) -> None:
        self._setup_state()
        self.has_connector_lock = True
        self._upload: asyncio.Task[Any] | None = None
        # The car a remote start charges (connector and tag come with each start); tests may change it.
        self.remote_plan: SessionPlan = remote_start.default_remote_plan()
        # The clock a remotely started session runs on: the charger's, unless a demo gives each
        # session its own accelerated clock from the moment it starts (the backend dates the tag's
        # validity in real time, so a start far ahead of it would be refused).
        self.remote_clock: Callable[[], SimClock] = lambda: self.clock
        # Every remotely started session, in start order: callers await them for the outcome.
        self.remote_sessions: list[asyncio.Task[SessionTruth]] = []

    # ------------------------------------------------------------------ Reset
    @on(Action.reset)
    def on_reset(self, type: str, call_unique_id: str) -> call_result.Reset:
        if self._rebooting:
            return call_result.Reset(ResetStatus.rejected)
        self._after_reply(call_unique_id, lambda: self._start_reboot(ResetType(type)))
        return call_result.Reset(ResetStatus.accepted)

    @after(Action.reset)
    def after_reset(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _start_reboot(self, kind: ResetType) -> None:
        reason = Reason.hard_reset if kind is ResetType.hard else Reason.soft_reset
        self._reboot = self._spawn(self._restart(f"{kind} reset", reason), "reboot")

    async def _restart(self, what: str, reason: Reason) -> None:
        """Sessions stop with `reason`, the boot is repeated, every connector's status is told."""
        self.journal.record(what)
        await self._stop_sessions(list(self.sessions), reason)
        await self._stop_heartbeats()
        self.registration = None
        self.board.restarted()
        await self.run_boot(max_attempts=BOOT_ATTEMPTS_AFTER_RESET)
        # A charger that has just booted tells the backend every connector's status.
        self.reported.clear()
        await self._report(range(self.connectors + 1))

    # -------------------------------------------------------- UnlockConnector
    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int) -> call_result.UnlockConnector:
        if not self.has_connector_lock or not 1 <= connector_id <= self.connectors:
            return call_result.UnlockConnector(UnlockStatus.not_supported)
        visit = self.sessions.get(connector_id)
        if visit is not None:
            # OCPP 1.6 §5.18: the transaction ends before the connector unlocks.
            visit.interrupt(Reason.unlock_command)
        fault = self.board.faults.get(connector_id)
        jammed = fault is not None and fault.error_code is ChargePointErrorCode.connector_lock_failure
        status = UnlockStatus.unlock_failed if jammed else UnlockStatus.unlocked
        self.journal.record(f"connector {connector_id}: unlock {status}")
        return call_result.UnlockConnector(status)

    # ----------------------------------------------------- ChangeAvailability
    @on(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str, call_unique_id: str
    ) -> call_result.ChangeAvailability:
        operative = type == AvailabilityType.operative
        status = self.board.change_availability(connector_id, operative, self.sessions.keys())
        self.journal.record(f"connector {connector_id}: {type} {status}")
        if status is AvailabilityStatus.accepted:
            covered = self.board.covered(connector_id)
            self._after_reply(call_unique_id, lambda: self._spawn(self._report(covered), "availability"))
        return call_result.ChangeAvailability(status)

    @after(Action.change_availability)
    def after_change_availability(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    # --------------------------------------------------------- TriggerMessage
    # Not schema-validated: the 1.6 schema refuses the messages that should get NotImplemented.
    @on(Action.trigger_message, skip_schema_validation=True)
    def on_trigger_message(
        self, call_unique_id: str, requested_message: object = None, connector_id: object = None
    ) -> call_result.TriggerMessage:
        if not isinstance(requested_message, str) or not isinstance(connector_id, int | None):
            raise TypeConstraintViolationError(
                details={"cause": "requestedMessage: string, connectorId: integer"}
            )
        if connector_id is not None and not self.board.exists(connector_id):
            return call_result.TriggerMessage(TriggerMessageStatus.rejected)
        send = self._triggered(requested_message, connector_id)
        if send is None:
            return call_result.TriggerMessage(TriggerMessageStatus.not_implemented)
        self._after_reply(call_unique_id, lambda: self._spawn(send(), f"triggered {requested_message}"))
        return call_result.TriggerMessage(TriggerMessageStatus.accepted)

    @after(Action.trigger_message)
    def after_trigger_message(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _triggered(self, requested: str, connector_id: int | None) -> Callable[[], Awaitable[Any]] | None:
        match requested:
            case MessageTrigger.boot_notification:
                return self.run_boot
            case MessageTrigger.heartbeat:
                return self.heartbeat
            case MessageTrigger.status_notification:
                return partial(self._tell_statuses, connector_id)
            case MessageTrigger.meter_values:
                return partial(self._send_registers, connector_id)
            case MessageTrigger.diagnostics_status_notification:
                uploading = self._upload is not None and not self._upload.done()
                status = DiagnosticsStatus.uploading if uploading else DiagnosticsStatus.idle
                return partial(self._notify, call.DiagnosticsStatusNotification(status))
            case MessageTrigger.firmware_status_notification:
                return partial(self._notify, call.FirmwareStatusNotification(FirmwareStatus.idle))
        return None

    async def _tell_statuses(self, connector_id: int | None) -> None:
        """Every connector's status (or that of `connector_id`) as it is, changed or not."""
        for c in range(self.connectors + 1) if connector_id is None else [connector_id]:
            current = self.reported.get(c) if c in self.sessions else None
            await self._tell(c, current or self.board.idle_status(c))

    async def _send_registers(self, connector_id: int | None) -> None:
        """Each connector's energy register (connector 0 or none: all of them), with its transaction."""
        for c in range(1, self.connectors + 1) if not connector_id else [connector_id]:
            visit = self.sessions.get(c)
            register_wh = self.meters[c].register_wh(self._physical_wh(c))
            sample = SampledValue(
                value=str(int(register_wh)),
                context=ReadingContext.trigger,
                measurand=Measurand.energy_active_import_register,
                unit=UnitOfMeasure.wh,
            )
            reading = MeterValue(timestamp=ocpp_timestamp(self.clock.now()), sampled_value=[sample])
            transaction_id = visit.transaction.id if visit else None
            await self._notify(
                call.MeterValues(connector_id=c, meter_value=[reading], transaction_id=transaction_id)
            )

    # ------------------------------------------------ Get/ChangeConfiguration
    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        known, unknown = self.configuration.get(key)
        return call_result.GetConfiguration(configuration_key=known or None, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        status = self.configuration.change(key, value)
        self.journal.record(f"configuration {key}={value}: {status}")
        if status is ConfigurationStatus.accepted and key == HEARTBEAT_INTERVAL:
            self._heartbeat_changed.set()
        return call_result.ChangeConfiguration(status)

    # --------------------------------------------------------- GetDiagnostics
    @on(Action.get_diagnostics)
    def on_get_diagnostics(
        self,
        location: str,
        call_unique_id: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        start_time: str | None = None,
        stop_time: str | None = None,
    ) -> call_result.GetDiagnostics:
        if self._upload is not None and not self._upload.done():
            # One upload at a time: there is no other file to name.
            return call_result.GetDiagnostics()
        body = self._diagnostics_file(start_time, stop_time)
        attempts = diagnostics.DEFAULT_ATTEMPTS if retries is None else max(retries, 1)
        interval = diagnostics.DEFAULT_RETRY_INTERVAL_S if retry_interval is None else retry_interval
        upload = partial(self._upload_diagnostics, location, body, attempts, interval)
        self._after_reply(call_unique_id, lambda: self._start_upload(upload))
        return call_result.GetDiagnostics(file_name=f"{self.id}-{self.clock.now():%Y%m%dT%H%M%SZ}.log")

    @after(Action.get_diagnostics)
    def after_get_diagnostics(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _diagnostics_file(self, start_time: str | None, stop_time: str | None) -> bytes:
        boot = self.boot_request
        header = {
            "charge point": f"{boot.charge_point_vendor} {boot.charge_point_model}",
            "firmware": boot.firmware_version or "unknown",
            "generated": ocpp_timestamp(self.clock.now()),
            "period": f"{start_time or 'start'} to {stop_time or 'now'}",
        }
        return diagnostics.log_file(
            self.id, header, self.journal.lines(_moment(start_time), _moment(stop_time))
        )

    def _start_upload(self, upload: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._upload = self._spawn(upload(), "diagnostics upload")

    async def _upload_diagnostics(self, location: str, body: bytes, attempts: int, interval: float) -> None:
        self.journal.record(f"diagnostics upload to {redacted_location(location)}")
        await self._notify(call.DiagnosticsStatusNotification(DiagnosticsStatus.uploading))
        uploaded = await diagnostics.upload(location, body, attempts, interval)
        status = DiagnosticsStatus.uploaded if uploaded else DiagnosticsStatus.upload_failed
        await self._notify(call.DiagnosticsStatusNotification(status))

    # ------------------------------------------------------------- ClearCache
    @on(Action.clear_cache)
    def on_clear_cache(self) -> call_result.ClearCache:
        return call_result.ClearCache(ClearCacheStatus.accepted)

    # --------------------------------------- RemoteStart/StopTransaction
    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self,
        id_tag: str,
        call_unique_id: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
    ) -> call_result.RemoteStartTransaction:
        # A charging profile is accepted and not applied: the simulator has no smart charging.
        chosen = None if self._rebooting else remote_start.free_connector(self, connector_id)
        self.journal.record(
            f"remote start for {id_tag}: " + (f"connector {chosen}" if chosen else "rejected")
        )
        if chosen is None:
            return call_result.RemoteStartTransaction(RemoteStartStopStatus.rejected)
        self._after_reply(call_unique_id, lambda: self._start_remote_session(chosen, id_tag))
        return call_result.RemoteStartTransaction(RemoteStartStopStatus.accepted)

    @after(Action.remote_start_transaction)
    def after_remote_start_transaction(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _start_remote_session(self, connector_id: int, id_tag: str) -> None:
        session = remote_start.run_remote_session(self, connector_id, id_tag)
        self.remote_sessions.append(self._spawn(session, f"remote session on connector {connector_id}"))

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        visit = next((v for v in self.sessions.values() if v.transaction.id == transaction_id), None)
        self.journal.record(
            f"remote stop of transaction {transaction_id}: " + ("accepted" if visit else "rejected")
        )
        if visit is None:
            return call_result.RemoteStopTransaction(RemoteStartStopStatus.rejected)
        visit.interrupt(Reason.remote)
        return call_result.RemoteStopTransaction(RemoteStartStopStatus.accepted)


def _moment(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise PropertyConstraintViolationError(details={"cause": f"not a date and time: {value}"}) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
