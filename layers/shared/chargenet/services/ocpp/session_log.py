"""Append what a charger said to its session, then recompute the session from all of it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from chargenet.domain.fault_rules import session_metering
from chargenet.domain.models import ConnectorStatus, SessionRecord
from chargenet.domain.sessions import EventKind, SessionEvent, SessionFacts, SessionState, fold
from chargenet.ports.sessions import SessionStore
from chargenet.services.ocpp.context import Ctx

# A stopped session waits for its connector to be free; an active one may still get its stop.
_UNFINISHED = frozenset({SessionState.ACTIVE.value, SessionState.STOPPED.value})


def record_events(ctx: Ctx, session: SessionRecord, events: list[SessionEvent]) -> SessionFacts:
    for event in events:
        ctx.deps.sessions.append(session.session_id, event)
    facts, history = _refold(ctx.deps.sessions, session)
    ctx.deps.faults.apply(session_metering(session, facts, history))
    return facts


def refresh(sessions: SessionStore, session: SessionRecord) -> SessionFacts:
    return _refold(sessions, session)[0]


def _refold(sessions: SessionStore, session: SessionRecord) -> tuple[SessionFacts, list[SessionEvent]]:
    events = sessions.events(session.session_id)
    rated = Decimal(session.rated_power_w) if session.rated_power_w else None
    facts = fold(events, rated_power_w=rated)
    sessions.save_facts(session.session_id, facts, event_count=len(events))
    return facts, events


def record_status(ctx: Ctx, status: ConnectorStatus) -> None:
    """Connector statuses tell idle time and when the car left: they belong to its session."""
    if status.connector_id == 0:
        return
    session = _session_at(ctx, status)
    if session is None:
        return
    record_events(
        ctx, session, [SessionEvent(kind=EventKind.STATUS, at=status.status_at, status=status.status)]
    )


def free_connector_for(ctx: Ctx, session: SessionRecord, started_at: datetime) -> None:
    """A new session starts on a connector: the car of the one before it there had left by then.

    That session completes as its Available would have completed it (freed at the new start at
    the latest), so it is billed even when the Available never comes (dead-lettered after
    crashes, or sent while the charger was offline). A late Available after this finds it
    completed and changes nothing: one CDR. Called before the new session is linked to the
    connector, so the connector's session is still the one before."""
    previous_id = ctx.deps.registry.connector_session(session.charger_id, session.connector_id)
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
    session_id = ctx.deps.registry.connector_session(status.charger_id, status.connector_id)
    current = ctx.deps.sessions.get(session_id) if session_id else None
    if current is None or current.started_at <= status.status_at:
        return current
    earlier = ctx.deps.sessions.unfinished_on_connector(
        status.charger_id, status.connector_id, started_by=status.status_at
    )
    return max(earlier, key=lambda s: s.started_at, default=None)
