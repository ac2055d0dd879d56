"""The operator audit trail, the one-page reads the operator API lists with, and the availability
history its uptime report reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from chargenet.domain.faults import Fault
from chargenet.domain.models import Charger, ConnectorStatus
from chargenet.domain.uptime import StatusPoint
from chargenet.ports.faults import StoredFault

if TYPE_CHECKING:  # annotations only: the ingest and sweeps read pages, not the audit trail's model
    from chargenet.domain.audit import AuditRecord

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

    def chargers_with_connectors(
        self, site_id: str | None, limit: int, start: Key | None
    ) -> Page[tuple[Charger, list[ConnectorStatus]]]:
        """A page of chargers, each with its connectors, read together (not a query per charger)."""
        ...

    def charger(self, charger_id: str) -> Charger | None: ...

    def connectors(self, charger_id: str) -> list[ConnectorStatus]: ...

    def faults(self, open_only: bool, limit: int, start: Key | None) -> Page[Fault]: ...

    def fault(self, fault_id: str) -> StoredFault | None:
        """The fault with the alerts decided about it."""
        ...

    def faults_of_charger(self, charger_id: str) -> list[Fault]:
        """The charger's fault records, each as it stands now (its latest episode)."""
        ...

    def alerted_faults(self, limit: int, start: Key | None) -> Page[StoredFault]:
        """One page of the faults that have alerts."""
        ...


class AvailabilityHistory(Protocol):
    """Every connector status and every fault episode (the uptime report's input)."""

    def timeline(
        self, charger_id: str, connector_id: int, start: datetime, end: datetime
    ) -> list[StatusPoint]:
        """The connector's statuses in [start, end) and the one in force at `start`, oldest first."""
        ...

    def episodes(self, charger_id: str) -> list[Fault]:
        """Each of the charger's fault episodes as archived when last saved."""
        ...
