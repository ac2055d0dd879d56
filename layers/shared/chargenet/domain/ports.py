"""What the domain needs from the outside world, as small interfaces."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from chargenet.domain.models import BootNotification, Charger, ConnectorStatus, PresenceEvent


class ChargerRegistry(Protocol):
    def get(self, charger_id: str) -> Charger | None: ...

    def record_boot(self, charger_id: str, boot: BootNotification, at: datetime) -> None: ...

    def record_seen(self, charger_id: str, at: datetime) -> None: ...

    def record_connector_status(self, status: ConnectorStatus) -> bool:
        """Store the status unless a newer one is already stored; True when stored."""
        ...

    def apply_presence(self, event: PresenceEvent) -> bool:
        """Apply a lifecycle event unless a later version was applied; True when applied."""
        ...

    def connectors(self, charger_id: str) -> list[ConnectorStatus]: ...


class PendingCalls(Protocol):
    """CALLs the backend sent to chargers, awaiting their CALLRESULT or CALLERROR."""

    def add(self, charger_id: str, message_id: str, action: str, payload: dict, at: datetime) -> None: ...

    def action_of(self, charger_id: str, message_id: str) -> str | None: ...

    def resolve(self, charger_id: str, message_id: str, outcome: dict, at: datetime) -> bool:
        """Record the charger's answer once; False when unknown or already answered."""
        ...


class ChargerChannel(Protocol):
    """Sends a frame to one charger (IoT Data publish to its out topic)."""

    def send(self, charger_id: str, frame: str) -> None: ...
