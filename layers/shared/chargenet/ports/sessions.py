"""Charging sessions: their records and the immutable events they are folded from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from chargenet.domain.meter_values import MeterReading
from chargenet.domain.models import ConnectorStatus, SessionRecord, TagStatus
from chargenet.domain.running_meter import RunningMeter
from chargenet.domain.sessions import SessionEvent, SessionFacts


@dataclass(frozen=True)
class SessionDriver:
    """Who a session is billed to, and the tariff that goes with them."""

    id_tag: str
    tag_status: TagStatus
    tariff: tuple[str, str] | None  # (tariff id, OCPI tariff JSON)


@dataclass(frozen=True)
class SessionStart:
    """What a StartTransaction writes, all of it in one write (SessionStore.start): the session
    folded over its first events, those events, its start key, its tag's claim and the
    connector's link to it."""

    record: SessionRecord  # its tag_status is the claim's to decide, when `claim_tag`
    facts: SessionFacts  # the fold over `events`
    events: list[SessionEvent]
    # Claimed for the record's transaction id; None when the id was allocated for it before.
    start_key: str | None = None
    # The connector's session before this one (the frame's view), when another one.
    previous_session_id: str | None = None
    claim_tag: bool = True


class StartOutcome(StrEnum):
    OPENED = "opened"
    COPY = "copy"  # the start key or the session was there: a copy of the start came first
    # Nothing written: the session before is still active or stopped, and started before this
    # one; it is freed first (session_log.free_connector_for), so that no crash can leave the
    # connector linked to the new session while the one before waits for its Available.
    PREVIOUS_UNFINISHED = "previous_unfinished"


@dataclass(frozen=True)
class StartResult:
    outcome: StartOutcome
    record: SessionRecord  # as stored when OPENED: with the tag status its claim decided


class SessionStore(Protocol):
    def next_transaction_id(self) -> int:
        """A network-wide unique transaction id, never given out again (start claims a key for it)."""
        ...

    def start(self, start: SessionStart) -> StartResult:
        """Open the session, store its first events, claim its start key and (`claim_tag`) count
        it against its tag, and link it to its connector (unless a later session is linked
        there), all or nothing. A tag that cannot take it (unknown, blocked, expired, busy) does
        not stop the start: the session opens with that status, unclaimed."""
        ...

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

    def append(
        self, session_id: str, event: SessionEvent, status_history: ConnectorStatus | None = None
    ) -> None:
        """Store an event; storing the same event again changes nothing. With `status_history`
        (the status the event is), that status's history entry too, in the same request
        (ChargerRegistry.record_status_history's write)."""
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

    def save_folded(
        self, session_id: str, events: list[SessionEvent], facts: SessionFacts, event_count: int
    ) -> bool:
        """Store `events` (distinct keys, none stored yet) with the fold of the whole log they
        complete, in one write: save_facts's condition decides both (False: nothing written)."""
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
