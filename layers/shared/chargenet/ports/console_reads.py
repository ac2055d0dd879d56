"""What the operator console reads beyond the CLI's listings: a charger's event sources (newest
first, bounded), and the CDRs and sites of the energy report (one page per request)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from chargenet.domain.billing import BillingRecord
from chargenet.domain.faults import Fault
from chargenet.domain.models import PendingCall
from chargenet.domain.uptime import StatusPoint
from chargenet.ports.audit import Key, Page


class ChargerEvents(Protocol):
    def statuses_until(
        self, charger_id: str, connector_id: int, until: datetime | None, limit: int
    ) -> list[StatusPoint]:
        """At most `limit` of the connector's statuses at or before `until` (None: all), newest first."""
        ...

    def episodes_below(self, charger_id: str, fault_id: str, below: int | None, limit: int) -> list[Fault]:
        """At most `limit` archived episodes of the fault numbered below `below` (None: all), newest first."""
        ...

    def commands(self, charger_id: str, limit: int) -> list[PendingCall]:
        """One read of at most `limit` of the charger's pending calls (kept two days), in no time order."""
        ...


class EnergySources(Protocol):
    def cdrs_ended_between(
        self, start: datetime, end: datetime, limit: int, from_key: Key | None
    ) -> Page[BillingRecord]:
        """One Scan call of at most `limit` CDRs, those that ended in [start, end) kept."""
        ...

    def sites_of(self, charger_ids: set[str]) -> dict[str, str]:
        """Each registered charger's site id (one BatchGetItem per 100 chargers)."""
        ...
