from datetime import UTC, datetime, timedelta

import pytest
from ocpp.v16.enums import ChargePointErrorCode

from chargenet.domain.alerts import AlertKind
from chargenet.domain.fault_rules import severity_of
from chargenet.domain.faults import FaultState, Severity, acknowledge, resolve
from chargenet.domain.models import ConnectorStatus
from chargenet.services.fault_tracking import PUBLISH_GRACE, FaultTracker
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
    assert calls["n"] == 3 and len(faults.publisher.published) == 1  # lost, won, marked published
    assert [a.published for a in alerts] == [True]
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


class SnsDown:
    """The publish never happens: the invocation crashes (or times out) right after the save."""

    def publish(self, decision) -> None:
        raise ConnectionError("invocation died before the publish")


def at_minute(faults, minutes):
    """The same store and inbox, seen by an invocation running `minutes` after T0."""
    return FaultTracker(faults.store, faults.publisher, lambda: T0 + timedelta(minutes=minutes))


# Every OCPP 1.6 ChargePointErrorCode, NoError included: a bare Faulted is out of service too.
ERROR_CODES = [code.value for code in ChargePointErrorCode]


def pages(status_name: str, code: str) -> list[tuple[int, AlertKind]]:
    """The alerts a status reported at T0 brings in the hour after, the sweep running every minute."""
    faults = tracker()
    faults.on_status(status(0, status_name, code), "S1")
    paged = [(0, d.kind) for d in faults.publisher.published]
    for minute in range(1, 61):
        paged += [(minute, d.kind) for d in at_minute(faults, minute).sweep([])]
    return paged


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_error_code_with_status_faulted_pages_by_the_major_delay(code):
    at_once = severity_of(code) is Severity.SAFETY_CRITICAL
    assert pages("Faulted", code) == [(0 if at_once else 10, AlertKind.RAISED)]


@pytest.mark.parametrize("code", [c for c in ERROR_CODES if severity_of(c) in (None, Severity.MINOR)])
def test_the_same_codes_with_status_available_page_nobody(code):
    assert pages("Available", code) == []


def test_the_normal_path_publishes_once_marks_it_and_the_sweep_sends_nothing_more():
    faults = tracker()
    faults.on_status(status(0, "Faulted", "GroundFailure"), "S1")
    [(_, alerts)] = faults.store.faults.values()
    assert [a.published for a in alerts] == [True]
    for minute in (1, 3, 60):
        assert at_minute(faults, minute).sweep([]) == []
    assert [d.kind for d in faults.publisher.published] == [AlertKind.RAISED]


def test_a_crash_between_the_save_and_the_publish_is_sent_once_by_the_first_sweep_past_the_grace():
    crashing = FaultTracker(InMemoryFaultStore(), SnsDown(), lambda: T0)
    with pytest.raises(ConnectionError):
        crashing.on_status(status(0, "Faulted", "GroundFailure"), "S1")
    faults = FaultTracker(crashing.store, RecordingPublisher(), lambda: T0)
    assert faults.on_status(status(0, "Faulted", "GroundFailure"), "S1") == []  # the retry: a repeat
    grace_minutes = PUBLISH_GRACE / timedelta(minutes=1)
    assert at_minute(faults, grace_minutes - 0.5).sweep([]) == []  # the crashed one may still be running
    [sent] = at_minute(faults, grace_minutes).sweep([])
    assert (sent.kind, sent.code, sent.at) == (AlertKind.RAISED, "GroundFailure", T0)
    assert "do not reset" in sent.message
    at_minute(faults, grace_minutes + 1).sweep([])
    assert faults.publisher.published == [sent]
    [(_, alerts)] = faults.store.faults.values()
    assert [a.published for a in alerts] == [True]


def test_a_published_alert_whose_mark_lost_a_race_is_sent_at_most_once_more_after_the_grace():
    faults = tracker()
    store = faults.store
    real_save = store.save
    saves = {"n": 0}

    def mark_loses(fault, alerts, previous):
        saves["n"] += 1
        if saves["n"] == 2:  # a sighting of the same fault, read before the mark, was saved first
            real_save(fault.model_copy(update={"occurrences": 2}), previous[1], previous)
            return False
        return real_save(fault, alerts, previous)

    store.save = mark_loses
    faults.on_status(status(0, "Faulted", "GroundFailure"), "S1")
    store.save = real_save
    grace_minutes = PUBLISH_GRACE / timedelta(minutes=1)
    assert at_minute(faults, 1).sweep([]) == []
    for minute in (grace_minutes, grace_minutes + 1, 60):
        at_minute(faults, minute).sweep([])
    assert [d.kind for d in faults.publisher.published] == [AlertKind.RAISED, AlertKind.RAISED]


