"""A simulated OCPP 2.0.1 charger: the `ocpp` package's v201 charge point over the same ChargerLink.

The charger state (charger_state.py: construction, link, boot, connectors and faults, sessions,
heartbeats, the journal, the answer-then-follow-up plumbing), the fault hooks (injections.py), the physics of its sessions (session.py, metering.py), the
Outbox and the clock are the 1.6 charger's; what differs is what goes over the link, in 2.0.1's
words: the frames go to the 2.0.1 ingest topic (ChargerLink with OcppVersion.V201), a boot is
BootNotification{chargingStation, reason}, a connector is an EVSE with one connector, a session
is TransactionEvents (charging201.py) and the backend's CALLs are 2.0.1's (remote201.py).

The shared state keeps a connector's status in 1.6's words (Preparing, Charging, ...), since
both chargers' sessions and faults drive it the same way; `send_status` says it in 2.0.1's
(Available, Occupied, Reserved, Unavailable, Faulted). 2.0.1 has no status for the station as a
whole (1.6's connector 0): what is said of connector 0 is said of every EVSE instead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ocpp.v16 import call as call16
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus
from ocpp.v201 import ChargePoint, call
from ocpp.v201.datatypes import ChargingStationType, IdTokenType
from ocpp.v201.enums import (
    AuthorizationStatusEnumType,
    BootReasonEnumType,
    ConnectorStatusEnumType,
    IdTokenEnumType,
)

from chargenet_shim.link import ChargerLink
from chargenet_shim.ocpp_issuer import CertificateRenewal
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim import remote_start
from chargenet_shim.sim.charging201 import CONNECTOR_OF_EVSE, Visit201, run_session, run_visit
from chargenet_shim.sim.injections import FaultInjection
from chargenet_shim.sim.remote201 import Remote201
from chargenet_shim.sim.session import SessionPlan, SessionTruth
from chargenet_shim.sim.simclock import SimClock

_CONNECTOR_STATUS = {
    ChargePointStatus.available: ConnectorStatusEnumType.available,
    ChargePointStatus.preparing: ConnectorStatusEnumType.occupied,
    ChargePointStatus.charging: ConnectorStatusEnumType.occupied,
    ChargePointStatus.suspended_ev: ConnectorStatusEnumType.occupied,
    ChargePointStatus.suspended_evse: ConnectorStatusEnumType.occupied,
    ChargePointStatus.finishing: ConnectorStatusEnumType.occupied,
    ChargePointStatus.reserved: ConnectorStatusEnumType.reserved,
    ChargePointStatus.unavailable: ConnectorStatusEnumType.unavailable,
    ChargePointStatus.faulted: ConnectorStatusEnumType.faulted,
}


class SimulatedCharger201(CertificateRenewal, Remote201, FaultInjection, ChargePoint):
    ocpp_version = OcppVersion.V201

    def _set_up(self, vendor: str, model: str, firmware: str) -> None:
        """ChargerState.__init__'s `connectors` are this charger's EVSEs (one connector each)."""
        self.station = ChargingStationType(vendor_name=vendor, model=model, firmware_version=firmware)
        self._setup_remote201()

    async def run_boot(
        self,
        max_attempts: int = 1,
        resends: int = 0,
        reason: BootReasonEnumType = BootReasonEnumType.power_up,
    ) -> Any:
        """BootNotification with `reason`, retried while the backend answers Pending or Rejected
        (ChargerState._boot); its reply."""
        return await self._boot(
            call.BootNotification(charging_station=self.station, reason=reason), max_attempts, resends
        )

    def _on_mqtt_link(self, link: ChargerLink) -> None:
        # Firmware comes as UpdateFirmware: IoT Jobs rollouts are the 1.6 charger's (FirmwareUpdates).
        self.start_certificate_renewal(link)

    async def send_status(
        self,
        connector_id: int,
        status: ChargePointStatus | str,
        error_code: ChargePointErrorCode | str = ChargePointErrorCode.no_error,
        info: str | None = None,
        vendor_error_code: str | None = None,
        timestamp: dt.datetime | None = None,
    ) -> None:
        """StatusNotification of EVSE `connector_id`; raises LinkError while offline (as 1.6's).

        2.0.1's StatusNotification has no error code: a fault shows as Faulted, its reason follows
        as a NotifyEvent (Remote201.inject_fault).
        """
        self._require_accepted()
        self._note_status(
            call16.StatusNotification(
                connector_id=connector_id,
                error_code=ChargePointErrorCode(error_code),
                status=ChargePointStatus(status),
                info=info,
                vendor_error_code=vendor_error_code,
            )
        )
        if connector_id == 0:
            # The station as a whole has no status of its own: each EVSE's says it (charger_state
            # reports them too whenever connector 0 changes).
            return
        await self.outbox.call(
            call.StatusNotification(
                timestamp=ocpp_timestamp(timestamp or self.clock.now()),
                connector_status=_CONNECTOR_STATUS[ChargePointStatus(status)],
                evse_id=connector_id,
                connector_id=CONNECTOR_OF_EVSE,
            )
        )

    async def heartbeat(self) -> Any:
        self._require_accepted()
        return await self.outbox.call(call.Heartbeat())

    async def authorize(
        self, id_tag: str, token_type: IdTokenEnumType = IdTokenEnumType.iso14443
    ) -> AuthorizationStatusEnumType:
        """Online only: no local authorization list or cache. RFID cards are ISO14443, the backend's
        own tokens (pay links) Central."""
        self._require_accepted()
        reply = await self.outbox.call(call.Authorize(id_token=IdTokenType(id_token=id_tag, type=token_type)))
        return AuthorizationStatusEnumType(reply.id_token_info["status"])

    def _start_remote_session(
        self, evse_id: int, token: str, token_type: IdTokenEnumType, remote_start_id: int
    ) -> None:
        """A RequestStartTransaction's session: the charger's `remote_plan` with the backend's token,
        on its `remote_clock`; Authorize first when AuthCtrlr.AuthorizeRemoteStart says so."""
        visit = Visit201(
            self,
            remote_start.remote_plan_on(self, self.remote_plan, evse_id, token),
            self.remote_clock(),
            token_type=token_type,
            remote_start_id=remote_start_id,
            authorize_first=remote_start.authorizes_remote_starts(self),
        )
        session = run_visit(self, visit)
        self.remote_sessions.append(self._spawn(session, f"remote session on EVSE {evse_id}"))

    async def run_session(
        self, plan: SessionPlan, clock: SimClock, token_type: IdTokenEnumType = IdTokenEnumType.iso14443
    ) -> SessionTruth:
        """One driver's visit on EVSE `plan.connector_id`, in `clock`'s time; see charging201.py."""
        self._require_accepted()
        return await run_session(self, plan, clock, token_type=token_type)
