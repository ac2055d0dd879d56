"""A revoked charger's open session: closed from its last reading, never billed unreviewed."""

from datetime import timedelta

from chargenet.domain.sessions import (
    AnomalyCode,
    EventKind,
    SessionEvent,
    SessionState,
    fold,
    revocation_event,
)
from tests.unit.test_sessions import at, meter, start, stop


def running_session():
    return [start(), meter(10, 101_000), meter(20, 102_500), meter(15, 101_800)]


def test_revocation_closes_the_session_at_the_last_reading_for_review():
    events = running_session()
    revoked = revocation_event(events, at(30), "stolen")
    assert revoked.meter_stop_wh == 102_500  # the latest by the charger's clock, not the last to arrive
    facts = fold([*events, revoked])
    assert facts.state is SessionState.NEEDS_REVIEW
    assert [a.code for a in facts.anomalies] == [AnomalyCode.CHARGER_REVOKED]
    assert "stolen" in facts.review_reasons[0]
    assert facts.energy_wh == 2_500
    assert facts.freed_at == at(30)


def test_revocation_never_closes_before_what_the_charger_already_said():
    events = running_session()
    revoked = revocation_event(events, at(5), None)  # our clock behind the charger's
    assert revoked.at == at(20)
    assert fold([*events, revoked]).energy_wh == 2_500


def test_without_readings_the_start_register_is_the_last_known():
    revoked = revocation_event([start()], at(1), None)
    assert revoked.meter_stop_wh == 100_000
    assert fold([start(), revoked]).energy_wh == 0


def test_a_stop_the_charger_sent_before_the_revocation_still_counts_but_review_stays():
    events = [*running_session(), stop(25, 103_000)]
    facts = fold([*events, revocation_event(events, at(30), None)])
    assert facts.meter_stop_wh == 103_000
    assert facts.state is SessionState.NEEDS_REVIEW


def test_settling_a_revoked_session_makes_it_billable():
    events = running_session()
    settle = SessionEvent(kind=EventKind.SETTLE, at=at(40), settle_reading_wh=102_500)
    facts = fold([*events, revocation_event(events, at(30), None), settle])
    assert facts.state is SessionState.COMPLETED
    assert facts.anomalies == []
    assert facts.ended_at is not None and facts.ended_at - at(0) == timedelta(minutes=30)
