from datetime import UTC, datetime, timedelta

from chargenet.domain.alerts import AlertKind
from chargenet.domain.faults import FaultState
from chargenet.domain.models import ConnectorStatus
from chargenet.services.fault_tracking import FaultTracker
from tests.fakes import InMemoryFaultStore, RecordingPublisher

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def status(minutes, name, code="NoError", connector=1):
    at = T0 + timedelta(minutes=minutes)
    return ConnectorStatus(
        charger_id="CP-1", connector_id=connector, status=name, error_code=code, status_at=at, received_at=at
    )


def tracker(now_minutes=0):
    return FaultTracker(
        InMemoryFaultStore(), RecordingPublisher(), lambda: T0 + timedelta(minutes=now_minutes)
    )


def test_safety_critical_fault_alerts_once_and_its_resolution_is_announced():
    faults = tracker()
    faults.on_status(status(0, "Faulted", "GroundFailure"), "S1")
    faults.on_status(status(0, "Faulted", "GroundFailure"), "S1")  # redelivered
    faults.on_status(status(1, "Faulted", "GroundFailure"), "S1")  # reported again
    faults.on_status(status(5, "Available"), "S1")
    kinds = [(d.kind, d.code) for d in faults.publisher.published]
    assert kinds == [(AlertKind.RAISED, "GroundFailure"), (AlertKind.RESOLVED, "GroundFailure")]
    [(fault, alerts)] = faults.store.faults.values()
    assert (fault.state, fault.occurrences, len(alerts)) == (FaultState.RESOLVED, 2, 2)
    assert "do not reset" in faults.publisher.published[0].suggested_action


def test_minor_fault_is_recorded_but_nobody_is_paged():
    faults = tracker()
    faults.on_status(status(0, "Available", "WeakSignal", connector=0), "S1")
    assert faults.publisher.published == []
    [(fault, _)] = faults.store.faults.values()
    assert (fault.code, fault.severity.value, fault.connector_id) == ("WeakSignal", "minor", 0)


def test_a_concurrent_update_is_retried_not_lost():
    faults = tracker()
    store = faults.store
    real_save = store.save
    calls = {"n": 0}

    def racing_save(fault, alerts, previous):
        calls["n"] += 1
        if calls["n"] == 1:  # another invocation, with another message about this fault, wrote first
            real_save(fault.model_copy(update={"evidence": ["another message"]}), [], previous)
            return False
        return real_save(fault, alerts, previous)

    store.save = racing_save
    faults.on_status(status(0, "Faulted", "OverVoltage"), "S1")
    [(fault, alerts)] = store.faults.values()
    assert calls["n"] == 2 and len(faults.publisher.published) == 1 and len(alerts) == 1
    assert fault.occurrences == 2 and fault.evidence[0] == "another message"


def test_a_writer_that_saw_no_alert_cannot_save_over_one_that_paged():
    """The sweep pages a major while a new sighting of the same fault is being recorded."""
    faults = tracker(now_minutes=0)
    faults.on_status(status(0, "Faulted", "InternalError"), "S1")
    [(fault, alerts)] = faults.store.faults.values()
    later = FaultTracker(faults.store, faults.publisher, lambda: T0 + timedelta(minutes=11))
    assert [d.kind for d in later.sweep([])] == [AlertKind.RAISED]
    sighting = fault.model_copy(update={"occurrences": 2})
    assert not faults.store.save(sighting, alerts, (fault, alerts))  # it read the record before the page
    later.on_status(status(11, "Faulted", "InternalError"), "S1")  # re-read: the page is there
    assert [d.kind for d in faults.publisher.published] == [AlertKind.RAISED]
