"""A simulated charger: the `ocpp` package's own charge point, speaking over a ChargerLink.

ocpp's ChargePoint needs only a connection with `async send(str)` and
`async recv() -> str`, which ChargerLink already is, so the OCPP-J framing,
message ids, schema validation and the NotImplemented answers to backend
calls without a handler all come from the library.

Everything after the boot goes through the Outbox, which keeps transaction
messages through outages (outbox.py); charging sessions are in charging.py, the
backend's commands in remote.py, and the construction, link, boot, configuration,
connector availability, heartbeats and fault hooks (shared with the 2.0.1 charger,
charger201.py) in charger_state.py, the faults tests and scenarios inject in
injections.py (what the meters show in metering.py).
"""

from __future__ import annotations

import datetime as dt

from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import AuthorizationStatus, ChargePointErrorCode, ChargePointStatus

from chargenet_shim.link import ChargerLink
from chargenet_shim.ocpp_issuer import CertificateRenewal
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.sim.charger_state import DEFAULT_METER_BASE_WH as DEFAULT_METER_BASE_WH
from chargenet_shim.sim.charging import run_session
from chargenet_shim.sim.firmware_updates import FirmwareUpdates
from chargenet_shim.sim.injections import FaultInjection
from chargenet_shim.sim.session import SessionPlan, SessionTruth
from chargenet_shim.sim.simclock import SimClock


class SimulatedCharger(CertificateRenewal, FirmwareUpdates, FaultInjection, ChargePoint):
    """Built as ChargerState.__init__ says."""

    def _set_up(self, vendor: str, model: str, firmware: str) -> None:
        self.boot_request = call.BootNotification(
            charge_point_model=model, charge_point_vendor=vendor, firmware_version=firmware
        )
        self._setup_remote()

    async def run_boot(self, max_attempts: int = 1, resends: int = 0) -> call_result.BootNotification:
        """Boot, retrying while the backend answers Pending or Rejected (ChargerState._boot)."""
        reply: call_result.BootNotification = await self._boot(self.boot_request, max_attempts, resends)
        return reply

    def _on_mqtt_link(self, link: ChargerLink) -> None:
        self.start_certificate_renewal(link)
        self.start_firmware_jobs(link)

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
