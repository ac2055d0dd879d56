"""What each connector may do now: the availability the backend set, and the faults tests injected.

Pure state, no I/O: charger_state.py turns its changes into StatusNotifications. Connector 0 is the
charger as a whole: making it Inoperative, or a fault on it, takes every connector out of use.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ocpp.v16.enums import AvailabilityStatus, ChargePointErrorCode, ChargePointStatus


@dataclass(frozen=True)
class ConnectorStatus:
    """What a StatusNotification says: as last told to the backend, or as it should be now."""

    status: ChargePointStatus
    error_code: ChargePointErrorCode = ChargePointErrorCode.no_error
    info: str | None = None
    vendor_error_code: str | None = None


@dataclass(frozen=True)
class Fault:
    error_code: ChargePointErrorCode
    info: str | None = None
    vendor_error_code: str | None = None
    # A fault a restart does not cure needs a technician; the others a remote Reset repairs.
    survives_reset: bool = False


class ConnectorBoard:
    def __init__(self, connectors: int) -> None:
        self.connectors = connectors
        self.operative = dict.fromkeys(range(connectors + 1), True)
        # Availability changes that wait for the sessions on their connectors to end.
        self.scheduled: dict[int, bool] = {}
        self.faults: dict[int, Fault] = {}

    def exists(self, connector_id: int) -> bool:
        return 0 <= connector_id <= self.connectors

    def covered(self, connector_id: int) -> list[int]:
        """The connectors whose status a change on `connector_id` can change: all of them for 0."""
        return list(range(self.connectors + 1)) if connector_id == 0 else [connector_id]

    def usable(self, connector_id: int) -> bool:
        if connector_id in self.faults or not self.operative[0]:
            return False
        return connector_id == 0 or (self.operative[connector_id] and 0 not in self.faults)

    def idle_status(self, connector_id: int) -> ConnectorStatus:
        """The status of the connector while no session runs on it."""
        fault = self.faults.get(connector_id)
        if fault is not None:
            return ConnectorStatus(
                ChargePointStatus.faulted, fault.error_code, fault.info, fault.vendor_error_code
            )
        usable = self.usable(connector_id)
        return ConnectorStatus(ChargePointStatus.available if usable else ChargePointStatus.unavailable)

    def change_availability(
        self, connector_id: int, operative: bool, busy: Collection[int]
    ) -> AvailabilityStatus:
        """ChangeAvailability: `busy` are the connectors with a session, whose end a change waits for."""
        if not self.exists(connector_id):
            return AvailabilityStatus.rejected
        if self.operative[connector_id] == operative:
            # Already so (OCPP 1.6 §5.2: Accepted); a change scheduled the other way is off.
            self.scheduled.pop(connector_id, None)
            return AvailabilityStatus.accepted
        if any(c in busy for c in self.covered(connector_id)):
            self.scheduled[connector_id] = operative
            return AvailabilityStatus.scheduled
        self.operative[connector_id] = operative
        return AvailabilityStatus.accepted

    def apply_due(self, busy: Collection[int]) -> list[int]:
        """Make the scheduled changes no session stands in the way of any more; the connectors covered."""
        covered: list[int] = []
        for connector_id, operative in list(self.scheduled.items()):
            if not any(c in busy for c in self.covered(connector_id)):
                self.operative[connector_id] = operative
                del self.scheduled[connector_id]
                covered += self.covered(connector_id)
        return covered

    def restarted(self) -> None:
        """A reset cures the faults that do not survive it; availability persists (OCPP 1.6 §5.2)."""
        self.faults = {c: fault for c, fault in self.faults.items() if fault.survives_reset}
