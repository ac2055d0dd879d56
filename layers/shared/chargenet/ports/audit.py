"""The operator audit trail, and the one-page reads the operator API lists with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from chargenet.domain.audit import AuditRecord
from chargenet.domain.faults import Fault
from chargenet.domain.models import Charger, ConnectorStatus

T = TypeVar("T")
Key = dict[str, Any]  # where a page stopped (DynamoDB's LastEvaluatedKey), None: at the end


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_key: Key | None


class AuditLog(Protocol):
    def record(self, record: AuditRecord) -> None:
        """Keep the record; the same day and entry again is the same record (written once)."""
        ...

    def of_day(self, day: str, limit: int, start: Key | None) -> Page[AuditRecord]:
        """One page of the day's records, newest first."""
        ...


class OperatorViews(Protocol):
    """What operators list, one page (one read of at most `limit` items) at a time."""

    def chargers(self, site_id: str | None, limit: int, start: Key | None) -> Page[Charger]: ...

    def charger(self, charger_id: str) -> Charger | None: ...

    def connectors(self, charger_id: str) -> list[ConnectorStatus]: ...

    def faults(self, open_only: bool, limit: int, start: Key | None) -> Page[Fault]: ...
