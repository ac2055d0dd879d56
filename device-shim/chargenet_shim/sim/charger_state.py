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
import logging
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v16.enums import ChargePointErrorCode, Reason, RegistrationStatus

from chargenet_shim.link import LinkError
from chargenet_shim.sim.charging import SessionError, Visit
from chargenet_shim.sim.configuration import HEARTBEAT_INTERVAL, Configuration
from chargenet_shim.sim.connectors import ConnectorBoard, ConnectorStatus, Fault
from chargenet_shim.sim.diagnostics import Journal
from chargenet_shim.sim.outbox import Outbox
from chargenet_shim.sim.simclock import SimClock

LOG = logging.getLogger(__name__)


class ChargerState:
    """Needs SimulatedCharger's send_status and heartbeat, and these:"""

    id: str
    connectors: int
    clock: SimClock
    outbox: Outbox
    registration: RegistrationStatus | None

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
        self.board.faults[connector_id] = Fault(code, info, vendor_error_code, survives_reset)
        self.journal.record(f"connector {connector_id}: fault {code}, vendor code {vendor_error_code}")
        covered = self.board.covered(connector_id)
        await self._stop_sessions([c for c in covered if c in self.sessions], Reason.other)
        await self._report(covered)

    async def clear_fault(self, connector_id: int) -> None:
        """The fault is gone: StatusNotification NoError with Available (Unavailable if Inoperative)."""
        self._require_connector(connector_id)
        self.board.faults.pop(connector_id, None)
        self.journal.record(f"connector {connector_id}: fault cleared")
        await self._report(self.board.covered(connector_id))

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
