"""Fault episodes: opening, updating, re-opening, resolving, acknowledging; idempotent."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargenet.domain.faults import (
    ExclusionReason,
    FaultKind,
    FaultState,
    Severity,
    acknowledge,
    exclude,
    fault_id,
    observe,
    resolve,
)
from tests.unit.fault_builders import MAJ, MIN, T0, at, opened, signal

# --- transitions -----------------------------------------------------------------------


def test_fault_id_is_deterministic_and_distinguishes_each_part():
    base = fault_id("CP-1", 1, FaultKind.CONNECTOR_ERROR, "GroundFailure")
    assert base == fault_id("CP-1", 1, FaultKind.CONNECTOR_ERROR, "GroundFailure")
    others = {
        fault_id("CP-2", 1, FaultKind.CONNECTOR_ERROR, "GroundFailure"),
        fault_id("CP-1", 2, FaultKind.CONNECTOR_ERROR, "GroundFailure"),
        fault_id("CP-1", 1, FaultKind.METERING, "GroundFailure"),
        fault_id("CP-1", 1, FaultKind.CONNECTOR_ERROR, "OverVoltage"),
    }
    assert base not in others and len(others) == 4


def test_observe_opens_a_fault():
    fault = opened(vendor="E42", evidence="Faulted/GroundFailure")
    assert fault.fault_id == signal().fault_id
    assert fault.state is FaultState.OPEN
    assert (fault.first_seen, fault.last_seen, fault.resolved_at) == (T0, T0, None)
    assert (fault.episode, fault.occurrences, fault.flaps) == (1, 1, 0)
    assert fault.vendor_error_code == "E42"
    assert fault.evidence == ["2026-11-26T08:00:00.000Z Faulted/GroundFailure"]


def test_observing_an_open_fault_again_updates_it():
    fault = observe(opened(), signal(5, evidence="again"), at(5))
    assert fault.fault_id == signal().fault_id
    assert (fault.first_seen, fault.last_seen, fault.occurrences) == (T0, at(5), 2)
    assert len(fault.evidence) == 2


def test_a_redelivered_signal_changes_nothing():
    fault = opened()
    assert observe(fault, signal(), at(3)) == fault


def test_a_signal_for_another_fault_is_refused():
    with pytest.raises(ValueError, match="another fault"):
        observe(opened(), signal(code="OverVoltage"), at(1))


def test_a_late_signal_moves_first_seen_back():
    fault = observe(opened(5), signal(2, evidence="queued while offline"), at(6))
    assert (fault.first_seen, fault.last_seen) == (at(2), at(5))


def test_a_timestamp_from_the_future_counts_as_now():
    fault = observe(None, signal(60), at(1))
    assert fault.first_seen == at(1)


def test_severity_escalates_within_an_episode_but_never_drops():
    fault = opened(code="EVCommunicationError", severity=MIN)
    fault = observe(fault, signal(1, code="EVCommunicationError", severity=MAJ), at(1))
    fault = observe(fault, signal(2, code="EVCommunicationError", severity=MIN), at(2))
    assert fault.severity is MAJ


def test_evidence_keeps_the_last_ten_short_entries():
    fault = opened(evidence="x" * 500)
    for minute in range(1, 15):
        fault = observe(fault, signal(minute, evidence=f"message {minute}"), at(minute))
    assert len(fault.evidence) == 10
    assert fault.evidence[-1].endswith("message 14")
    assert fault.occurrences == 15
    assert len(opened(evidence="x" * 500).evidence[0]) == 200


def test_resolve_closes_the_fault_once():
    fault = resolve(opened(), at(10))
    assert (fault.state, fault.resolved_at) == (FaultState.RESOLVED, at(10))
    assert resolve(fault, at(10)) == fault
    assert resolve(fault, at(20)) == fault


def test_resolving_nothing_is_nothing():
    assert resolve(None, at(1)) is None


def test_a_late_resolution_does_not_close_a_fault_seen_after_it():
    fault = observe(opened(), signal(10, evidence="still faulted"), at(10))
    assert resolve(fault, at(5)) == fault


def test_a_resolved_fault_reopens_as_a_new_episode():
    first = acknowledge(opened(), at(1), "ops@example.com")
    first = exclude(resolve(first, at(10)), ExclusionReason.VANDALISM)
    fault = observe(first, signal(20, evidence="again"), at(20))
    assert fault.fault_id == first.fault_id
    assert fault.state is FaultState.OPEN
    assert (fault.episode, fault.occurrences, fault.first_seen, fault.resolved_at) == (2, 1, at(20), None)
    assert (fault.acknowledged_at, fault.acknowledged_by, fault.excluded_reason) == (None, None, None)
    assert fault.flaps == 1
    assert len(fault.evidence) == 2


def test_a_reopen_after_a_long_quiet_is_not_a_flap():
    fault = resolve(opened(), at(10))
    fault = observe(fault, signal(200), at(200))
    assert (fault.episode, fault.flaps) == (2, 0)


def test_flaps_count_consecutive_quick_reopens():
    fault = opened()
    for cycle in range(1, 5):
        fault = resolve(fault, at(cycle * 10 - 5))
        fault = observe(fault, signal(cycle * 10), at(cycle * 10))
    assert (fault.episode, fault.flaps) == (5, 4)


def test_a_signal_from_before_the_resolution_does_not_reopen():
    fault = resolve(opened(), at(10))
    assert observe(fault, signal(8, evidence="late"), at(12)) == fault
    assert observe(fault, signal(10, evidence="same instant"), at(12)) == fault


def test_acknowledge_records_who_and_when_once():
    fault = acknowledge(opened(), at(2), "alice")
    assert (fault.state, fault.acknowledged_at, fault.acknowledged_by) == (
        FaultState.ACKNOWLEDGED,
        at(2),
        "alice",
    )
    assert acknowledge(fault, at(3), "bob") == fault


def test_an_acknowledged_fault_stays_acknowledged_when_seen_again():
    fault = observe(acknowledge(opened(), at(2), "alice"), signal(3, evidence="again"), at(3))
    assert fault.state is FaultState.ACKNOWLEDGED


def test_acknowledging_a_resolved_fault_keeps_it_resolved():
    fault = acknowledge(resolve(opened(), at(5)), at(6), "alice")
    assert (fault.state, fault.acknowledged_by) == (FaultState.RESOLVED, "alice")


def test_exclude_records_and_withdraws_the_reason():
    fault = exclude(opened(), ExclusionReason.UTILITY_OUTAGE)
    assert fault.excluded_reason is ExclusionReason.UTILITY_OUTAGE
    assert exclude(fault, None).excluded_reason is None


signals = st.builds(
    signal,
    minutes=st.integers(0, 120),
    severity=st.sampled_from(list(Severity)),
    evidence=st.sampled_from(["a", "b", "x" * 300]),
)
steps = st.lists(st.tuples(st.booleans(), signals), max_size=8)


@settings(max_examples=150, deadline=None)
@given(steps, signals, st.integers(0, 180))
def test_applying_the_same_signal_twice_equals_applying_it_once(history, repeated, now_minutes):
    existing = None
    for is_resolution, step in history:
        existing = resolve(existing, step.at) if is_resolution else observe(existing, step, step.at)
    now = at(now_minutes)
    once = observe(existing, repeated, now)
    assert observe(once, repeated, now) == once
    assert observe(once, repeated, now + timedelta(minutes=5)) == once
    assert resolve(resolve(once, now), now) == resolve(once, now)
