"""Who may charge (id tags) and at what price (tariffs, a subscription plan's member tariff)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from chargenet.domain.models import TagAuthorization


class TagDirectory(Protocol):
    def authorize(self, id_tag: str, at: datetime) -> TagAuthorization: ...

    def authorize_and_claim(self, id_tag: str, session_id: str, at: datetime) -> TagAuthorization:
        """Authorize the tag and, when accepted, count the session against it: ConcurrentTx
        when the tag already has its maximum."""
        ...

    def release(self, id_tag: str, session_id: str, at: datetime) -> TagAuthorization:
        """Stop counting the session against the tag; the tag's authorization at `at`."""
        ...


class TariffBook(Protocol):
    def in_force(self, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        """(tariff id, OCPI tariff JSON) for the connector, else the charger, else the network default."""
        ...

    def session_tariff(self, id_tag: str, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        """(tariff id, OCPI tariff JSON) of a session: the tag's subscription plan's (members pay
        it everywhere), else the connector's (in_force)."""
        ...


class MemberTariffs(Protocol):
    def tariff(self, tariff_id: str) -> str | None: ...

    def assign_member(self, id_tag: str, tariff_id: str) -> None:
        """Price the tag's sessions with this tariff from now on."""
        ...
