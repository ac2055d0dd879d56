"""The charger registry: chargers, their connectors and what they last reported."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from chargenet.domain.models import BootNotification, Charger, ConnectorStatus, PresenceEvent


class ChargerRegistry(Protocol):
    def get(self, charger_id: str) -> Charger | None: ...

    def time_zone_of(self, charger: Charger) -> str:
        """The IANA zone of the charger's wall clock: its own, else its site's, else the deployment's."""
        ...

    def record_boot(self, charger_id: str, boot: BootNotification, at: datetime) -> Charger:
        """Record the boot; the charger as it is now, with its recent boots."""
        ...

    def record_seen(self, charger_id: str, at: datetime) -> None: ...

    def record_device_status(self, charger_id: str, field: str, status: str) -> None:
        """Keep the charger's latest `diagnostics_status` or `firmware_status`."""
        ...

    def record_connector_status(self, status: ConnectorStatus) -> bool:
        """Store the status unless a newer one is already stored; True when stored."""
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

    def record_certificate(self, charger_id: str, not_after: datetime) -> None:
        """A rotated certificate is in use: its expiry is what the fault sweep watches now."""
        ...
