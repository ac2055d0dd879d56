"""Fault signals -> fault records (idempotent episodes) -> alerts to operators, once per episode."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chargenet.domain.alerts import (
    AlertDecision,
    AlertPolicy,
    AlertRecord,
    overdue,
    paged_this_episode,
    redelivery,
)
from chargenet.domain.fault_rules import (
    bare_faulted_id,
    from_status_notification,
    is_bare_faulted,
    named_problems_since,
    names_the_problem,
)
from chargenet.domain.faults import (
    Fault,
    FaultResolution,
    FaultSignal,
    FaultState,
    acknowledge,
    observe,
    resolve,
)
from chargenet.domain.models import ConnectorStatus
from chargenet.ports.faults import AlertPublisher, FaultStore, StoredFault

SAVE_ATTEMPTS = 5
# An unpublished alert younger than this may still be on its way: the invocation that recorded it
# can run for up to its function's timeout (template.yaml: FaultSweepFunction 60 s, the longest
# of those that announce; OcppIngestFunction and PresenceFunction 10 s). Older, it crashed first.
PUBLISH_GRACE = timedelta(minutes=2)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultTracker:
    store: FaultStore
    publisher: AlertPublisher
    clock: Callable[[], datetime]
    policy: AlertPolicy = field(default_factory=AlertPolicy)

    def on_status(
        self, status: ConnectorStatus, site_id: str, inoperative_by_operator: bool = False
    ) -> list[AlertDecision]:
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
            inoperative_by_operator=inoperative_by_operator,
        )
        if (status.charger_id, status.connector_id) in named_problems_since(f for f, _ in existing):
            items = [item for item in items if not _bare_faulted_signal(item)]
        return self.apply(items, charger_faults=existing)

    def apply(
        self,
        items: Iterable[FaultSignal | FaultResolution],
        charger_faults: list[StoredFault] | None = None,
    ) -> list[AlertDecision]:
        """`charger_faults`: the items' charger's faults as the caller just read them, which the
        first item's first attempt resolves against instead of reading them again (a clean
        status's one resolution); anything after it reads afresh (the first may have written)."""
        decisions: list[AlertDecision] = []
        for item in items:
            decisions += self._apply_one(item, charger_faults)
            charger_faults = None
            if isinstance(item, FaultSignal) and names_the_problem(item.kind, item.code):
                decisions += self._supersede_bare_faulted(item.charger_id, item.connector_id)
        return decisions

    def sweep(self, items: Iterable[FaultSignal | FaultResolution]) -> list[AlertDecision]:
        """The periodic pass: apply what changes a fault, then page what only time made due.

        Most periodic checks confirm what is already stored (a healthy charger, an outage
        already open); those are filtered against one read of the watched faults instead of
        a lookup each. Majors open past the policy's delay and flapping storms gone quiet
        are announced here, since no message arrives to trigger them, and alerts left
        unpublished past PUBLISH_GRACE (a crash between recording and publishing) are sent.
        """
        now = self.clock()
        watched = {fault.fault_id: fault for fault, _ in self.store.watched()}
        decisions = self.apply(item for item in items if _changes(item, watched, now))
        stored = self.store.watched()
        named = named_problems_since(fault for fault, _ in stored)
        for fault, alerts in stored:
            since = _superseded_since(fault, alerts, named)
            if since is not None:
                # Opened beside its named problem (the two frames processed at once): folded now,
                # before its major delay could page it; a conflicting write leaves it to the next sweep.
                decisions += self._fold_superseded((fault, alerts), since) or []
                continue
            sent, current = self._publish_overdue(fault, alerts, now)
            decisions += sent
            if current is not None and self.policy.decide(fault, current, now) is not None:
                decisions += self._announce(fault, current, (fault, current), now) or []
        return decisions

    def operator_change(self, fault_id: str, change: Callable[[Fault], Fault]) -> tuple[Fault, Fault] | None:
        """An operator's change (acknowledge, resolve, exclude) applied to the fresh record, with the
        alert the policy then calls for: resolving a paged fault tells whoever was paged.

        (before, after), or None for an unknown fault. The backend may update the fault meanwhile
        (a new sighting, an alert sent): the change is applied again to the record it wrote.
        """
        for _ in range(SAVE_ATTEMPTS):
            stored = self.store.get(fault_id)
            if stored is None:
                return None
            fault, alerts = stored
            changed = change(fault)
            if self._record(changed, alerts, stored, self.clock()) is not None:
                return fault, changed
        raise RuntimeError(f"fault {fault_id} kept changing while the operator's change was saved")

    def acknowledge(self, fault_id: str, by: str) -> tuple[Fault, Fault] | None:
        """An operator takes ownership of the fault's episode (`chargenet fault ack`, the operator API)."""
        return self.operator_change(fault_id, lambda fault: acknowledge(fault, self.clock(), by))

    def resolve_by_operator(self, fault_id: str) -> tuple[Fault, Fault] | None:
        """An operator marks the fault resolved, e.g. after an on-site repair."""
        return self.operator_change(fault_id, lambda fault: resolve(fault, self.clock()) or fault)

    def open_faults(self) -> list[Fault]:
        return [fault for fault, _ in self.store.watched() if fault.state is not FaultState.RESOLVED]

    def _apply_one(
        self, item: FaultSignal | FaultResolution, charger_faults: list[StoredFault] | None
    ) -> list[AlertDecision]:
        for _ in range(SAVE_ATTEMPTS):
            decisions = self._try(item, charger_faults)
            if decisions is not None:
                return decisions
            charger_faults = None  # a concurrent update won: read them again
        raise RuntimeError(f"fault update kept conflicting: {item!r}")  # the invocation is retried

    def _try(
        self, item: FaultSignal | FaultResolution, charger_faults: list[StoredFault] | None
    ) -> list[AlertDecision] | None:
        """None when a concurrent update won: the caller reads again and retries."""
        now = self.clock()
        if isinstance(item, FaultSignal):
            stored = self.store.get(item.fault_id)
            fault, alerts = stored if stored else (None, [])
            return self._record(observe(fault, item, now), alerts, stored, now)
        decisions: list[AlertDecision] = []
        if charger_faults is None:
            charger_faults = self.store.of_charger(item.charger_id)
        for fault, alerts in charger_faults:
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

    def _supersede_bare_faulted(self, charger_id: str, connector_id: int) -> list[AlertDecision]:
        """The connector's bare "Faulted" fault folded into the named problem now open beside it.

        One read of that fault first: usually there is none, and the charger's faults are read
        only when there is one to fold."""
        bare = self.store.get(bare_faulted_id(charger_id, connector_id))
        if bare is None or bare[0].state is FaultState.RESOLVED or paged_this_episode(*bare):
            return []
        for _ in range(SAVE_ATTEMPTS):
            stored = self.store.of_charger(charger_id)
            named = named_problems_since(fault for fault, _ in stored)
            superseded = [
                ((fault, alerts), since)
                for fault, alerts in stored
                if fault.connector_id == connector_id
                and (since := _superseded_since(fault, alerts, named)) is not None
            ]
            if not superseded:
                return []
            recorded = self._fold_superseded(*superseded[0])
            if recorded is not None:
                return recorded
        raise RuntimeError(f"a Faulted fault of {charger_id} kept changing while it was superseded")

    def _fold_superseded(self, bare: StoredFault, since: datetime) -> list[AlertDecision] | None:
        """Resolve the superseded fault where its named problem took over (never before its own
        last sighting); nobody was paged about it, so the policy announces nothing. None on conflict."""
        fault, alerts = bare
        resolved = resolve(fault, max(since, fault.last_seen)) or fault
        return self._record(resolved, alerts, bare, self.clock())

    def _record(
        self, fault: Fault, alerts: list[AlertRecord], previous: StoredFault | None, now: datetime
    ) -> list[AlertDecision] | None:
        if previous is not None and fault == previous[0]:
            return []  # a repeat: nothing changed, nothing to announce
        return self._announce(fault, alerts, previous, now)

    def _announce(
        self, fault: Fault, alerts: list[AlertRecord], previous: StoredFault | None, now: datetime
    ) -> list[AlertDecision] | None:
        """Store the fault with the policy's alert unpublished, publish it, then mark it published;
        None on a conflicting write.

        Recorded first, so two writers never both page; the unpublished record is the outbox the
        sweep sends from, so a crash before the publish delays the alert by PUBLISH_GRACE instead
        of losing it. The price is at-least-once: a crash or a conflicting write after the publish
        but before the mark makes the sweep send that alert a second time, once, after the grace.
        """
        decision = self.policy.decide(fault, alerts, now)
        recorded = [*alerts, decision.record()] if decision else alerts
        if not self.store.save(fault, recorded, previous):
            return None
        if decision is None:
            return []
        self.publisher.publish(decision)
        self._mark_published(fault, recorded, [decision.record()])
        return [decision]

    def _publish_overdue(
        self, fault: Fault, alerts: list[AlertRecord], now: datetime
    ) -> tuple[list[AlertDecision], list[AlertRecord] | None]:
        """Send the alerts a crash left unpublished; the alerts as stored after, None if unknown.

        Relies on one sweep at a time (FaultSweepFunction's ReservedConcurrentExecutions: 1):
        two overlapping sweeps would both send an overdue alert before either marks it.
        """
        unsent = overdue(alerts, now - PUBLISH_GRACE)
        decisions = [redelivery(fault, record, alerts) for record in unsent]
        for decision in decisions:
            self.publisher.publish(decision)
        return decisions, (self._mark_published(fault, alerts, unsent) if unsent else alerts)

    def _mark_published(
        self, fault: Fault, alerts: list[AlertRecord], sent: list[AlertRecord]
    ) -> list[AlertRecord] | None:
        """The alerts as saved with `sent` marked published; None if the record changed meanwhile."""
        marked = [record.as_published() if record in sent else record for record in alerts]
        if self.store.save(fault, marked, (fault, alerts)):
            return marked
        # The other writer kept the record unpublished: the sweep sends it again after the grace.
        logger.warning("alert published but not marked: %s", [(r.fault_id, r.kind.value) for r in sent])
        return None


def _bare_faulted_signal(item: FaultSignal | FaultResolution) -> bool:
    return isinstance(item, FaultSignal) and is_bare_faulted(item.kind, item.code)


def _superseded_since(
    fault: Fault, alerts: list[AlertRecord], named: dict[tuple[str, int], datetime]
) -> datetime | None:
    """When a named problem took over from this bare "Faulted", if it is one that nobody was
    paged about while a named problem is open on its connector; else None. A paged one stays:
    someone was told about it, and it resolves with the connector."""
    if (
        not is_bare_faulted(fault.kind, fault.code)
        or fault.state is FaultState.RESOLVED
        or paged_this_episode(fault, alerts)
    ):
        return None
    return named.get((fault.charger_id, fault.connector_id))


def _changes(item: FaultSignal | FaultResolution, watched: dict[str, Fault], now: datetime) -> bool:
    """Whether applying the item could change a stored fault (resolved faults are not in `watched`)."""
    if isinstance(item, FaultResolution):
        return any(
            item.matches(fault) for fault in watched.values() if fault.state is not FaultState.RESOLVED
        )
    existing = watched.get(item.fault_id)
    return existing is None or observe(existing, item, now) != existing
