"""Close sessions whose car stayed plugged in past the idle limit, so they can be billed."""

from __future__ import annotations

from datetime import datetime, timedelta

from chargenet.domain.sessions import EventKind, SessionEvent, SessionState
from chargenet.ports.sessions import StoppedSessions
from chargenet.services.ocpp.session_log import refresh


def close_idle_sessions(store: StoppedSessions, now: datetime, idle_limit: timedelta) -> list[str]:
    """The ids of the sessions closed; running it again closes nothing twice (same event, same key)."""
    closed = []
    for session in store.in_state(SessionState.STOPPED.value):
        if session.stopped_at is None or session.stopped_at + idle_limit > now:
            continue
        store.append(
            session.session_id, SessionEvent(kind=EventKind.IDLE_LIMIT, at=session.stopped_at + idle_limit)
        )
        refresh(store, session)
        closed.append(session.session_id)
    return closed
