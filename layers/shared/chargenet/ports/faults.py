"""Faults: what reports them (the monitor), where they are kept, who hears of them, what the sweep reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from chargenet.domain.alerts import AlertDecision, AlertRecord
from chargenet.domain.faults import Fault, FaultResolution, FaultSignal
from chargenet.domain.models import Charger, ConnectorStatus, SessionRecord

StoredFault = tuple[Fault, list[AlertRecord]]  # a fault record and the alerts decided about it


class FaultMonitor(Protocol):
    """Turns what chargers report into fault records and operator alerts."""

    def on_status(
        self, status: ConnectorStatus, site_id: str, inoperative_by_operator: bool = False
    ) -> object: ...

    def apply(self, items: Iterable[FaultSignal | FaultResolution]) -> object: ...


class FaultStore(Protocol):
    def get(self, fault_id: str) -> tuple[Fault, list[AlertRecord]] | None: ...

    def of_charger(self, charger_id: str) -> list[tuple[Fault, list[AlertRecord]]]: ...

    def save(self, fault: Fault, alerts: list[AlertRecord], previous: StoredFault | None) -> bool:
        """Conditional on the record (fault and alerts) being as `previous` was read (None: not
        stored yet); False on conflict. The alerts are part of it: two writers that both saw no
        alert sent must not both page."""
        ...

    def watched(self) -> list[tuple[Fault, list[AlertRecord]]]:
        """Faults the alert policy may still have something to say about: unresolved, flapping, or
        with an alert not published yet (a resolved fault's last one included)."""
        ...


class AlertPublisher(Protocol):
    def publish(self, decision: AlertDecision) -> None: ...


class Fleet(Protocol):
    def list(self) -> list[Charger]: ...


class ActiveSessions(Protocol):
    def in_state(self, state: str) -> list[SessionRecord]: ...
