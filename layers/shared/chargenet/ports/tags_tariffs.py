"""Who may charge (id tags) and at what price (tariffs, a subscription plan's member tariff)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from chargenet.domain.models import TagAuthorization


class TagDirectory(Protocol):
    def authorize(self, id_tag: str, at: datetime) -> TagAuthorization: ...

    def claim(self, id_tag: str, session_id: str, max_concurrent: int) -> bool:
        """Count the session against the tag; False when the tag already has its maximum."""
        ...

    def release(self, id_tag: str, session_id: str) -> None: ...


class TariffBook(Protocol):
    def in_force(self, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        """(tariff id, OCPI tariff JSON) for the connector, else the charger, else the network default."""
        ...

    def member_tariff(self, id_tag: str) -> tuple[str, str] | None:
        """(tariff id, OCPI tariff JSON) of the tag's subscription plan: members pay it everywhere."""
        ...


class MemberTariffs(Protocol):
    def tariff(self, tariff_id: str) -> str | None: ...

    def assign_member(self, id_tag: str, tariff_id: str) -> None:
        """Price the tag's sessions with this tariff from now on."""
        ...