def test_a_resolution_left_unpublished_is_sent_although_the_fault_is_resolved():
    faults = tracker()
    faults.on_status(status(0, "Faulted", "GroundFailure"), "S1")
    resolving = FaultTracker(faults.store, SnsDown(), lambda: T0 + timedelta(minutes=5))
    with pytest.raises(ConnectionError):
        resolving.on_status(status(5, "Available"), "S1")
    at_minute(faults, 5 + PUBLISH_GRACE / timedelta(minutes=1)).sweep([])
    kinds = [d.kind for d in faults.publisher.published]
    assert kinds == [AlertKind.RAISED, AlertKind.RESOLVED]
    assert faults.store.watched() == []  # resolved and all sent: no longer read by the sweep


def test_an_operator_resolving_a_paged_fault_tells_whoever_was_paged():
    faults = tracker(now_minutes=30)
    faults.on_status(status(0, "Faulted", "GroundFailure"), "S1")
    [fault_id] = faults.store.faults
    before, after = faults.operator_change(fault_id, lambda f: resolve(f, T0 + timedelta(minutes=30)))
    assert (before.state, after.state) == (FaultState.OPEN, FaultState.RESOLVED)
    assert [d.kind for d in faults.publisher.published] == [AlertKind.RAISED, AlertKind.RESOLVED]
    [(_, alerts)] = faults.store.faults.values()
    assert all(a.published for a in alerts)
    # Resolving it again changes nothing and pages nobody.
    again = faults.operator_change(fault_id, lambda f: resolve(f, T0 + timedelta(minutes=31)))
    assert again is not None and again[0] == again[1]
    assert len(faults.publisher.published) == 2


def test_an_operator_resolving_an_unpaged_fault_pages_nobody_and_an_unknown_fault_is_none():
    faults = tracker()
    faults.on_status(status(0, "Available", "WeakSignal", connector=0), "S1")
    [fault_id] = faults.store.faults
    faults.operator_change(fault_id, lambda f: acknowledge(f, T0, "alice"))
    faults.operator_change(fault_id, lambda f: resolve(f, T0))
    assert faults.publisher.published == []
    assert faults.operator_change("no-such-fault", lambda f: resolve(f, T0)) is None


def test_a_16_faulted_without_a_code_then_with_one_is_one_problem_paged_once():
    now = [T0 + timedelta(minutes=2)]
    faults = FaultTracker(InMemoryFaultStore(), RecordingPublisher(), lambda: now[0])
    faults.on_status(status(0, "Faulted"), "S1")
    faults.on_status(status(1, "Faulted", "GroundFailure"), "S1")
    faults.on_status(status(2, "Faulted"), "S1")  # the code gone from the status, the problem not
    now[0] = T0 + timedelta(minutes=30)
    faults.sweep([])
    assert [(d.kind, d.code) for d in faults.publisher.published] == [(AlertKind.RAISED, "GroundFailure")]
    assert {f.code: f.state for f, _ in faults.store.faults.values()} == {
        "Faulted": FaultState.RESOLVED,
        "GroundFailure": FaultState.OPEN,
    }


def counted_reads(faults: FaultTracker) -> dict[str, int]:
    """How often the tracker reads the charger's faults from here on."""
    reads = {"of_charger": 0}
    real = faults.store.of_charger

    def of_charger(charger_id):
        reads["of_charger"] += 1
        return real(charger_id)

    faults.store.of_charger = of_charger
    return reads


def test_a_clean_status_resolves_against_the_one_read_of_the_chargers_faults():
    faults = tracker()
    faults.on_status(status(0, "Faulted", "GroundFailure"), "S1")
    reads = counted_reads(faults)
    faults.on_status(status(5, "Available"), "S1")
    assert reads["of_charger"] == 1
    assert [d.kind for d in faults.publisher.published] == [AlertKind.RAISED, AlertKind.RESOLVED]


def test_a_resolution_that_loses_a_race_reads_the_faults_again_and_still_resolves_once():
    faults = tracker()
    faults.on_status(status(0, "Faulted", "GroundFailure"), "S1")
    reads = counted_reads(faults)
    store, real_save = faults.store, faults.store.save
    lost = {"n": 0}

    def racing_save(fault, alerts, previous):
        if lost["n"] == 0:  # another invocation saw the fault again first: the read is stale
            lost["n"] += 1
            real_save(previous[0].model_copy(update={"evidence": ["another message"]}), previous[1], previous)
            return False
        return real_save(fault, alerts, previous)

    store.save = racing_save
    faults.on_status(status(5, "Available"), "S1")
    [(fault, _)] = store.faults.values()
    assert reads["of_charger"] == 2 and fault.state is FaultState.RESOLVED
    assert [d.kind for d in faults.publisher.published] == [AlertKind.RAISED, AlertKind.RESOLVED]
