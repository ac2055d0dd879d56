"""What the operator API's sessions, CDRs, tags and tariffs routes read and write: each listing is
one page (one Query, or one Scan call with a Limit), never a whole table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chargenet.domain.models import Charger, SessionRecord, TagStatus
from chargenet.ports.audit import Key, Page
from chargenet.ports.sessions import SessionStore

if TYPE_CHECKING:  # annotations only: the tariff engine it pulls in is no cold-start cost of ingest's
    from chargenet.domain.billing import BillingRecord


@dataclass(frozen=True)
class OrphanStop:
    """A StopTransaction that matched no session of its charger, kept for review."""

    charger_id: str
    transaction_id: int
    received_at: datetime | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class TagEntry:
    id_tag: str  # the full id: the service masks it before it leaves
    status: str
    max_concurrent_sessions: int
    expires_at: datetime | None
    active_sessions: int


@dataclass(frozen=True)
class StoredTariff:
    tariff_id: str
    body: str  # the OCPI tariff JSON


@dataclass(frozen=True)
class TariffAssignment:
    tariff_id: str
    charger_id: str  # "*": any charger (the network default)
    connector_id: str  # "*": any connector of the charger


class SessionPages(SessionStore, Protocol):
    def page(
        self, state: str | None, charger_id: str | None, limit: int, start: Key | None
    ) -> Page[SessionRecord]:
        """Sessions in `state` (a Query on the state index, oldest first), else one Scan page;
        `charger_id` filters the page."""
        ...

    def orphan_page(self, limit: int, start: Key | None) -> Page[OrphanStop]: ...

    def peaks(self, session_ids: list[str]) -> dict[str, int]:
        """Peak power (W) of each session found, in one batch read."""
        ...


class CdrPages(Protocol):
    def get(self, cdr_id: str) -> BillingRecord | None: ...

    def create(self, record: BillingRecord) -> bool:
        """Write the record once; False when it exists."""
        ...

    def page(self, limit: int, start: Key | None) -> Page[BillingRecord]: ...


class TagPages(Protocol):
    def put(
        self, id_tag: str, status: TagStatus, max_concurrent: int, expires_at: datetime | None
    ) -> None: ...

    def page(self, limit: int, start: Key | None) -> Page[TagEntry]: ...


class TariffPages(Protocol):
    def store(self, tariff_id: str, body: str, at: datetime) -> None: ...

    def assign(self, tariff_id: str, charger_id: str, connector_id: int | str) -> None: ...

    def tariff(self, tariff_id: str) -> str | None: ...

    def tariff_page(self, limit: int, start: Key | None) -> Page[StoredTariff]: ...

    def assignment_page(self, limit: int, start: Key | None) -> Page[TariffAssignment]: ...


class ChargerLookup(Protocol):
    def get(self, charger_id: str) -> Charger | None: ...
