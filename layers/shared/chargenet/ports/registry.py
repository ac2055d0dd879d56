"""The charger registry: chargers, their connectors and what they last reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from chargenet.domain.models import BootNotification, Charger, ConnectorStatus, PresenceEvent
from chargenet.domain.ocpp201_messages import DeviceModel, DeviceModelPart
from chargenet.ocpp.versions import OcppVersion


@dataclass(frozen=True)
class ConnectorLink:
    """What a frame's handlers need of a connector: its current session and last register."""

    session_id: str | None = None
    last_register_wh: int | None = None
    # Whether a status may have left a fault open on the connector (status_raises_fault): False
    # once a clean status resolved them, None when not known (recorded before the marker).
    status_fault_open: bool | None = None
    # When the current session started (link_session's time): None when not known.
    session_linked_at: datetime | None = None
    status: str | None = None  # the latest status stored (None: none reported yet)


@dataclass(frozen=True)
class ChargerView:
    """A charger with its connectors, read together at the top of each frame (one read): the
    handlers ask this instead of reading the registry again."""

    charger: Charger
    connectors: dict[int, ConnectorLink] = field(default_factory=dict)

    def session_on(self, connector_id: int) -> str | None:
        return self.connectors.get(connector_id, ConnectorLink()).session_id

    def session_linked_at(self, connector_id: int) -> datetime | None:
        return self.connectors.get(connector_id, ConnectorLink()).session_linked_at

    def register_of(self, connector_id: int) -> int | None:
        return self.connectors.get(connector_id, ConnectorLink()).last_register_wh

    def status_of(self, connector_id: int) -> str | None:
        return self.connectors.get(connector_id, ConnectorLink()).status

    def may_have_status_fault(self, connector_id: int) -> bool:
        return self.connectors.get(connector_id, ConnectorLink()).status_fault_open is not False


class ChargerRegistry(Protocol):
    def get(self, charger_id: str) -> Charger | None: ...

    def view(self, charger_id: str) -> ChargerView | None:
        """The charger and its connectors in one read; None for an unknown charger."""
        ...

    def time_zone_of(self, charger: Charger) -> str:
        """The IANA zone of the charger's wall clock: its own, else its site's, else the deployment's."""
        ...

    def record_boot(
        self,
        charger_id: str,
        boot: BootNotification,
        at: datetime,
        ocpp_version: OcppVersion = OcppVersion.V16,
        rebooted: bool = True,
    ) -> Charger:
        """Record the boot's facts and the OCPP version it came in; the charger as it is now, with
        its recent boots. Not `rebooted` (a BootNotification the backend triggered): not a boot."""
        ...

    def record_seen(self, charger_id: str, at: datetime) -> None: ...

    def record_device_status(self, charger_id: str, field: str, status: str) -> None:
        """Keep the charger's latest `diagnostics_status` or `firmware_status`."""
        ...

    def record_connector_status(self, status: ConnectorStatus, raises_fault: bool = False) -> bool:
        """Store the status unless a newer one is already stored; True when stored. A status that
        `raises_fault` marks the connector as possibly holding an open status fault."""
        ...

    def record_latest_status(self, status: ConnectorStatus, raises_fault: bool = False) -> bool:
        """record_connector_status without the status's history entry, which the caller writes
        (record_status_history, or with the session event: SessionStore.append's
        `status_history`)."""
        ...

    def record_status_history(self, status: ConnectorStatus) -> None:
        """Add the status to the connector's timeline (older statuses too: uptime reads them)."""
        ...

    def clear_status_fault(self, charger_id: str, connector_id: int, status_at: datetime) -> None:
        """The clean status of `status_at` resolved the connector's status faults: unmark it,
        unless a newer status is stored (it may have raised one)."""
        ...

    def apply_presence(self, event: PresenceEvent) -> bool:
        """Apply a lifecycle event unless a later version was applied; True when applied."""
        ...

    def connectors(self, charger_id: str) -> list[ConnectorStatus]: ...

    def link_session(self, charger_id: str, connector_id: int, session_id: str, at: datetime) -> None:
        """Make this the connector's current session (unless a later one already is)."""
        ...

    def connector_session(self, charger_id: str, connector_id: int) -> str | None: ...

    def record_register(self, charger_id: str, connector_id: int, energy_wh: int, at: datetime) -> None:
        """Keep the connector's latest energy register (by charger time) for reset detection."""
        ...

    def last_register(self, charger_id: str, connector_id: int) -> int | None: ...

    def record_device_model_part(self, charger_id: str, part: DeviceModelPart) -> None:
        """Keep one NotifyReport of the charger's device model (a copy replaces the same part)."""
        ...

    def device_model(self, charger_id: str) -> DeviceModel | None:
        """The charger's latest reported device model (2.0.1 GetBaseReport); None if it never reported."""
        ...

    def record_certificate(self, charger_id: str, not_after: datetime) -> None:
        """A rotated certificate is in use: its expiry is what the fault sweep watches now."""
        ...
