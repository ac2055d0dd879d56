"""The backend's OCPP 2.0.1 CALLs to a simulated 2.0.1 charger, on top of the shared charger state.

As in remote.py, the `@on` handlers only decide and answer; what a CALL causes goes out after the
answer (ChargerState._after_reply, started by the action's `@after` hook).

    RequestStartTransaction  Accepted if the EVSE (or, without one, some EVSE) is free and usable,
                        then a session with the backend's idToken and the charger's `remote_plan`,
                        remoteStartId echoed in its Started event; Authorize first when
                        AuthCtrlr.AuthorizeRemoteStart is true. Rejected otherwise.
    RequestStopTransaction   Accepted if the charger runs that transaction, which ends with
                        triggerReason RemoteStop; Rejected otherwise.
    Reset               Immediate: Accepted, sessions end (ResetCommand, ImmediateReset), boot
                        (reason RemoteReset), every EVSE's status. OnIdle: the same once no session
                        runs (Scheduled while one does). An EVSE's own reset, or one during a
                        reset: Rejected.
    UnlockConnector     Unlocked; OngoingAuthorizedTransaction while a session runs on it (F05: the
                        backend stops it first); UnlockFailed with a ConnectorLockFailure fault;
                        UnknownConnector for one the charger does not have.
    ChangeAvailability  Accepted, then the statuses; Scheduled while a session runs on an EVSE it covers.
    TriggerMessage      Accepted, then BootNotification, Heartbeat, StatusNotification, MeterValues,
                        TransactionEvent, FirmwareStatusNotification or LogStatusNotification;
                        NotImplemented for the others, Rejected for an EVSE it does not have.
    GetVariables, SetVariables, GetBaseReport   the device model (device_model.py); a report's
                        entries follow in NotifyReport frames (seqNo from 0, tbc on all but the last).
    GetLog              Accepted with the file name, LogStatusNotification Uploading, the PUT (as
                        1.6's GetDiagnostics), Uploaded or UploadFailure. A new one cancels an
                        upload under way (AcceptedCanceled, N01.FR.12).
    UpdateFirmware      Accepted, then the 1.6 charger's download, verification (the pinned operator
                        key) and A/B install, each step a FirmwareStatusNotification with requestId;
                        a bad signature is InvalidSignature plus a SecurityEventNotification
                        InvalidFirmwareSignature. Rejected while an update is under way.
    CostUpdated         Accepted and kept per transaction (`running_costs`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from functools import partial
from typing import Any

from ocpp.routing import after, on
from ocpp.v16.enums import ChargePointErrorCode, FirmwareStatus, Reason
from ocpp.v201 import call, call_result
from ocpp.v201.datatypes import ChargingStationType, MeterValueType, SampledValueType, UnitOfMeasureType
from ocpp.v201.enums import (
    Action,
    BootReasonEnumType,
    ChangeAvailabilityStatusEnumType,
    FirmwareStatusEnumType,
    GenericDeviceModelStatusEnumType,
    IdTokenEnumType,
    LogStatusEnumType,
    MeasurandEnumType,
    MessageTriggerEnumType,
    OperationalStatusEnumType,
    ReadingContextEnumType,
    ReportBaseEnumType,
    RequestStartStopStatusEnumType,
    ResetEnumType,
    ResetStatusEnumType,
    TriggerMessageStatusEnumType,
    UnlockStatusEnumType,
    UpdateFirmwareStatusEnumType,
    UploadLogStatusEnumType,
)

from chargenet_firmware_format import OperatorKey
from chargenet_shim.firmware import INVALID_FIRMWARE_SIGNATURE, TECH_INFO_LENGTH, retrieve_moment
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.redaction import redacted_location
from chargenet_shim.sim import diagnostics, remote_start
from chargenet_shim.sim.charger_state import ChargerState
from chargenet_shim.sim.charging201 import Visit201
from chargenet_shim.sim.configuration import HEARTBEAT_INTERVAL
from chargenet_shim.sim.connectors import Fault
from chargenet_shim.sim.device_events import DeviceEvents
from chargenet_shim.sim.device_model import DeviceModel, pages
from chargenet_shim.sim.firmware_install import FirmwareInstaller, FirmwareSlots
from chargenet_shim.sim.session import SessionPlan, SessionTruth
from chargenet_shim.sim.simclock import SimClock

LOG = logging.getLogger(__name__)

BOOT_ATTEMPTS_AFTER_RESET = 3
_FIRMWARE_RETRY_INTERVAL_S = 30


class Remote201(ChargerState):
    """Needs SimulatedCharger201's run_boot, send_status, heartbeat and these:"""

    station: ChargingStationType
    run_boot: Callable[..., Awaitable[Any]]
    heartbeat: Callable[[], Awaitable[Any]]
    # (EVSE, idToken, its type, remoteStartId): the session a RequestStartTransaction starts.
    _start_remote_session: Callable[[int, str, IdTokenEnumType, int], None]
    # As the 1.6 charger's (firmware_updates.FirmwareUpdates): the operator key pinned, versions that crash.
    firmware_key: OperatorKey | None = None
    unbootable_firmware: frozenset[str] = frozenset()

    def _setup_remote201(self) -> None:
        self._setup_state()
        self.device_model = DeviceModel(self.configuration)
        self.device_events = DeviceEvents()
        self.has_connector_lock = True
        self._upload: asyncio.Task[Any] | None = None
        self._upload_request_id: int | None = None
        self._firmware_slots = FirmwareSlots(self.station.firmware_version or "unknown")
        self._firmware_update: asyncio.Task[Any] | None = None
        # The last FirmwareStatusNotification sent and its requestId (TriggerMessage repeats it).
        self.firmware_status: tuple[FirmwareStatusEnumType, int | None] = (FirmwareStatusEnumType.idle, None)
        # CostUpdated's running totals, by transactionId.
        self.running_costs: dict[str, Decimal] = {}
        self.remote_plan: SessionPlan = remote_start.default_remote_plan()
        self.remote_clock: Callable[[], SimClock] = lambda: self.clock
        self.remote_sessions: list[asyncio.Task[SessionTruth]] = []

    @property
    def running_firmware(self) -> str:
        return self._firmware_slots.running_version

    # ------------------------------------------------------------ fault hooks
    async def _tell_fault(self, connector_id: int, fault: Fault, *, present: bool) -> None:
        """2.0.1's Faulted status has no error code: a NotifyEvent names the faulty component (device_events.py)."""
        await self._notify(self.device_events.problem(connector_id, fault, self.clock.now(), present=present))

    # --------------------------------------------- RequestStart/StopTransaction
    @on(Action.request_start_transaction)
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        call_unique_id: str,
        evse_id: int | None = None,
        **_: Any,
    ) -> call_result.RequestStartTransaction:
        # A charging profile is accepted and not applied: the simulator has no smart charging.
        chosen = None if self._rebooting else remote_start.free_connector(self, evse_id)
        token = id_token["id_token"]
        self.journal.record(
            f"remote start {remote_start_id} for {token}: " + (f"EVSE {chosen}" if chosen else "rejected")
        )
        if chosen is None:
            return call_result.RequestStartTransaction(RequestStartStopStatusEnumType.rejected)
        token_type = IdTokenEnumType(id_token["type"])
        self._after_reply(
            call_unique_id, lambda: self._start_remote_session(chosen, token, token_type, remote_start_id)
        )
        return call_result.RequestStartTransaction(RequestStartStopStatusEnumType.accepted)

    @after(Action.request_start_transaction)
    def after_request_start_transaction(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    @on(Action.request_stop_transaction)
    def on_request_stop_transaction(
        self, transaction_id: str, **_: Any
    ) -> call_result.RequestStopTransaction:
        visit = self._visit_of(transaction_id)
        self.journal.record(
            f"remote stop of transaction {transaction_id}: " + ("accepted" if visit else "rejected")
        )
        if visit is None:
            return call_result.RequestStopTransaction(RequestStartStopStatusEnumType.rejected)
        visit.interrupt(Reason.remote)
        return call_result.RequestStopTransaction(RequestStartStopStatusEnumType.accepted)

    def _visit_of(self, transaction_id: str) -> Visit201 | None:
        return next(
            (
                v
                for v in self.sessions.values()
                if isinstance(v, Visit201) and v.transaction_id == transaction_id
            ),
            None,
        )

    # ------------------------------------------------------------------ Reset
    @on(Action.reset)
    def on_reset(
        self, type: str, call_unique_id: str, evse_id: int | None = None, **_: Any
    ) -> call_result.Reset:
        if self._rebooting or evse_id is not None:
            return call_result.Reset(ResetStatusEnumType.rejected)
        waits = type == ResetEnumType.on_idle and bool(self.sessions)
        self._after_reply(call_unique_id, lambda: self._start_reboot(waits))
        return call_result.Reset(ResetStatusEnumType.scheduled if waits else ResetStatusEnumType.accepted)

    @after(Action.reset)
    def after_reset(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _start_reboot(self, when_idle: bool) -> None:
        self._reboot = self._spawn(self._reset(when_idle), "reboot")

    async def _reset(self, when_idle: bool) -> None:
        if when_idle:
            await self._sessions_ended()
        await self._restart("remote reset", Reason.hard_reset, BootReasonEnumType.remote_reset)

    async def _restart(
        self, what: str, reason: Reason, boot_reason: BootReasonEnumType = BootReasonEnumType.watchdog
    ) -> None:
        """Sessions stop with `reason`, the boot is repeated with `boot_reason` (unprompted: the
        watchdog's), every status is told."""
        self.journal.record(what)
        await self._stop_sessions(list(self.sessions), reason)
        await self._stop_heartbeats()
        self.registration = None
        self.board.restarted()
        await self.run_boot(max_attempts=BOOT_ATTEMPTS_AFTER_RESET, reason=boot_reason)
        self.reported.clear()
        await self._report(range(1, self.connectors + 1))

    # -------------------------------------------------------- UnlockConnector
    @on(Action.unlock_connector)
    def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        if not self.has_connector_lock or not 1 <= evse_id <= self.connectors or connector_id != 1:
            status = UnlockStatusEnumType.unknown_connector
        elif evse_id in self.sessions:
            status = UnlockStatusEnumType.ongoing_authorized_transaction
        else:
            fault = self.board.faults.get(evse_id)
            jammed = fault is not None and fault.error_code is ChargePointErrorCode.connector_lock_failure
            status = UnlockStatusEnumType.unlock_failed if jammed else UnlockStatusEnumType.unlocked
        self.journal.record(f"EVSE {evse_id} connector {connector_id}: unlock {status}")
        return call_result.UnlockConnector(status)

    # ----------------------------------------------------- ChangeAvailability
    @on(Action.change_availability)
    def on_change_availability(
        self, operational_status: str, call_unique_id: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> call_result.ChangeAvailability:
        evse_id = 0 if evse is None else int(evse["id"])
        operative = operational_status == OperationalStatusEnumType.operative
        status = ChangeAvailabilityStatusEnumType(
            self.board.change_availability(evse_id, operative, self.sessions.keys()).value
        )
        self.journal.record(f"EVSE {evse_id}: {operational_status} {status}")
        if status == ChangeAvailabilityStatusEnumType.accepted:
            covered = self.board.covered(evse_id)
            self._after_reply(call_unique_id, lambda: self._spawn(self._report(covered), "availability"))
        return call_result.ChangeAvailability(status)

    @after(Action.change_availability)
    def after_change_availability(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    # --------------------------------------------------------- TriggerMessage
    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, call_unique_id: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        evse_id = None if evse is None else int(evse["id"])
        if evse_id is not None and not 1 <= evse_id <= self.connectors:
            return call_result.TriggerMessage(TriggerMessageStatusEnumType.rejected)
        send = self._triggered(requested_message, evse_id)
        if send is None:
            return call_result.TriggerMessage(TriggerMessageStatusEnumType.not_implemented)
        self._after_reply(call_unique_id, lambda: self._spawn(send(), f"triggered {requested_message}"))
        return call_result.TriggerMessage(TriggerMessageStatusEnumType.accepted)

    @after(Action.trigger_message)
    def after_trigger_message(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _triggered(self, requested: str, evse_id: int | None) -> Callable[[], Awaitable[Any]] | None:
        evses = range(1, self.connectors + 1) if evse_id is None else [evse_id]
        match requested:
            case MessageTriggerEnumType.boot_notification:
                return partial(self.run_boot, reason=BootReasonEnumType.triggered)
            case MessageTriggerEnumType.heartbeat:
                return self.heartbeat
            case MessageTriggerEnumType.status_notification:
                return partial(self._tell_statuses, evses)
            case MessageTriggerEnumType.meter_values:
                return partial(self._send_registers, evses)
            case MessageTriggerEnumType.transaction_event:
                return partial(self._update_transactions, evses)
            case MessageTriggerEnumType.firmware_status_notification:
                status, request_id = self.firmware_status
                return partial(self._notify, call.FirmwareStatusNotification(status, request_id))
            case MessageTriggerEnumType.log_status_notification:
                uploading = self._upload is not None and not self._upload.done()
                status = UploadLogStatusEnumType.uploading if uploading else UploadLogStatusEnumType.idle
                request_id = self._upload_request_id if uploading else None
                return partial(self._notify, call.LogStatusNotification(status, request_id))
        return None

    async def _tell_statuses(self, evses: range | list[int]) -> None:
        for evse in evses:
            current = self.reported.get(evse) if evse in self.sessions else None
            await self._tell(evse, current or self.board.idle_status(evse))

    async def _send_registers(self, evses: range | list[int]) -> None:
        for evse in evses:
            register_wh = self.meters[evse].register_wh(self._physical_wh(evse))
            sample = SampledValueType(
                value=int(register_wh),
                context=ReadingContextEnumType.trigger,
                measurand=MeasurandEnumType.energy_active_import_register,
                unit_of_measure=UnitOfMeasureType(unit="Wh"),
            )
            reading = MeterValueType(timestamp=ocpp_timestamp(self.clock.now()), sampled_value=[sample])
            await self._notify(call.MeterValues(evse_id=evse, meter_value=[reading]))

    async def _update_transactions(self, evses: range | list[int]) -> None:
        for evse in evses:
            visit = self.sessions.get(evse)
            if isinstance(visit, Visit201) and visit.started_at is not None:
                await visit.trigger_update()

    # ------------------------------------------- Get/SetVariables, GetBaseReport
    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> call_result.GetVariables:
        return call_result.GetVariables([self.device_model.get(requested) for requested in get_variable_data])

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> call_result.SetVariables:
        results = []
        for requested in set_variable_data:
            result, changed = self.device_model.set(requested)
            self.journal.record(
                f"{requested['component']['name']}.{requested['variable']['name']}: {result.attribute_status}"
            )
            if changed is not None and changed.backed_by == HEARTBEAT_INTERVAL:
                self._heartbeat_changed.set()
            results.append(result)
        return call_result.SetVariables(results)

    @on(Action.get_base_report)
    def on_get_base_report(
        self, request_id: int, report_base: str, call_unique_id: str, **_: Any
    ) -> call_result.GetBaseReport:
        entries = self.device_model.report(ReportBaseEnumType(report_base))
        if entries is None:
            return call_result.GetBaseReport(GenericDeviceModelStatusEnumType.not_supported)
        self._after_reply(
            call_unique_id, lambda: self._spawn(self._notify_report(request_id, entries), "report")
        )
        return call_result.GetBaseReport(GenericDeviceModelStatusEnumType.accepted)

    @after(Action.get_base_report)
    def after_get_base_report(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    async def _notify_report(self, request_id: int, entries: list[Any]) -> None:
        frames = list(pages(entries))
        generated_at = ocpp_timestamp(self.clock.now())
        for seq_no, page in enumerate(frames):
            more = seq_no < len(frames) - 1
            await self._notify(
                call.NotifyReport(
                    request_id=request_id,
                    generated_at=generated_at,
                    seq_no=seq_no,
                    report_data=page,
                    tbc=more or None,
                )
            )

    # ------------------------------------------------------------------ GetLog
    @on(Action.get_log)
    def on_get_log(
        self,
        log: dict[str, Any],
        log_type: str,
        request_id: int,
        call_unique_id: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.GetLog:
        status = LogStatusEnumType.accepted
        if self._upload is not None and not self._upload.done():
            self._upload.cancel()
            status = LogStatusEnumType.accepted_canceled
        body = self._log_file(log_type, log.get("oldest_timestamp"), log.get("latest_timestamp"))
        attempts = diagnostics.DEFAULT_ATTEMPTS if retries is None else max(retries, 1)
        interval = diagnostics.DEFAULT_RETRY_INTERVAL_S if retry_interval is None else retry_interval
        upload = partial(self._upload_log, log["remote_location"], body, request_id, attempts, interval)
        self._after_reply(call_unique_id, lambda: self._start_upload(upload, request_id))
        file_name = f"{self.id}-{log_type}-{self.clock.now():%Y%m%dT%H%M%SZ}.log"
        return call_result.GetLog(status, filename=file_name)

    @after(Action.get_log)
    def after_get_log(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _log_file(self, log_type: str, oldest: str | None, latest: str | None) -> bytes:
        header = {
            "charging station": f"{self.station.vendor_name} {self.station.model}",
            "firmware": self.running_firmware,
            "log": log_type,
            "generated": ocpp_timestamp(self.clock.now()),
            "period": f"{oldest or 'start'} to {latest or 'now'}",
        }
        return diagnostics.log_file(self.id, header, self.journal.lines(_moment(oldest), _moment(latest)))

    def _start_upload(self, upload: Callable[[], Coroutine[Any, Any, None]], request_id: int) -> None:
        self._upload_request_id = request_id
        self._upload = self._spawn(upload(), "log upload")

    async def _upload_log(
        self, location: str, body: bytes, request_id: int, attempts: int, interval: float
    ) -> None:
        self.journal.record(f"log upload {request_id} to {redacted_location(location)}")
        await self._notify(call.LogStatusNotification(UploadLogStatusEnumType.uploading, request_id))
        uploaded = await diagnostics.upload(location, body, attempts, interval)
        status = UploadLogStatusEnumType.uploaded if uploaded else UploadLogStatusEnumType.upload_failure
        await self._notify(call.LogStatusNotification(status, request_id))

    # ---------------------------------------------------------- UpdateFirmware
    @on(Action.update_firmware)
    def on_update_firmware(
        self,
        request_id: int,
        firmware: dict[str, Any],
        call_unique_id: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.UpdateFirmware:
        retrieve_at = retrieve_moment(firmware["retrieve_date_time"])
        if self._firmware_update is not None and not self._firmware_update.done():
            self.journal.record(f"firmware update {request_id} rejected: one is under way")
            return call_result.UpdateFirmware(UpdateFirmwareStatusEnumType.rejected)
        attempts = 1 if retries is None else max(retries, 1)
        interval = _FIRMWARE_RETRY_INTERVAL_S if retry_interval is None else retry_interval
        update = partial(
            self._update_firmware, firmware["location"], retrieve_at, request_id, attempts, interval
        )
        self._after_reply(call_unique_id, lambda: self._start_firmware_update(update))
        return call_result.UpdateFirmware(UpdateFirmwareStatusEnumType.accepted)

    @after(Action.update_firmware)
    def after_update_firmware(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _start_firmware_update(self, update: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._firmware_update = self._spawn(update(), "firmware update")

    async def _update_firmware(
        self, location: str, retrieve_at: dt.datetime, request_id: int, attempts: int, interval: int
    ) -> None:
        await self.clock.sleep_until(retrieve_at)
        self.journal.record(f"firmware update {request_id} from {redacted_location(location)}")
        installer = FirmwareInstaller(
            self._firmware_slots,
            self.firmware_key,
            partial(self._report_firmware, request_id),
            self._boot_firmware,
            identity=(self.station.vendor_name, self.station.model),
            now=self.clock.now,
        )
        await installer.update(location, attempts=attempts, retry_interval_s=interval)

    async def _report_firmware(self, request_id: int, status: FirmwareStatus, detail: str) -> None:
        """The installer's steps in 2.0.1's words, which has all of them (1.6's core has seven)."""
        self.journal.record(f"firmware {status}" + (f": {detail}" if detail else ""))
        reported = FirmwareStatusEnumType(status.value)
        self.firmware_status = (reported, request_id)
        if reported == FirmwareStatusEnumType.invalid_signature:
            event = call.SecurityEventNotification(
                type=INVALID_FIRMWARE_SIGNATURE,
                timestamp=ocpp_timestamp(self.clock.now()),
                tech_info=detail[:TECH_INFO_LENGTH] or None,
            )
            await self._notify(event)
        await self._notify(call.FirmwareStatusNotification(reported, request_id))

    async def _boot_firmware(self, version: str) -> bool:
        # Installed into the slot not running: only the reboot cuts the power, once no one charges.
        await self._sessions_ended()
        if version in self.unbootable_firmware:
            self.journal.record(f"firmware {version} failed to boot")
            return False
        self.station.firmware_version = version
        self._reboot = self._spawn(
            self._restart("firmware reboot", Reason.reboot, BootReasonEnumType.firmware_update), "reboot"
        )
        await self._reboot
        return True

    # ------------------------------------------------------------- CostUpdated
    @on(Action.cost_updated)
    def on_cost_updated(self, total_cost: float, transaction_id: str, **_: Any) -> call_result.CostUpdated:
        # The total is a JSON number: kept as the decimal it was written as, never as a float's digits.
        self.running_costs[transaction_id] = Decimal(str(total_cost))
        self.journal.record(f"transaction {transaction_id}: running cost {total_cost}")
        return call_result.CostUpdated()


def _moment(value: str | None) -> dt.datetime | None:
    return None if value is None else retrieve_moment(value)
