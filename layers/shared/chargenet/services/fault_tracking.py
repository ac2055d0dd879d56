"""Fault signals -> fault records (idempotent episodes) -> alerts to operators, once per episode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from chargenet.domain.alerts import AlertDecision, AlertPolicy, AlertRecord
from chargenet.domain.fault_rules import from_status_notification
from chargenet.domain.faults import Fault, FaultResolution, FaultSignal, FaultState, observe, resolve
from chargenet.domain.models import ConnectorStatus

SAVE_ATTEMPTS = 5


class FaultStore(Protocol):
    def get(self, fault_id: str) -> tuple[Fault, list[AlertRecord]] | None: ...

    def of_charger(self, charger_id: str) -> list[tuple[Fault, list[AlertRecord]]]: ...

    def save(self, fault: Fault, alerts: list[AlertRecord], previous: Fault | None) -> bool:
        """Conditional on the fault being as `previous` (None: not stored yet); False on conflict."""
        ...


class AlertPublisher(Protocol):
    def publish(self, decision: AlertDecision) -> None: ...


@dataclass(frozen=True)
class FaultTracker:
    store: FaultStore
    publisher: AlertPublisher
    clock: Callable[[], datetime]
    policy: AlertPolicy = field(default_factory=AlertPolicy)

    def on_status(self, status: ConnectorStatus, site_id: str) -> list[AlertDecision]:
        existing = self.store.of_charger(status.charger_id)
        repeats = max(
            (
                f.occurrences
                for f, _ in existing
                if f.code == status.error_code and f.state is not FaultState.RESOLVED
            ),
            default=0,
        )
        items = from_status_notification(
            status.charger_id,
            site_id,
            status.connector_id,
            status.status,
            status.error_code,
            status.vendor_error_code,
            status.info,
            status.status_at,
            recent_same_code=repeats,
        )
        return [decision for item in items for decision in self.apply(item)]

    def apply(self, item: FaultSignal | FaultResolution) -> list[AlertDecision]:
        for _ in range(SAVE_ATTEMPTS):
            decisions = self._try(item)
            if decisions is not None:
                return decisions
        raise RuntimeError(f"fault update kept conflicting: {item!r}")  # the invocation is retried

    def _try(self, item: FaultSignal | FaultResolution) -> list[AlertDecision] | None:
        """None when a concurrent update won: the caller reads again and retries."""
        now = self.clock()
        if isinstance(item, FaultSignal):
            stored = self.store.get(item.fault_id)
            fault, alerts = stored if stored else (None, [])
            return self._record(observe(fault, item, now), alerts, fault, now)
        decisions: list[AlertDecision] = []
        for fault, alerts in self.store.of_charger(item.charger_id):
            resolved = (
                resolve(fault, item.at)
                if fault.state is not FaultState.RESOLVED and item.matches(fault)
                else None
            )
            if resolved is not None:
                recorded = self._record(resolved, alerts, fault, now)
                if recorded is None:
                    return None
                decisions += recorded
        return decisions

    def _record(
        self, fault: Fault, alerts: list[AlertRecord], previous: Fault | None, now: datetime
    ) -> list[AlertDecision] | None:
        if fault == previous:
            return []  # a repeat: nothing changed, nothing to announce
        decision = self.policy.decide(fault, alerts, now)
        recorded = [*alerts, decision.record()] if decision else alerts
        if not self.store.save(fault, recorded, previous):
            return None
        if decision is not None:
            # Recorded first, then published: a conflict never sends an alert twice. A crash in
            # between loses this alert's send but not its episode: the resolution still follows.
            self.publisher.publish(decision)
        return [decision] if decision else []
