"""Charging sessions: their records and the immutable events they are folded from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chargenet.domain.meter_values import MeterReading
from chargenet.domain.models import SessionRecord, TagStatus
from chargenet.domain.running_meter import RunningMeter
from chargenet.domain.sessions import SessionEvent, SessionFacts


@dataclass(frozen=True)
class SessionDriver:
    """Who a session is billed to, and the tariff that goes with them."""

    id_tag: str
    tag_status: TagStatus
    tariff: tuple[str, str] | None  # (tariff id, OCPI tariff JSON)


class SessionStore(Protocol):
    def allocate_transaction(self, start_key: str) -> tuple[int, bool]:
        """A network-wide unique transaction id; the same start key always gets the same id. With
        it, whether this call allocated it (False for a copy of the StartTransaction)."""
        ...

    def transaction_of(self, start_key: str) -> int | None:
        """The id allocate_transaction gave `start_key`, if any (one read, nothing allocated)."""
        ...

    def session_id_of_transaction(self, charger_id: str, charger_transaction_id: str) -> str | None:
        """The session of a 2.0.1 charger's transaction (the charger's own transactionId), None
        when none of its events has come in; a lookup only (allocate_transaction numbers it)."""
        ...

    def get(self, session_id: str) -> SessionRecord | None: ...

    def open(
        self, record: SessionRecord, start_facts: SessionFacts | None = None, event_count: int = 1
    ) -> bool:
        """Create the session record once; False when it exists. With `start_facts`, it is
        created folded over its first `event_count` events, as save_facts would leave it."""
        ...

    def assign_driver(self, session_id: str, driver: SessionDriver, replacing_tag: str) -> bool:
        """Make the session `driver`'s (its tag, that tag's authorization, the tariff it is priced
        with), unless its tag is no longer `replacing_tag` (another writer moved it on): False."""
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

    def advance_meter(
        self, session_id: str, charger_id: str, connector_id: int, readings: list[MeterReading]
    ) -> RunningMeter | None:
        """Move a running session's aggregates (energy, last register and reading, event count:
        one event per reading instant) on to `readings`, whose events are stored, in one
        conditional write; the meter as it was before. None, changing nothing, unless the session
        is this connector's, active, without review reasons, started by the first reading and
        with no reading or register at or after it: then only a fold knows what they change."""
        ...

    def record_orphan_stop(
        self, charger_id: str, transaction_id: int, payload: dict[str, Any], at: datetime
    ) -> None:
        """A StopTransaction that matches no session of this charger: kept for review."""
        ...

    def record_orphan_end(
        self, charger_id: str, transaction_id: int, payload: dict[str, Any], at: datetime
    ) -> None:
        """A 2.0.1 Ended that came before its Started: kept for review like an orphan stop, one
        per transaction (a copy writes it again), until resolve_orphan_end."""
        ...

    def resolve_orphan_end(self, charger_id: str, transaction_id: int) -> None:
        """The transaction's Started came and its session holds the Ended: no longer for review."""
        ...


class StoppedSessions(SessionStore, Protocol):
    """What the session sweep reads: the sessions in one state."""

    def in_state(self, state: str) -> list[SessionRecord]: ...
