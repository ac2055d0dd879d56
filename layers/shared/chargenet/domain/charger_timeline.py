"""A charger's recent events, newest first: boots, connector status changes, fault episodes opened
and resolved, and the commands sent to it with their answers.

Each kind is read from where it is stored, newest first where the store orders it so: the
registry's last boots (it keeps RECENT_BOOTS_KEPT), each connector's status history and each
fault's archived episodes (HistoryTable), the charger's pending calls (PendingCallsTable, kept
two days, keyed by a random message id: not in time order). The pages merge here.

Paging: events are ordered by (time, kind, reference), newest first; a cursor holds the last
event returned and, per fault, the episode number below which its next episodes lie (episode
numbers rise with time, so an episode whose opening was returned has nothing older to give).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chargenet.domain.faults import Fault
from chargenet.domain.models import PendingCall
from chargenet.domain.uptime import StatusPoint

Position = tuple[str, str, str]  # (ISO time, kind, reference): the order events are paged in


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: str  # boot | status | fault_opened | fault_resolved | command
    reference: str  # tells events of one kind at the same instant apart
    connector_id: int | None
    detail: dict[str, Any]

    @property
    def position(self) -> Position:
        # One zone and one precision, so the text sorts as the instants do.
        return (self.at.astimezone(UTC).isoformat(timespec="microseconds"), self.kind, self.reference)

    def record(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "connector_id": self.connector_id,
            **self.detail,
        }


@dataclass(frozen=True)
class TimelineCursor:
    """Where a timeline page ended: the last event returned, and each fault's episode bound."""

    last: Position | None
    episodes_below: dict[str, int]  # fault_key(fault id) -> read its episodes below this number

    def to_key(self) -> dict[str, Any]:
        return {"last": list(self.last) if self.last else None, "episodes": self.episodes_below}

    @classmethod
    def from_key(cls, key: dict[str, Any] | None) -> TimelineCursor:
        """A verified cursor's key (signed by the API, so well formed); None: the newest page."""
        if not key:
            return cls(None, {})
        last = key.get("last")
        episodes = key.get("episodes") or {}
        return cls(
            (str(last[0]), str(last[1]), str(last[2])) if last else None,
            {str(k): int(v) for k, v in episodes.items()},
        )

    def episode_bound(self, fault_id: str) -> int | None:
        return self.episodes_below.get(fault_key(fault_id))


def fault_key(fault_id: str) -> str:
    """A short stand-in for a fault id in a cursor: cursors are limited in size, fault ids are long."""
    return hashlib.sha256(fault_id.encode()).hexdigest()[:12]


def boot_events(boots: Iterable[datetime]) -> list[TimelineEvent]:
    return [TimelineEvent(at, "boot", "", None, {"summary": "booted"}) for at in boots]


def status_events(points: Iterable[StatusPoint]) -> list[TimelineEvent]:
    return [
        TimelineEvent(
            p.at,
            "status",
            f"{p.connector_id:03d}",
            p.connector_id,
            {"status": p.status, "summary": f"connector {p.connector_id}: {p.status}"},
        )
        for p in points
    ]


def fault_events(episodes: Iterable[Fault]) -> list[TimelineEvent]:
    """An episode's opening and, once resolved, its resolution."""
    events = []
    for fault in episodes:
        detail = {
            "fault_id": fault.fault_id,
            "episode": fault.episode,
            "fault_kind": fault.kind.value,
            "code": fault.code,
            "severity": fault.severity.value,
            "state": fault.state.value,
            "acknowledged_by": fault.acknowledged_by,
            "excluded_reason": fault.excluded_reason.value if fault.excluded_reason else None,
        }
        reference = f"{fault.fault_id}#{fault.episode:06d}"
        what = (
            f"{fault.severity.value.replace('_', ' ')} fault {fault.code} on connector {fault.connector_id}"
        )
        events.append(
            TimelineEvent(
                fault.first_seen,
                "fault_opened",
                reference,
                fault.connector_id,
                {**detail, "summary": f"{what} opened"},
            )
        )
        if fault.resolved_at is not None:
            events.append(
                TimelineEvent(
                    fault.resolved_at,
                    "fault_resolved",
                    reference,
                    fault.connector_id,
                    {**detail, "summary": f"{what} resolved"},
                )
            )
    return events


def command_events(calls: Iterable[PendingCall]) -> list[TimelineEvent]:
    """A command at the time it was sent, with its answer (the payload stays on the command's own
    route: a GetDiagnostics location may be a pre-signed URL)."""
    return [
        TimelineEvent(
            call.sent_at,
            "command",
            call.message_id,
            _connector_of(call.payload),
            {
                "message_id": call.message_id,
                "action": call.action,
                "answered_at": call.answered_at.isoformat() if call.answered_at else None,
                "outcome": call.outcome,
                "summary": f"{call.action}: {_answer(call.outcome)}",
            },
        )
        for call in calls
    ]


def _answer(outcome: dict[str, Any] | None) -> str:
    """The charger's answer as operators read it: its status, an error, a timeout, or none yet."""
    if outcome is None:
        return "no answer yet"
    if outcome.get("timeout"):
        return "no answer (timed out)"
    if "error" in outcome:
        return f"error {outcome['error']}"
    result = outcome.get("result")
    status = result.get("status") if isinstance(result, dict) else None
    return status if isinstance(status, str) else "answered"


def _connector_of(payload: dict[str, Any]) -> int | None:
    connector = payload.get("connectorId")
    return connector if isinstance(connector, int) else None


@dataclass(frozen=True)
class TimelinePage:
    events: list[TimelineEvent]
    cursor: TimelineCursor | None  # None: nothing older is stored


def timeline_page(
    events: Iterable[TimelineEvent],
    cursor: TimelineCursor,
    limit: int,
    episodes_read: dict[str, list[Fault]],
    truncated: bool,
) -> TimelinePage:
    """The `limit` newest events older than the cursor. `episodes_read`: each fault's episodes
    read for this page; `truncated`: a source may hold older events than it returned."""
    older = sorted(
        (e for e in events if cursor.last is None or e.position < cursor.last),
        key=lambda e: e.position,
        reverse=True,
    )
    page = older[:limit]
    if not page or (len(older) <= limit and not truncated):
        return TimelinePage(page, None)
    last = page[-1].position
    bounds = dict(cursor.episodes_below)
    for fault_id, episodes in episodes_read.items():
        # Episodes whose opening was returned (or is newer) have given all they hold.
        done = [f.episode for f in episodes if _opening(f) >= last]
        if done:
            bounds[fault_key(fault_id)] = min(done)
    return TimelinePage(page, TimelineCursor(last, bounds))


def _opening(fault: Fault) -> Position:
    return fault_events([fault])[0].position
