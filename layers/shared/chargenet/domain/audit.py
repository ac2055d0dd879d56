"""The operator audit trail's record: who did what, to what, when, and how it ended.

One record per state-changing request that was authorized (a refused one, 401 or 403, changed
nothing and is not recorded). Records are kept by UTC day, ordered by time then request id, so the
same request recorded twice is one record. They hold no secrets, card data or full tag ids: the
targets are ids of chargers and faults, and any free text is cut short.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from chargenet.domain.operators import Operator

MAX_NOTE_CHARS = 500


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: str  # YYYY-MM-DD, UTC
    entry: str  # "<ISO time>#<request id>"
    at: datetime
    request_id: str
    subject: str
    username: str
    email: str | None = None
    method: str
    route: str  # the route's pattern, e.g. /ops/v1/faults/{fault_id}/ack
    targets: dict[str, str] = {}
    status: int
    note: str | None = None


def audit_record(
    operator: Operator,
    *,
    method: str,
    route: str,
    targets: dict[str, str],
    status: int,
    request_id: str,
    at: datetime,
    note: str | None = None,
) -> AuditRecord:
    at = at.astimezone(UTC)
    return AuditRecord(
        day=at.strftime("%Y-%m-%d"),
        entry=f"{at.isoformat(timespec='milliseconds')}#{request_id}",
        at=at,
        request_id=request_id,
        subject=operator.subject,
        username=operator.username,
        email=operator.email,
        method=method.upper(),
        route=route,
        targets=targets,
        status=status,
        note=note[:MAX_NOTE_CHARS] if note else None,
    )
