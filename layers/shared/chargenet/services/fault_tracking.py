"""Fault signals -> fault records (idempotent episodes) -> alerts to operators, once per episode."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from chargenet.domain.alerts import AlertDecision, AlertPolicy, AlertRecord
from chargenet.domain.fault_rules import from_status_notification
from chargenet.domain.faults import Fault, FaultResolution, FaultSignal, FaultState, observe, resolve
from chargenet.domain.models import ConnectorStatus

SAVE_ATTEMPTS = 5
StoredFault = tuple[Fault, list[AlertRecord]]  # a fault record and the alerts sent about it


class FaultStore(Protocol):
    def get(self, fault_id: str) -> tuple[Fault, list[AlertRecord]] | None: ...

    def of_charger(self, charger_id: str) -> list[tuple[Fault, list[AlertRecord]]]: ...

    def save(self, fault: Fault, alerts: list[AlertRecord], previous: StoredFault | None) -> bool:
        """Conditional on the record (fault and alerts) being as `previous` was read (None: not
        stored yet); False on conflict. The alerts are part of it: two writers that both saw no
        alert sent must not both page."""
        ...

    def watched(self) -> list[tuple[Fault, list[AlertRecord]]]:
        """Faults the alert policy may still have something to say about: unresolved, or flapping."""
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
        return self.apply(items)

    def apply(self, items: Iterable[FaultSignal | FaultResolution]) -> list[AlertDecision]:
        return [decision for item in items for decision in self._apply_one(item)]

    def sweep(self, items: Iterable[FaultSignal | FaultResolution]) -> list[AlertDecision]:
        """The periodic pass: apply what changes a fault, then page what only time made due.

        Most periodic checks confirm what is already stored (a healthy charger, an outage
        already open); those are filtered against one read of the watched faults instead of
        a lookup each. Majors open past the policy's delay and flapping storms gone quiet
        are announced here, since no message arrives to trigger them.
        """
        now = self.clock()
        watched = {fault.fault_id: fault for fault, _ in self.store.watched()}
        decisions = self.apply(item for item in items if _changes(item, watched, now))
        for fault, alerts in self.store.watched():
            if self.policy.decide(fault, alerts, now) is not None:
                decisions += self._announce(fault, alerts, (fault, alerts), now) or []
        return decisions

    def open_faults(self) -> list[Fault]:
        return [fault for fault, _ in self.store.watched() if fault.state is not FaultState.RESOLVED]

    def _apply_one(self, item: FaultSignal | FaultResolution) -> list[AlertDecision]:
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
            return self._record(observe(fault, item, now), alerts, stored, now)
        decisions: list[AlertDecision] = []
        for fault, alerts in self.store.of_charger(item.charger_id):
            resolved = (
                resolve(fault, item.at)
                if fault.state is not FaultState.RESOLVED and item.matches(fault)
                else None
            )
            if resolved is not None:
                recorded = self._record(resolved, alerts, (fault, alerts), now)
                if recorded is None:
                    return None
                decisions += recorded
        return decisions

    def _record(
        self, fault: Fault, alerts: list[AlertRecord], previous: StoredFault | None, now: datetime
    ) -> list[AlertDecision] | None:
        if previous is not None and fault == previous[0]:
            return []  # a repeat: nothing changed, nothing to announce
        return self._announce(fault, alerts, previous, now)

    def _announce(
        self, fault: Fault, alerts: list[AlertRecord], previous: StoredFault | None, now: datetime
    ) -> list[AlertDecision] | None:
        """Store the fault with the policy's alert, then publish it; None on a conflicting write."""
        decision = self.policy.decide(fault, alerts, now)
        recorded = [*alerts, decision.record()] if decision else alerts
        if not self.store.save(fault, recorded, previous):
            return None
        if decision is not None:
            # Recorded first, then published: a conflict never sends an alert twice. A crash in
            # between loses this alert's send but not its episode: the resolution still follows.
            self.publisher.publish(decision)
        return [decision] if decision else []


def _changes(item: FaultSignal | FaultResolution, watched: dict[str, Fault], now: datetime) -> bool:
    """Whether applying the item could change a stored fault (resolved faults are not in `watched`)."""
    if isinstance(item, FaultResolution):
        return any(
            item.matches(fault) for fault in watched.values() if fault.state is not FaultState.RESOLVED
        )
    existing = watched.get(item.fault_id)
    return existing is None or observe(existing, item, now) != existing
