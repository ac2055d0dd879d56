"""Append what a charger said to its session, then recompute the session: from all of it, or, for
the readings of a running session, from the aggregates it keeps (domain.running_meter)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from chargenet.domain.fault_rules import session_metering
from chargenet.domain.faults import FaultSignal
from chargenet.domain.meter_values import MeterReading
from chargenet.domain.models import ConnectorStatus, SessionRecord, TagStatus
from chargenet.domain.running_meter import fold_needed
from chargenet.domain.sessions import (
    FINAL_STATES,
    FREE_STATUSES,
    EventKind,
    SessionEvent,
    SessionFacts,
    SessionState,
    fold,
)
from chargenet.ports.sessions import SessionStart, SessionStore, StartOutcome
from chargenet.services.ocpp.context import Ctx

FOLD_ATTEMPTS = 5
# A stopped session waits for its connector to be free; an active one may still get its stop.
_UNFINISHED = frozenset({SessionState.ACTIVE.value, SessionState.STOPPED.value})


def record_events(ctx: Ctx, session: SessionRecord, events: list[SessionEvent]) -> SessionFacts:
    facts, history = _refold(ctx.deps.sessions, session, events)
    _report_metering(ctx, session, facts, history, events)
    return facts


def start_session(
    ctx: Ctx,
    record: SessionRecord,
    events: list[SessionEvent],
    start_key: str | None = None,
    claim_tag: bool = True,
) -> SessionRecord | None:
    """Open the session already folded over its first events (the start, and what came with it
    in the same frame) in one write with those events, its start key, its tag's claim and the
    connector's link (SessionStore.start): nothing is read back or written again. The session as
    stored (its tag status the claim's); None when a copy of the start opened it first. The
    connector's session before is freed first when it has to be (free_connector_for)."""
    facts = fold(events, rated_power_w=_rated(record))
    previous = ctx.deps.view.session_on(record.connector_id)  # the frame's charger: the session's
    start = SessionStart(
        record,
        facts,
        events,
        start_key=start_key,
        previous_session_id=previous if previous != record.session_id else None,
        claim_tag=claim_tag,
    )
    result = ctx.deps.sessions.start(start)
    if result.outcome is StartOutcome.PREVIOUS_UNFINISHED:
        free_connector_for(ctx, record, record.started_at)
        result = ctx.deps.sessions.start(replace(start, previous_session_id=None))
    if result.outcome is not StartOutcome.OPENED:
        return None
    _report_metering(ctx, result.record, facts, events, events)
    return result.record


def new_session(
    ctx: Ctx,
    transaction_id: int,
    connector_id: int,
    driver: tuple[str, TagStatus],
    started_at: datetime,
    tariff: tuple[str, str] | None,
    charger_transaction_id: str | None = None,
) -> SessionRecord:
    """A session of the frame's charger as it starts: `driver` (its tag and that tag's
    authorization), the tariff snapshot it is priced with, its site's wall clock and the
    charger's rating as they are now (later edits never change it)."""
    charger = ctx.deps.view.charger
    return SessionRecord(
        session_id=str(transaction_id),
        transaction_id=transaction_id,
        charger_transaction_id=charger_transaction_id,
        charger_id=ctx.charger_id,
        connector_id=connector_id,
        id_tag=driver[0],
        tag_status=driver[1],
        started_at=started_at,
        tariff_id=tariff[0] if tariff else None,
        tariff_json=tariff[1] if tariff else None,
        time_zone=ctx.deps.registry.time_zone_of(charger),
        rated_power_w=charger.rated_power_w,
        site_id=charger.site_id,
    )


def stored_start(ctx: Ctx, session_id: str) -> SessionEvent | None:
    """The start event a copy's first processing stored: the copy stores it again, not one with
    the connector's register as it is now (a second, different start for the fold to choose
    from). Read only for copies, which are rare."""
    events = ctx.deps.sessions.events(session_id)
    return next((event for event in events if event.kind is EventKind.START), None)


def _report_metering(
    ctx: Ctx,
    session: SessionRecord,
    facts: SessionFacts,
    history: list[SessionEvent],
    new: list[SessionEvent],
) -> None:
    found = session_metering(session, facts, history)
    if not any(event.kind is EventKind.STOP for event in new):
        # A stopped session's all-clear is its stop's news: each later fold (its Finishing, its
        # Available) would only repeat it, at a lookup of the charger's faults each.
        found = [item for item in found if isinstance(item, FaultSignal)]
    ctx.deps.faults.apply(found)


def record_readings(
    ctx: Ctx, session_id: str, connector_id: int, readings: list[MeterReading], seq_no: int | None = None
) -> bool:
    """The hot path of a running session: store the readings and move its aggregates on, without
    reading its log. False, when only a fold can tell what they change (see running_meter): the
    caller folds. What is stored here is what the fold would have stored (peak power and the
    charging/parking split aside, which the fold at the stop computes before anything bills)."""
    # The conditional update first: it is what proves the session is this connector's and that
    # the readings are its own (after its start), before anything is added to its log. A crash
    # before the events are stored leaves a retry that finds the readings not newer: it folds.
    before = ctx.deps.sessions.advance_meter(session_id, ctx.charger_id, connector_id, readings)
    if before is None:
        return False
    for reading in readings:
        ctx.deps.sessions.append(
            session_id, SessionEvent(kind=EventKind.METER, at=reading.at, reading=reading, seq_no=seq_no)
        )
    return fold_needed(before, readings) is None


def refresh(sessions: SessionStore, session: SessionRecord) -> SessionFacts:
    return _refold(sessions, session)[0]


def _refold(
    sessions: SessionStore, session: SessionRecord, new: Sequence[SessionEvent] = ()
) -> tuple[SessionFacts, list[SessionEvent]]:
    """Fold the whole log with the `new` events and store both in one write; again from a fresh
    read when a concurrent write (another fold, the hot path) moved the session on meanwhile, so
    no fact (a stop) is ever dropped. A session already final (or gone) folds no more: the new
    events are only stored, for whoever reads its log."""
    rated = _rated(session)
    by_key = {event.key: event for event in new}  # one event per key: the last, as appends leave it
    for _ in range(FOLD_ATTEMPTS):
        stored = sessions.events(session.session_id)
        stored_keys = {event.key for event in stored}
        unstored = [event for key, event in by_key.items() if key not in stored_keys]
        events = sorted(stored + unstored, key=lambda event: event.key)  # the log's order
        facts = fold(events, rated_power_w=rated)
        if sessions.save_folded(session.session_id, unstored, facts, event_count=len(events)):
            return facts, events
        current = sessions.get(session.session_id)
        if current is None or current.state in FINAL_STATES:
            for event in unstored:
                sessions.append(session.session_id, event)
            return facts, events
    # The invocation fails and is retried, by when the writer that kept winning is done.
    raise RuntimeError(f"session {session.session_id} kept changing while folded")


def _rated(session: SessionRecord) -> Decimal | None:
    return Decimal(session.rated_power_w) if session.rated_power_w else None


def record_status(ctx: Ctx, status: ConnectorStatus, latest: bool, *, with_history: bool = False) -> None:
    """Connector statuses tell idle time and when the car left: they belong to its session.
    `latest`: the status is newer than every status stored for the connector. `with_history`:
    the status's history entry is written here too, in the same request as its session event
    when that is only appended (most statuses), else on its own, before a fold (which can fail)."""
    history = status if with_history else None
    event = SessionEvent(kind=EventKind.STATUS, at=status.status_at, status=status.status)
    session = _session_storing(ctx, status, latest)
    if isinstance(session, str):
        ctx.deps.sessions.append(session, event, status_history=history)
        return
    if history is not None:
        ctx.deps.registry.record_status_history(history)
    if session is not None:
        record_events(ctx, session, [event])


def _session_storing(ctx: Ctx, status: ConnectorStatus, latest: bool) -> str | SessionRecord | None:
    """Where the status goes: the id of the session it is only appended to, the session whose
    fold it changes, or None (connector 0, or no session)."""
    if status.connector_id == 0:
        return None
    unread = _current_session_unread(ctx, status) if latest else None
    if unread is not None:
        return unread
    session = _session_at(ctx, status)
    if session is not None and _changes_nothing_live(session, status):
        return session.session_id
    return session


def _current_session_unread(ctx: Ctx, status: ConnectorStatus) -> str | None:
    """The connector's current session, when the status is only to be stored on it, known without
    reading the session: a status that is not free, at or after the session's start (the view's
    link time) and newer than every status stored for the connector. A session freed since was
    freed by an older free status (this one comes after: stored only, as _changes_nothing_live
    has it), or by the next session's start, just before that session is linked; a stop that
    needs review is folded again when settled. Every such late status is counted by the next
    fold of the whole log (the free status's, the settle's, billing's)."""
    started_at = ctx.deps.view.session_linked_at(status.connector_id)
    if status.status in FREE_STATUSES or started_at is None or started_at > status.status_at:
        return None
    return ctx.deps.view.session_on(status.connector_id)


def _changes_nothing_live(session: SessionRecord, status: ConnectorStatus) -> bool:
    """Only a stop, then a free status, changes a session's state, and nothing after the
    connector was freed counts: such a status is stored and left to the next fold (the stop's,
    the free status's, billing's: each folds the whole log) for the periods it cuts."""
    if session.freed_at is not None:
        return status.status_at >= session.freed_at
    return session.state in _UNFINISHED and status.status not in FREE_STATUSES


def free_connector_for(ctx: Ctx, session: SessionRecord, started_at: datetime) -> None:
    """A new session starts on a connector: the car of the one before it there had left by then.

    That session completes as its Available would have completed it (freed at the new start at
    the latest), so it is billed even when the Available never comes (dead-lettered after
    crashes, or sent while the charger was offline). A late Available after this finds it
    completed and changes nothing: one CDR. Called before the new session is linked to the
    connector, so the connector's session is still the one before."""
    previous_id = ctx.deps.view.session_on(session.connector_id)  # the frame's charger: the session's
    if previous_id is None or previous_id == session.session_id:
        return
    previous = ctx.deps.sessions.get(previous_id)
    if previous is None or previous.state not in _UNFINISHED or previous.started_at >= started_at:
        return
    record_events(ctx, previous, [SessionEvent(kind=EventKind.NEXT_SESSION, at=started_at)])


def _session_at(ctx: Ctx, status: ConnectorStatus) -> SessionRecord | None:
    """The session on the connector when the status was reported.

    Usually the connector's current one. A status redelivered late (a retry after a crash, a
    charger's offline queue) can come after the next session started: it still belongs to the
    session before, whose completion may wait for exactly this Available."""
    session_id = ctx.deps.view.session_on(status.connector_id)
    current = ctx.deps.sessions.get(session_id) if session_id else None
    if current is None or current.started_at <= status.status_at:
        return current
    earlier = ctx.deps.sessions.unfinished_on_connector(
        status.charger_id, status.connector_id, started_by=status.status_at
    )
    return max(earlier, key=lambda s: s.started_at, default=None)
