"""The alert policy: who is paged, when, and with what."""

from datetime import timedelta

import pytest

from chargenet.domain.alerts import (
    AlertDecision,
    AlertKind,
    AlertPolicy,
    AlertRecord,
    overdue,
    redelivery,
    suggested_action,
)
from chargenet.domain.faults import (
    FLAP_WINDOW,
    Fault,
    FaultKind,
    Severity,
    acknowledge,
    observe,
    resolve,
)
from tests.unit.fault_builders import MAJ, MIN, SC, T0, at, opened, signal

# --- alert policy ----------------------------------------------------------------------

POLICY = AlertPolicy()


def sent(decision: AlertDecision | None, alerts: list[AlertRecord]) -> list[AlertRecord]:
    return [*alerts, decision.record()] if decision else alerts


def test_a_safety_critical_fault_is_alerted_at_once_with_its_details():
    fault = opened(vendor="GF-7")
    decision = POLICY.decide(fault, [], at(0))
    assert decision.kind is AlertKind.RAISED
    assert (decision.charger_id, decision.site_id, decision.connector_id, decision.code) == (
        "CP-1",
        "S-1",
        1,
        "GroundFailure",
    )
    assert (decision.severity, decision.since, decision.episode) == (SC, T0, 1)
    assert decision.suggested_action == "inspect on site; do not reset remotely"
    assert decision.subject == "[SAFETY_CRITICAL] GroundFailure on CP-1 connector 1 (site S-1)"
    for text in ("Since: 2026-11-26T08:00:00.000Z", "vendor GF-7", "do not reset remotely", "Evidence:"):
        assert text in decision.message


def test_a_major_fault_is_alerted_after_ten_minutes_not_before():
    fault = opened(code="InternalError", severity=MAJ)
    assert POLICY.decide(fault, [], at(9) + timedelta(seconds=59)) is None
    assert POLICY.decide(fault, [], at(10)).kind is AlertKind.RAISED


def test_the_major_delay_is_configurable():
    fault = opened(code="InternalError", severity=MAJ)
    assert AlertPolicy(major_after=timedelta(minutes=2)).decide(fault, [], at(2)).kind is AlertKind.RAISED


def test_minor_faults_are_not_paged_unless_configured():
    fault = opened(code="WeakSignal", severity=MIN)
    assert POLICY.decide(fault, [], at(10_000)) is None
    assert AlertPolicy(minor_after=timedelta(hours=1)).decide(fault, [], at(60)).kind is AlertKind.RAISED


def test_info_faults_are_never_paged():
    fault = opened(code="Note", severity=Severity.INFO)
    assert AlertPolicy(minor_after=timedelta(0)).decide(fault, [], at(10_000)) is None


def test_one_alert_per_episode():
    fault = opened()
    alerts = sent(POLICY.decide(fault, [], at(0)), [])
    fault = observe(fault, signal(5, evidence="again"), at(5))
    assert POLICY.decide(fault, alerts, at(5)) is None
    assert POLICY.decide(fault, alerts, at(500)) is None


def test_an_acknowledged_fault_is_not_paged():
    fault = acknowledge(opened(code="InternalError", severity=MAJ), at(3), "alice")
    assert POLICY.decide(fault, [], at(30)) is None


def test_a_resolution_follows_an_alert_once():
    fault = opened()
    alerts = sent(POLICY.decide(fault, [], at(0)), [])
    fault = resolve(fault, at(7))
    decision = POLICY.decide(fault, alerts, at(7))
    assert decision.kind is AlertKind.RESOLVED
    assert decision.subject == "[RESOLVED] GroundFailure on CP-1 connector 1 (site S-1)"
    assert "Resolved: 2026-11-26T08:07:00.000Z" in decision.message
    assert POLICY.decide(fault, sent(decision, alerts), at(8)) is None


def test_no_resolution_when_nothing_was_alerted():
    fault = resolve(opened(code="InternalError", severity=MAJ), at(5))
    assert POLICY.decide(fault, [], at(5)) is None


def test_a_reopened_fault_gets_a_new_alert():
    fault = opened()
    alerts = sent(POLICY.decide(fault, [], at(0)), [])
    fault = resolve(fault, at(5))
    alerts = sent(POLICY.decide(fault, alerts, at(5)), alerts)
    fault = observe(fault, signal(100), at(100))
    decision = POLICY.decide(fault, alerts, at(100))
    assert (decision.kind, decision.episode) == (AlertKind.RAISED, 2)


def flap(policy: AlertPolicy, cycles: int, severity=SC, period=2) -> tuple[Fault, list[AlertRecord]]:
    """Open and clear the fault every `period` minutes, asking the policy after each change."""
    fault, alerts = None, []
    for cycle in range(cycles):
        opened_at, cleared_at = at(cycle * period), at(cycle * period + period / 2)
        fault = observe(fault, signal(cycle * period, severity=severity, code="InternalError"), opened_at)
        alerts = sent(policy.decide(fault, alerts, opened_at), alerts)
        fault = resolve(fault, cleared_at)
        alerts = sent(policy.decide(fault, alerts, cleared_at), alerts)
    return fault, alerts


def test_a_flapping_fault_is_suppressed_into_one_alert_with_a_count():
    fault, alerts = flap(POLICY, cycles=20)
    kinds = [a.kind for a in alerts]
    assert kinds == [AlertKind.RAISED, AlertKind.RESOLVED] * 3 + [AlertKind.FLAPPING]
    assert fault.episode == 20
    flapping = next(a for a in alerts if a.kind is AlertKind.FLAPPING)
    assert flapping.episode == 4


