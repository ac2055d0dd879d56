"""A simulated charger: the `ocpp` package's own charge point, speaking over a ChargerLink.

ocpp's ChargePoint needs only a connection with `async send(str)` and
`async recv() -> str`, which ChargerLink already is, so the OCPP-J framing,
message ids, schema validation and the NotImplemented answers to backend
calls without a handler all come from the library.

Everything after the boot goes through the Outbox, which keeps transaction
messages through outages (outbox.py); charging sessions are in charging.py, the
backend's commands in remote.py, and the configuration, connector availability,
heartbeats and fault hooks in charger_state.py, the faults tests and scenarios inject in
injections.py (what the meters show in metering.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import AuthorizationStatus, ChargePointErrorCode, ChargePointStatus, RegistrationStatus

from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.frame_limit import check_frame_size
from chargenet_shim.link import ChargerLink, Link, LinkError
from chargenet_shim.ocpp_issuer import CertificateRenewal
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.redaction import redacting_logger
from chargenet_shim.sim.chaos import ChaosConfig, ChaosLink
from chargenet_shim.sim.charging import run_session
from chargenet_shim.sim.firmware_updates import FirmwareUpdates
from chargenet_shim.sim.injections import FaultInjection
from chargenet_shim.sim.metering import Meter
from chargenet_shim.sim.outbox import Outbox
from chargenet_shim.sim.session import SessionPlan, SessionTruth
from chargenet_shim.sim.simclock import SimClock

# OCPP 1.6 lets the charge point pick the retry delay when the backend sends interval 0.
DEFAULT_BOOT_RETRY_SECS = 30
# A fresh-from-the-factory register reads 0; a charger in service has some history.
DEFAULT_METER_BASE_WH = 1_250_000


class NotAccepted(RuntimeError):
    """OCPP 1.6 forbids other requests until the backend has accepted the BootNotification."""


class SimulatedCharger(CertificateRenewal, FirmwareUpdates, FaultInjection, ChargePoint):
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
        inner = link or ChargerLink(credentials)
        self.link: Link = ChaosLink(inner, chaos) if chaos else inner
        # The MQTT link whose certificate renews itself (certificate renewal, chargenet_shim.ocpp_issuer).
        self._mqtt_link = inner if isinstance(inner, ChargerLink) else None
        # ocpp logs every frame (INFO) and a frame whose handler raised (ERROR): a GetDiagnostics or
        # UpdateFirmware location's credentials are redacted before any handler sees the record.
        super().__init__(
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
        self.boot_request = call.BootNotification(
            charge_point_model=model, charge_point_vendor=vendor, firmware_version=firmware
        )
        self.registration: RegistrationStatus | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._setup_remote()

    async def start(self, connect_timeout: float = 10.0) -> None:
        """Connect the link and run ocpp's receive loop in the background."""
        await self.link.connect(connect_timeout)
        self._receiver = asyncio.create_task(ChargePoint.start(self), name=f"ocpp-{self.id}")

    async def _send(self, message: str) -> None:
        """Every frame ocpp's ChargePoint sends; one over the backend's limit never reaches the link.

        Raises FrameTooLarge, the GenericError the backend would answer: call() raises it to the
        caller, and an answer to a backend CALL turns into ocpp's CALLERROR GenericError for that
        CALL (ocpp's route_message answers an OCPPError raised while handling one). Any link, not
        only ChargerLink, is spared a frame the broker would drop the connection for (chargenet_shim.frame_limit).
        """
        check_frame_size(message)
        await super()._send(message)

    @property
    def heartbeat_interval(self) -> int | None:
        """HeartbeatInterval once a boot is accepted: the boot's reply sets it, and ChangeConfiguration."""
        if self.registration != RegistrationStatus.accepted:
            return None
        return self.configuration.heartbeat_interval

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

    async def run_boot(self, max_attempts: int = 1, resends: int = 0) -> call_result.BootNotification:
        """Boot, retrying after the backend's interval while it answers Pending or Rejected.

        A BootNotification left unanswered (an overloaded backend, a lost reply) is sent again
        up to `resends` times, as a charger that may do nothing else until accepted would;
        the last one's TimeoutError is raised.
        """
        if max_attempts < 1 or resends < 0:
            raise ValueError("max_attempts must be at least 1 and resends not negative")
        for attempt in range(1, max_attempts + 1):
            reply = await self._boot_answered(resends)
            self.registration = RegistrationStatus(reply.status)
            if self.registration == RegistrationStatus.accepted:
                self._booted(reply.interval)
                if self._mqtt_link is not None:
                    self.start_certificate_renewal(self._mqtt_link)
                    self.start_firmware_jobs(self._mqtt_link)
                return reply
            if attempt < max_attempts:
                await asyncio.sleep(reply.interval or DEFAULT_BOOT_RETRY_SECS)
        return reply

    async def _boot_answered(self, resends: int) -> call_result.BootNotification:
        for _ in range(resends):
            try:
                return await self.call(self.boot_request, suppress=False)
            except TimeoutError:
                self.journal.record("BootNotification unanswered: sending it again")
        return await self.call(self.boot_request, suppress=False)

    async def send_status(
        self,
        connector_id: int,
        status: ChargePointStatus | str,
        error_code: ChargePointErrorCode | str = ChargePointErrorCode.no_error,
        info: str | None = None,
        vendor_error_code: str | None = None,
        timestamp: dt.datetime | None = None,
    ) -> call_result.StatusNotification:
        """Raises LinkError while offline: a status is not worth queueing, the next one supersedes it."""
        self._require_accepted()
        request = call.StatusNotification(
            connector_id=connector_id,
            error_code=ChargePointErrorCode(error_code),
            status=ChargePointStatus(status),
            timestamp=ocpp_timestamp(timestamp or self.clock.now()),
            info=info,
            vendor_error_code=vendor_error_code,
        )
        self._note_status(request)
        return await self.outbox.call(request)

    async def heartbeat(self) -> call_result.Heartbeat:
        self._require_accepted()
        return await self.outbox.call(call.Heartbeat())

    async def authorize(self, id_tag: str) -> AuthorizationStatus:
        """Online only: this charger keeps no local authorization list or cache."""
        self._require_accepted()
        reply: call_result.Authorize = await self.outbox.call(call.Authorize(id_tag=id_tag))
        return AuthorizationStatus(reply.id_tag_info["status"])

    async def run_session(self, plan: SessionPlan, clock: SimClock) -> SessionTruth:
        """One driver's visit on `plan.connector_id`, in `clock`'s time; see charging.py."""
        self._require_accepted()
        return await run_session(self, plan, clock)

    def _require_accepted(self) -> None:
        if self.registration != RegistrationStatus.accepted:
            raise NotAccepted(f"{self.id}: BootNotification not accepted (status {self.registration})")
