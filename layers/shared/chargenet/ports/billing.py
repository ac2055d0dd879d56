"""Billing: the completed sessions it reads and the CDRs it writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chargenet.domain.billing import BillingRecord
    from chargenet.domain.models import SessionRecord
    from chargenet.domain.sessions import SessionEvent


class BillableSessions(Protocol):
    def get(self, session_id: str) -> SessionRecord | None: ...

    def events(self, session_id: str) -> list[SessionEvent]: ...

    def mark_billed(self, session_id: str) -> bool: ...


class CdrStore(Protocol):
    def create(self, record: BillingRecord) -> bool: ...
