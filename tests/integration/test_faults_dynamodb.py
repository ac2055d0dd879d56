"""The fault store against moto server: alert records as their own outbox, old items still readable."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

from chargenet.adapters.faults_dynamodb import DynamoFaultStore, FaultItem
from chargenet.domain.alerts import AlertKind, AlertRecord
from chargenet.domain.clock import utc_now
from chargenet.domain.faults import Fault, FaultKind, FaultSignal, Severity, observe, resolve
from chargenet.services.fault_tracking import PUBLISH_GRACE
from chargenet_local.alert_sink import describe, read_inbox
from tests.integration.conftest import eventually


def resolved_fault(charger_id: str) -> Fault:
    """A ground fault of a charger that is not registered, so the sweep's checks leave it alone."""
    opened_at = utc_now() - timedelta(minutes=10)
    signal = FaultSignal(
        charger_id=charger_id,
        site_id="SITE-O",
        connector_id=1,
        kind=FaultKind.CONNECTOR_ERROR,
        code="GroundFailure",
        vendor_error_code=None,
        severity=Severity.SAFETY_CRITICAL,
        at=opened_at,
        evidence="StatusNotification",
    )
    resolved = resolve(observe(None, signal, opened_at), opened_at + timedelta(minutes=5))
    assert resolved is not None
    return resolved


def alert(fault: Fault, kind: AlertKind, minutes_ago: float, published: bool) -> AlertRecord:
    at = utc_now() - timedelta(minutes=minutes_ago)
    return AlertRecord(fault_id=fault.fault_id, episode=fault.episode, kind=kind, at=at, published=published)


def test_an_item_stored_before_the_flag_reads_as_sent_and_saves_over_itself(stack):
    fault = resolved_fault(f"CP-old-{uuid.uuid4().hex[:8]}")
    sent = AlertRecord(
        fault_id=fault.fault_id, episode=1, kind=AlertKind.RAISED, at=fault.first_seen, published=True
    )
    raised = sent.model_dump(mode="json", exclude={"published"})  # as written before the flag existed
    FaultItem(
        fault.fault_id,
        charger_id=fault.charger_id,
        state=fault.state.value,
        body=fault.model_dump_json(),
        alerts=json.dumps([raised]),
    ).save()
    store = DynamoFaultStore()
    stored = store.get(fault.fault_id)
    assert stored is not None and [(a.kind, a.published) for a in stored[1]] == [(AlertKind.RAISED, True)]
    assert fault.fault_id not in {f.fault_id for f, _ in store.watched()}
    # The conditional save matches the old text: an operator's change still applies to it.
    owned = fault.model_copy(update={"acknowledged_by": "alice"})
    assert store.save(owned, stored[1], stored)
    assert store.get(fault.fault_id) == (owned, stored[1])


def test_a_resolution_left_unpublished_is_watched_and_the_sweep_sends_it_past_the_grace(stack):
    charger_id = f"CP-outbox-{uuid.uuid4().hex[:8]}"
    fault = resolved_fault(charger_id)
    store = DynamoFaultStore()
    raised = alert(fault, AlertKind.RAISED, minutes_ago=10, published=True)
    in_flight = [raised, alert(fault, AlertKind.RESOLVED, minutes_ago=0, published=False)]
    assert store.save(fault, in_flight, None)
    assert store.get(fault.fault_id) == (fault, in_flight)
    assert (fault, in_flight) in store.watched()  # resolved, yet watched: its last alert is unsent

    # The invocation that recorded it crashed: its record ages past the grace.
    grace_minutes = PUBLISH_GRACE / timedelta(minutes=1)
    crashed = [raised, alert(fault, AlertKind.RESOLVED, minutes_ago=grace_minutes + 1, published=False)]
    assert store.save(fault, crashed, (fault, in_flight))

    def inbox() -> list[dict]:
        """What SNS delivered (every copy), not the alert records the operator API lists."""
        return [describe(a) for a in read_inbox(Path(stack.home)) if charger_id in (a["subject"] or "")]

    sent = eventually(inbox, timeout=20)
    marked = eventually(lambda: all(a.published for a in store.get(fault.fault_id)[1]), timeout=10)
    assert marked and fault.fault_id not in {f.fault_id for f, _ in store.watched()}
    # At least once: the local runtime overlaps sweeps (it ignores ReservedConcurrentExecutions),
    # so two may both send it before the mark; every copy is this resolution.
    assert {(a["attributes"]["kind"], a["attributes"]["fault_id"]) for a in inbox()} == {
        ("resolved", fault.fault_id)
    }
    assert sent[0]["subject"].startswith("[RESOLVED] GroundFailure")
