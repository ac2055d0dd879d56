"""What the domain needs from the outside world, as small interfaces."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from chargenet.domain.faults import FaultResolution, FaultSignal
from chargenet.domain.models import (
    BootNotification,
    Charger,
    ConnectorStatus,
    PendingCall,
    PresenceEvent,
    SessionRecord,
    TagAuthorization,
)
from chargenet.domain.sessions import SessionEvent, SessionFacts


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


class PendingCalls(Protocol):
    """CALLs the backend sent to chargers, awaiting their CALLRESULT or CALLERROR."""

    def add(self, charger_id: str, message_id: str, action: str, payload: dict, at: datetime) -> None: ...

    def action_of(self, charger_id: str, message_id: str) -> str | None: ...

    def resolve(self, charger_id: str, message_id: str, outcome: dict, at: datetime) -> bool:
        """Record the charger's answer once; False when unknown or already answered."""
        ...

    def get(self, charger_id: str, message_id: str) -> PendingCall | None: ...

    def of_charger(self, charger_id: str) -> list[PendingCall]: ...


class ChargerChannel(Protocol):
    """Sends a frame to one charger (IoT Data publish to its out topic)."""

    def send(self, charger_id: str, frame: str) -> None: ...


class SessionStore(Protocol):
    def allocate_transaction(self, start_key: str) -> int:
        """A network-wide unique transaction id; the same start key always gets the same id."""
        ...

    def get(self, session_id: str) -> SessionRecord | None: ...

    def open(self, record: SessionRecord) -> bool:
        """Create the session record once; False when it exists."""
        ...

    def append(self, session_id: str, event: SessionEvent) -> None:
        """Store an event; storing the same event again changes nothing."""
        ...

    def events(self, session_id: str) -> list[SessionEvent]: ...

    def unfinished_on_connector(
        self, charger_id: str, connector_id: int, started_by: datetime
    ) -> list[SessionRecord]:
        """The connector's sessions still active or stopped that started at or before `started_by`."""
        ...

    def save_facts(self, session_id: str, facts: SessionFacts, event_count: int) -> bool:
        """Write the folded session unless a fold over more events was already written."""
        ...

    def record_orphan_stop(self, charger_id: str, transaction_id: int, payload: dict, at: datetime) -> None:
        """A StopTransaction that matches no session of this charger: kept for review."""
        ...


class TagDirectory(Protocol):
    def authorize(self, id_tag: str, at: datetime) -> TagAuthorization: ...

    def claim(self, id_tag: str, session_id: str, max_concurrent: int) -> bool:
        """Count the session against the tag; False when the tag already has its maximum."""
        ...

    def release(self, id_tag: str, session_id: str) -> None: ...


class TariffBook(Protocol):
    def in_force(self, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        """(tariff id, OCPI tariff JSON) for the connector, else the charger, else the network default."""
        ...

    def member_tariff(self, id_tag: str) -> tuple[str, str] | None:
        """(tariff id, OCPI tariff JSON) of the tag's subscription plan: members pay it everywhere."""
        ...


class FaultMonitor(Protocol):
    """Turns what chargers report into fault records and operator alerts."""

    def on_status(
        self, status: ConnectorStatus, site_id: str, inoperative_by_operator: bool = False
    ) -> object: ...

    def apply(self, items: Iterable[FaultSignal | FaultResolution]) -> object: ...
