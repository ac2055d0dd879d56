"""Charging sessions: their records and the immutable events they are folded from."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from chargenet.domain.models import SessionRecord
from chargenet.domain.sessions import SessionEvent, SessionFacts


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

    def record_orphan_stop(
        self, charger_id: str, transaction_id: int, payload: dict[str, Any], at: datetime
    ) -> None:
        """A StopTransaction that matches no session of this charger: kept for review."""
        ...


class StoppedSessions(SessionStore, Protocol):
    """What the session sweep reads: the sessions in one state."""

    def in_state(self, state: str) -> list[SessionRecord]: ...