def test_the_flapping_alert_carries_the_count():
    fault, alerts = flap(POLICY, cycles=3)
    fault = observe(fault, signal(6, code="InternalError"), at(6))
    decision = POLICY.decide(fault, alerts, at(6))
    assert decision.kind is AlertKind.FLAPPING
    assert decision.subject.endswith("flapping on CP-1 connector 1 (site S-1): re-opened 3 times")


def test_a_flapping_fault_is_announced_resolved_once_it_stays_clear():
    fault, alerts = flap(POLICY, cycles=10)
    assert POLICY.decide(fault, alerts, fault.resolved_at + FLAP_WINDOW - timedelta(seconds=1)) is None
    decision = POLICY.decide(fault, alerts, fault.resolved_at + FLAP_WINDOW)
    assert decision.kind is AlertKind.RESOLVED
    assert "Re-opened 6 more times after the flapping alert." in decision.message


def test_a_flapping_major_fault_is_paged_although_no_episode_lasts_ten_minutes():
    _, alerts = flap(POLICY, cycles=10, severity=MAJ)
    assert [a.kind for a in alerts] == [AlertKind.FLAPPING]


def test_a_flapping_minor_fault_stays_on_the_dashboard():
    _, alerts = flap(POLICY, cycles=10, severity=MIN)
    assert alerts == []


def test_the_flap_threshold_is_configurable():
    _, alerts = flap(AlertPolicy(flap_threshold=1), cycles=5)
    assert [a.kind for a in alerts] == [AlertKind.RAISED, AlertKind.RESOLVED, AlertKind.FLAPPING]


@pytest.mark.parametrize(
    ("kind", "code", "action"),
    [
        (FaultKind.CONNECTOR_ERROR, "GroundFailure", "inspect on site; do not reset remotely"),
        (FaultKind.CONNECTOR_ERROR, "ConnectorLockFailure", "UnlockConnector"),
        (FaultKind.CONNECTOR_ERROR, "InternalError", "Reset (soft, then hard)"),
        (FaultKind.CONNECTOR_ERROR, "ResetFailure", "Reset (soft, then hard)"),
        (FaultKind.CONNECTOR_ERROR, "PowerMeterFailure", "GetDiagnostics; schedule meter check"),
        (FaultKind.OFFLINE, "Offline", "check site power/network; TriggerMessage BootNotification when back"),
        (FaultKind.SECURITY_EVENT, "InvalidMessages", "GetLog (SecurityLog) and review"),
    ],
)
def test_suggested_remote_actions(kind, code, action):
    assert suggested_action(opened(kind=kind, code=code)) == action


def test_an_alert_decision_becomes_the_record_that_gates_the_next():
    decision = POLICY.decide(opened(), [], at(1))
    assert decision.record() == AlertRecord(
        fault_id=decision.fault_id, episode=1, kind=AlertKind.RAISED, at=at(1), published=False
    )


# --- sending again what a crash left unpublished --------------------------------------------


def redelivered_as_decided(fault: Fault, decision: AlertDecision, alerts: list[AlertRecord]) -> None:
    recorded = sent(decision, alerts)
    assert redelivery(fault, recorded[-1], recorded) == decision


def test_a_raised_alert_is_sent_again_as_it_was_decided():
    fault = opened(vendor="GF-7")
    redelivered_as_decided(fault, POLICY.decide(fault, [], at(0)), [])


def test_a_flapping_alert_is_sent_again_with_its_count():
    fault, alerts = flap(POLICY, cycles=3)
    fault = observe(fault, signal(6, code="InternalError"), at(6))
    redelivered_as_decided(fault, POLICY.decide(fault, alerts, at(6)), alerts)


def test_the_resolution_of_a_flapping_storm_is_sent_again_with_the_re_opens_after_the_alert():
    fault, alerts = flap(POLICY, cycles=10)
    decision = POLICY.decide(fault, alerts, fault.resolved_at + FLAP_WINDOW)
    assert "Re-opened 6 more times" in decision.message
    redelivered_as_decided(fault, decision, alerts)


def test_a_resend_keeps_the_episode_it_was_decided_for_when_the_fault_re_opened_since():
    fault = opened()
    raised = POLICY.decide(fault, [], at(0))
    alerts = sent(raised, [])
    fault = resolve(fault, at(5))
    resolved = POLICY.decide(fault, alerts, at(5))
    alerts = sent(resolved, alerts)
    fault = observe(fault, signal(100), at(100))
    again = redelivery(fault, alerts[0], alerts)
    assert (again.kind, again.episode, again.at, fault.episode) == (AlertKind.RAISED, 1, at(0), 2)


def test_overdue_alerts_are_the_unpublished_ones_decided_by_the_cut_off_oldest_first():
    def record(minute: int, published: bool) -> AlertRecord:
        return AlertRecord(
            fault_id="F", episode=minute, kind=AlertKind.RAISED, at=at(minute), published=published
        )

    alerts = [record(3, False), record(1, False), record(2, True), record(5, False)]
    assert overdue(alerts, at(3)) == [record(1, False), record(3, False)]
    assert overdue(alerts, at(0)) == []
    assert overdue([record(1, True)], at(60)) == []
