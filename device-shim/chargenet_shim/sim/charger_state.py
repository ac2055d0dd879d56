"""What a simulated charger keeps track of besides its sessions' physics, and the fault hooks for tests.

The configuration, each connector's availability and faults (connectors.py), the sessions
running (charging.Visit), the status the backend was last told per connector, the event
journal for diagnostics, the heartbeat loop and the background tasks that send what the
backend's commands cause (remote.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v16.enums import ChargePointErrorCode, Reason, RegistrationStatus

from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.frame_limit import check_frame_size
from chargenet_shim.link import ChargerLink, Link, LinkError
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.redaction import redacting_logger
from chargenet_shim.sim.chaos import ChaosConfig, ChaosLink
from chargenet_shim.sim.charging import SessionError, Visit
from chargenet_shim.sim.configuration import HEARTBEAT_INTERVAL, Configuration
from chargenet_shim.sim.connectors import ConnectorBoard, ConnectorStatus, Fault
from chargenet_shim.sim.diagnostics import Journal
from chargenet_shim.sim.metering import Meter
from chargenet_shim.sim.outbox import Outbox
from chargenet_shim.sim.simclock import SimClock

LOG = logging.getLogger(__name__)

# OCPP lets the charge point pick the retry delay when the backend sends interval 0.
DEFAULT_BOOT_RETRY_SECS = 30
# A fresh-from-the-factory register reads 0; a charger in service has some history.
DEFAULT_METER_BASE_WH = 1_250_000


class NotAccepted(RuntimeError):
    """OCPP forbids other requests until the backend has accepted the BootNotification."""


class ChargerState:
    """Needs the charger's send_status and heartbeat (SimulatedCharger's, SimulatedCharger201's),
    `_set_up` (the rest of its construction), `_on_mqtt_link` (what starts once a boot on the
    MQTT link is accepted), ocpp's ChargePoint after it in the MRO, and these:"""

    id: str
    # Which ingest topic the MQTT link publishes to (ocpp_issuer.CertificateRenewal's, per class).
    ocpp_version: OcppVersion
    call: Callable[..., Awaitable[Any]]
    _receiver: asyncio.Task[None] | None = None

    def __init__(
        self,
        credentials: ChargerCredentials,
        connectors: int = 2,
        vendor: str = "chargenet",
        model: str = "SimCharger",
        firmware: str = "0.1.0",
        response_timeout: float = 10.0,
        *,
        link: Link | None = None,
        chaos: ChaosConfig | None = None,
        meter_base_wh: int = DEFAULT_METER_BASE_WH,
        clock: SimClock | None = None,
    ) -> None:
        """`link` replaces the MQTT link (tests); `chaos` puts a ChaosLink in front of it;
        `clock` (default: real time) dates the statuses sent outside a session."""
        self.clock = clock or SimClock()
        inner = link or ChargerLink(credentials, ocpp_version=self.ocpp_version)
        self.link: Link = ChaosLink(inner, chaos) if chaos else inner
        # The MQTT link whose certificate renews itself (certificate renewal, chargenet_shim.ocpp_issuer).
        self._mqtt_link = inner if isinstance(inner, ChargerLink) else None
        # ocpp logs every frame (INFO) and a frame whose handler raised (ERROR): a GetDiagnostics or
        # UpdateFirmware location's credentials are redacted before any handler sees the record.
        super().__init__(  # ocpp's ChargePoint
            credentials.charger_id,
            self.link,
            response_timeout=response_timeout,
            logger=redacting_logger("ocpp"),
        )
        self.connectors = connectors
        self.outbox = Outbox(self.call, self.link)
        # Each connector's Energy.Active.Import.Register, kept fractional so no Wh is lost to rounding.
        self.meter_wh = {connector: float(meter_base_wh) for connector in range(1, connectors + 1)}
        # What each connector's meter shows of it: healthy until a test or scenario injects a fault.
        self.meters = {connector: Meter() for connector in range(1, connectors + 1)}
        self.registration: RegistrationStatus | None = None
        self._set_up(vendor, model, firmware)

    def _set_up(self, vendor: str, model: str, firmware: str) -> None:
        """The version's own parts: its boot identity, its command handlers' state."""
        raise NotImplementedError

    # ------------------------------------------------------------- lifecycle
    async def start(self, connect_timeout: float = 10.0) -> None:
        """Connect the link and run ocpp's receive loop in the background."""
        await self.link.connect(connect_timeout)
        self._receiver = asyncio.create_task(super().start(), name=f"ocpp-{self.id}")

    async def _send(self, message: str) -> None:
        """Every frame ocpp's ChargePoint sends; one over the backend's limit never reaches the link.

        Raises FrameTooLarge, the GenericError the backend would answer: call() raises it to the
        caller, and an answer to a backend CALL turns into ocpp's CALLERROR GenericError for that
        CALL (ocpp's route_message answers an OCPPError raised while handling one). Any link, not
        only ChargerLink, is spared a frame the broker would drop the connection for (chargenet_shim.frame_limit).
        """
        check_frame_size(message)
        await super()._send(message)

    async def stop(self) -> None:
        await self._stop_background()
        await self.outbox.close()
        # Closing the link first ends the receive loop through recv() even if the
        # cancellation below is lost while the loop is waiting for a PUBACK.
        await self.link.close()
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, LinkError):
                await receiver

    @property
    def heartbeat_interval(self) -> int | None:
        """HeartbeatInterval once a boot is accepted: the boot's reply sets it, and the backend's changes."""
        if self.registration != RegistrationStatus.accepted:
            return None
        return self.configuration.heartbeat_interval

    async def _boot(self, request: Any, max_attempts: int, resends: int) -> Any:
        """Boot with `request`, retrying after the backend's interval while it answers Pending or Rejected.

        A BootNotification left unanswered (an overloaded backend, a lost reply) is sent again
        up to `resends` times, as a charger that may do nothing else until accepted would;
        the last one's TimeoutError is raised. The registration statuses are the same three words
        in both versions.
        """
        if max_attempts < 1 or resends < 0:
            raise ValueError("max_attempts must be at least 1 and resends not negative")
        for attempt in range(1, max_attempts + 1):
            reply = await self._boot_answered(request, resends)
            self.registration = RegistrationStatus(reply.status)
            if self.registration == RegistrationStatus.accepted:
                self._booted(reply.interval)
                if self._mqtt_link is not None:
                    self._on_mqtt_link(self._mqtt_link)
                return reply
            if attempt < max_attempts:
                await asyncio.sleep(reply.interval or DEFAULT_BOOT_RETRY_SECS)
        return reply

    async def _boot_answered(self, request: Any, resends: int) -> Any:
        for _ in range(resends):
            try:
                return await self.call(request, suppress=False)
            except TimeoutError:
                self.journal.record("BootNotification unanswered: sending it again")
        return await self.call(request, suppress=False)

    def _on_mqtt_link(self, link: ChargerLink) -> None:
        """What runs beside an MQTT link once a boot is accepted (certificate renewal, jobs)."""
        raise NotImplementedError

    def _require_accepted(self) -> None:
        if self.registration != RegistrationStatus.accepted:
            raise NotAccepted(f"{self.id}: BootNotification not accepted (status {self.registration})")

    def _setup_state(self) -> None:
        self.configuration = Configuration(self.connectors)
        self.board = ConnectorBoard(self.connectors)
        self.journal = Journal(self.clock)
        self.sessions: dict[int, Visit] = {}
        # The last status the backend was sent per connector, to tell it only what changed.
        self.reported: dict[int, ConnectorStatus] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeats: asyncio.Task[Any] | None = None
        self._heartbeat_changed = asyncio.Event()
        # A Reset under way (remote.py).
        self._reboot: asyncio.Task[Any] | None = None
        # Leaving the backend's CALLs unanswered (a hung charger, go_silent).
        self.silent = False
        # What to send once the answer to a CALL is out, by the CALL's message id.
        self._follow_ups: dict[str, Callable[[], None]] = {}

    # ---------------------------------------------------- receiving CALLs
    # ocpp's receive loop handles one CALL at a time and cannot take in a reply while a handler
    # runs: handlers only decide and answer, what a CALL causes goes out after the answer.
    async def route_message(self, raw_msg: str) -> None:
        if self.silent and _is_call(raw_msg):
            LOG.info("%s: silent, backend CALL left unanswered: %s", self.id, raw_msg)
            return
        try:
            await super().route_message(raw_msg)
        except LinkError as exc:
            # An answer lost to the link is lost like any frame; the receive loop must go on. What
            # was to follow the answer does not: CALLs are handled one at a time, so it is the only one.
            LOG.warning("%s: answer to a backend CALL lost: %s", self.id, exc)
            self._follow_ups.clear()

    def go_silent(self) -> None:
        """Leave the backend's CALLs unanswered, as a hung charger does; its own messages go on."""
        self.silent = True
        self.journal.record("command processing hung")

    def resume(self) -> None:
        self.silent = False
        self.journal.record("command processing resumed")

    def _after_reply(self, call_unique_id: str, follow_up: Callable[[], None]) -> None:
        self._follow_ups[call_unique_id] = follow_up

    def _follow_up(self, call_unique_id: str) -> None:
        follow_up = self._follow_ups.pop(call_unique_id, None)
        if follow_up is not None:
            follow_up()

    # ------------------------------------------------------------ fault hooks
    async def inject_fault(
        self,
        connector_id: int,
        error_code: ChargePointErrorCode | str,
        vendor_error_code: str | None = None,
        info: str | None = None,
        *,
        survives_reset: bool = False,
    ) -> None:
        """The connector (0: the whole charger) fails: StatusNotification Faulted with `error_code`.

        A session the fault covers stops first (reason Other): the charger cuts the power.
        ConnectorLockFailure also makes UnlockConnector fail. A Reset cures the fault unless
        `survives_reset`.
        """
        code = ChargePointErrorCode(error_code)
        if code is ChargePointErrorCode.no_error:
            raise ValueError("NoError is no fault: clear_fault() ends one")
        self._require_connector(connector_id)
        fault = self.board.faults[connector_id] = Fault(code, info, vendor_error_code, survives_reset)
        self.journal.record(f"connector {connector_id}: fault {code}, vendor code {vendor_error_code}")
        covered = self.board.covered(connector_id)
        await self._stop_sessions([c for c in covered if c in self.sessions], Reason.other)
        await self._report(covered)
        await self._tell_fault(connector_id, fault, present=True)

    async def clear_fault(self, connector_id: int) -> None:
        """The fault is gone: StatusNotification NoError with Available (Unavailable if Inoperative)."""
        self._require_connector(connector_id)
        fault = self.board.faults.pop(connector_id, None)
        self.journal.record(f"connector {connector_id}: fault cleared")
        await self._report(self.board.covered(connector_id))
        if fault is not None:
            await self._tell_fault(connector_id, fault, present=False)

    async def _tell_fault(self, connector_id: int, fault: Fault, *, present: bool) -> None:
        """What else tells the backend of a fault than its status: nothing in 1.6 (the status has
        the error code); 2.0.1 overrides it (remote201.Remote201)."""

    # ---------------------------------------------------------- the sessions
    def occupy(self, visit: Visit) -> None:
        """A session starts on the visit's connector: not while it is busy, unavailable or faulted."""
        connector_id = visit.plan.connector_id
        if self._rebooting:
            # Until the boot is accepted again nothing but a BootNotification may be sent.
            raise SessionError(f"{self.id} is restarting")
        if connector_id in self.sessions:
            raise SessionError(f"{self.id}: connector {connector_id} is busy")
        if not self.board.usable(connector_id):
            status = self.board.idle_status(connector_id).status
            raise SessionError(f"{self.id}: connector {connector_id} is {status}")
        self.sessions[connector_id] = visit

    @property
    def _rebooting(self) -> bool:
        return self._reboot is not None and not self._reboot.done()

    async def vacate(self, visit: Visit) -> None:
        """The session is over: availability changes waiting for it apply, the connector's status goes out."""
        connector_id = visit.plan.connector_id
        del self.sessions[connector_id]
        try:
            covered = self.board.apply_due(self.sessions.keys())
            await self._report([connector_id, *covered], visit.stopped_at or visit.clock.now())
        finally:
            visit.ended.set()

    # ------------------------------------------------------------ heartbeats
    def _booted(self, interval: int) -> None:
        """An accepted BootNotification: its interval is the HeartbeatInterval (0: keep ours)."""
        self.journal.record(f"boot accepted, heartbeat interval {interval}")
        if interval > 0:
            self.configuration.change(HEARTBEAT_INTERVAL, str(interval))
            self._heartbeat_changed.set()
        if self._heartbeats is None or self._heartbeats.done():
            self._heartbeats = self._spawn(self._beat(), "heartbeats")

    async def _beat(self) -> None:
        """A Heartbeat every HeartbeatInterval (real seconds: the backend's liveness is real time)."""
        while True:
            self._heartbeat_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.configuration.heartbeat_interval):
                    await self._heartbeat_changed.wait()
            if self._heartbeat_changed.is_set():
                # A new interval: it counts from now.
                continue
            with self._lossy("Heartbeat"):
                await self.heartbeat()

    async def _stop_heartbeats(self) -> None:
        heartbeats, self._heartbeats = self._heartbeats, None
        if heartbeats is not None:
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)

    # --------------------------------------------------------------- helpers
    async def _stop_background(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=f"{self.id}: {what}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.warning("%s failed: %r", task.get_name(), task.exception())

    async def _sessions_ended(self) -> None:
        while self.sessions:
            await asyncio.gather(*(visit.ended.wait() for visit in list(self.sessions.values())))

    def _physical_wh(self, connector_id: int) -> float:
        """What has flowed through the connector in its life, whatever its meter shows."""
        visit = self.sessions.get(connector_id)
        return visit.register_wh_now() if visit else self.meter_wh[connector_id]

    async def _stop_sessions(self, connectors: list[int], reason: Reason) -> None:
        visits = [self.sessions[c] for c in connectors]
        for visit in visits:
            visit.interrupt(reason)
        for visit in visits:
            await visit.ended.wait()

    async def _report(self, connectors: Iterable[int], moment: dt.datetime | None = None) -> None:
        """Tell the backend the status of each idle connector where it differs from what it was told."""
        for c in dict.fromkeys(connectors):
            status = self.board.idle_status(c)
            if c not in self.sessions and self.reported.get(c) != status:
                await self._tell(c, status, moment)

    async def _tell(
        self, connector_id: int, status: ConnectorStatus, moment: dt.datetime | None = None
    ) -> None:
        if self._registered(f"status of connector {connector_id}"):
            with self._lossy(f"status of connector {connector_id}"):
                await self.send_status(
                    connector_id,
                    status.status,
                    status.error_code,
                    status.info,
                    status.vendor_error_code,
                    moment,
                )

    async def _notify(self, request: Any) -> None:
        """A message that only informs the backend: not queued, and its loss is only logged."""
        if self._registered(type(request).__name__):
            with self._lossy(type(request).__name__):
                await self.outbox.call(request)

    def _registered(self, what: str) -> bool:
        if self.registration == RegistrationStatus.accepted:
            return True
        # Only a BootNotification may go out now; after a reset, the boot reports every status.
        LOG.info("%s: %s not sent: the boot is not accepted", self.id, what)
        return False

    def _note_status(self, request: call.StatusNotification) -> None:
        """Called by send_status for every StatusNotification it sends."""
        status = ConnectorStatus(request.status, request.error_code, request.info, request.vendor_error_code)
        self.reported[request.connector_id] = status
        self.journal.record(f"connector {request.connector_id}: {status.status} {status.error_code}")

    def _require_connector(self, connector_id: int) -> None:
        if not self.board.exists(connector_id):
            raise ValueError(f"{self.id} has no connector {connector_id}")

    @contextlib.contextmanager
    def _lossy(self, what: str) -> Iterator[None]:
        try:
            yield
        except (LinkError, TimeoutError, OCPPError) as exc:
            LOG.info("%s: %s lost: %s", self.id, what, exc)


def _is_call(raw_msg: str) -> bool:
    try:
        message = json.loads(raw_msg)
    except json.JSONDecodeError:
        return False
    return isinstance(message, list) and message[:1] == [2]
