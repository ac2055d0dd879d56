"""The periodic fault pass over chargers, sessions and open faults; the reconnect path."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from chargenet.adapters.faults_dynamodb import FaultItem
from chargenet.domain.alerts import AlertKind
from chargenet.domain.faults import FaultKind, FaultState, Severity, resolve
from chargenet.domain.models import PresenceEvent, SessionRecord
from chargenet.services.fault_sweep import SweepSettings, sweep_faults
from chargenet.services.fault_tracking import PUBLISH_GRACE, FaultTracker
from chargenet.services.presence import apply_presence
from tests.fakes import InMemoryFaultStore, InMemoryRegistry, InMemorySessionStore, RecordingPublisher
from tests.unit.fault_builders import opened, session_record

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SETTINGS = SweepSettings(
    heartbeat_interval=timedelta(minutes=5),
    reconnect_grace=timedelta(minutes=2),
    meter_interval=timedelta(minutes=1),
)


class Fleet:
    def __init__(self) -> None:
        self.now = T0
        self.registry = InMemoryRegistry()
        self.sessions = InMemorySessionStore()
        self.store = InMemoryFaultStore()
        self.publisher = RecordingPublisher()
        self.tracker = FaultTracker(self.store, self.publisher, lambda: self.now)

    def charger(self, charger_id: str, online: bool = True, minutes_ago: float = 0) -> None:
        seen = self.now - timedelta(minutes=minutes_ago)
        self.registry.add(charger_id, T0 - timedelta(days=30), site_id="S-1")
        self.registry._update(charger_id, online=online, last_seen_at=seen, presence_changed_at=seen)

    def sweep(self, minutes: float = 0):
        self.now = T0 + timedelta(minutes=minutes)
        return sweep_faults(self.registry, self.sessions, self.tracker, self.now, SETTINGS)

    def open_kinds(self):
        return sorted((f.charger_id, f.kind) for f in self.tracker.open_faults())

    def alerts(self):
        return [(d.kind, d.charger_id, d.code) for d in self.publisher.published]


def test_a_healthy_fleet_raises_nothing_and_reports_its_size():
    fleet = Fleet()
    for n in range(3):
        fleet.charger(f"CP-{n}")
    health = fleet.sweep(minutes=1)
    assert (health.chargers, health.offline, health.open_by_severity, health.alerts) == (3, 0, {}, [])
    assert fleet.store.faults == {}


def test_a_disconnected_charger_is_offline_after_the_grace_and_paged_after_ten_minutes():
    fleet = Fleet()
    fleet.charger("CP-1")
    fleet.charger("CP-2", online=False)
    assert fleet.sweep(minutes=1).offline == 0  # may still reconnect
    health = fleet.sweep(minutes=3)
    assert (health.offline, health.offline_percent, fleet.open_kinds()) == (
        1,
        50.0,
        [("CP-2", FaultKind.OFFLINE)],
    )
    assert health.open_by_severity == {Severity.MAJOR: 1}
    assert fleet.alerts() == []  # a major is paged once open ten minutes
    fleet.sweep(minutes=9)
    assert fleet.alerts() == []
    fleet.sweep(minutes=10)
    fleet.sweep(minutes=11)
    assert fleet.alerts() == [(AlertKind.RAISED, "CP-2", "Offline")]


def test_reconnecting_resolves_the_outage_at_once_and_announces_it():
    fleet = Fleet()
    fleet.charger("CP-1", online=False)
    fleet.sweep(minutes=15)
    event = PresenceEvent.model_validate(
        {
            "clientId": "CP-1",
            "eventType": "connected",
            "timestamp": int((T0 + timedelta(minutes=16)).timestamp() * 1000),
            "versionNumber": 7,
        }
    )
    assert apply_presence(fleet.registry, fleet.tracker, event)
    (fault,) = fleet.tracker.store.faults.values()
    assert (fault[0].state, fault[0].resolved_at) == (FaultState.RESOLVED, T0 + timedelta(minutes=16))
    assert [a[0] for a in fleet.alerts()] == [AlertKind.RAISED, AlertKind.RESOLVED]


def test_repeated_sweeps_do_not_rewrite_an_unchanged_outage():
    fleet = Fleet()
    fleet.charger("CP-1", online=False)
    fleet.sweep(minutes=15)
    before = dict(fleet.store.faults)
    fleet.sweep(minutes=16)
    fleet.sweep(minutes=17)
    assert fleet.store.faults == before


def test_a_certificate_expiring_soon_is_dated_when_the_sweep_first_sees_it_and_paged_after_the_delay():
    fleet = Fleet()
    issued = fleet.now = T0 + timedelta(hours=3)  # 11:00, a certificate for five days
    fleet.charger("CP-1")
    fleet.registry._update("CP-1", certificate_not_after=issued + timedelta(days=5))
    fleet.sweep(minutes=180.5)
    (fault,) = fleet.tracker.open_faults()
    assert (fault.code, fault.severity, fault.first_seen) == (
        "CertificateExpiry",
        Severity.MAJOR,
        issued + timedelta(seconds=30),
    )
    stored = dict(fleet.store.faults)
    fleet.sweep(minutes=181.5)
    fleet.sweep(minutes=190)
    assert fleet.alerts() == [] and fleet.store.faults == stored  # the same sighting, not rewritten
    fleet.sweep(minutes=190.5)
    assert fleet.alerts() == [(AlertKind.RAISED, "CP-1", "CertificateExpiry")]
    assert "Since: 2026-11-26T11:00:30.000Z" in fleet.publisher.published[0].message


def session(started: datetime, last_reading: datetime | None) -> SessionRecord:
    return session_record(started, connector=2, last_reading_at=last_reading)


def test_a_session_without_readings_for_three_intervals_raises_a_session_fault():
    fleet = Fleet()
    fleet.charger("CP-1")
    fleet.sessions.records["7"] = session(T0, T0 + timedelta(minutes=1))
    fleet.sweep(minutes=3)
    assert fleet.open_kinds() == []
    fleet.sweep(minutes=4.5)
    (fault,) = fleet.tracker.open_faults()
    assert (fault.kind, fault.code, fault.connector_id, fault.site_id) == (
        FaultKind.SESSION,
        "NoMeterValues",
        2,
        "S-1",
    )


def test_a_session_open_past_a_day_raises_a_session_fault():
    fleet = Fleet()
    fleet.charger("CP-1")
    fleet.sessions.records["7"] = session(T0 - timedelta(hours=25), T0)
    fleet.sweep(minutes=1)
    assert [f.code for f in fleet.tracker.open_faults()] == ["SessionTooLong"]


def test_a_flapping_fault_is_announced_resolved_by_the_sweep_once_quiet():
    fleet = Fleet()
    fleet.charger("CP-1")
    for cycle in range(4):
        fleet.charger("CP-1", online=False, minutes_ago=0)
        fleet.now = T0 + timedelta(minutes=cycle * 10)
        fleet.registry._update("CP-1", presence_changed_at=fleet.now)
        fleet.sweep(minutes=cycle * 10 + 3)
        fleet.registry._update("CP-1", online=True, last_seen_at=fleet.now, presence_changed_at=fleet.now)
        fleet.sweep(minutes=cycle * 10 + 4)
    kinds = [a[0] for a in fleet.alerts()]
    assert kinds == [AlertKind.FLAPPING]
    fleet.registry._update("CP-1", last_seen_at=T0 + timedelta(minutes=100))
    fleet.sweep(minutes=100)
    assert [a[0] for a in fleet.alerts()] == [AlertKind.FLAPPING, AlertKind.RESOLVED]


class SnsDown:
    def publish(self, decision) -> None:
        raise ConnectionError("the sweep's invocation died before the publish")


def test_a_page_the_sweep_recorded_but_never_sent_goes_out_with_a_later_sweep():
    fleet = Fleet()
    fleet.charger("CP-1", online=False)
    fleet.sweep(minutes=3)  # the outage opens
    crashing = FaultTracker(fleet.store, SnsDown(), lambda: fleet.now)
    fleet.now = T0 + timedelta(minutes=13)
    with pytest.raises(ConnectionError):
        sweep_faults(fleet.registry, fleet.sessions, crashing, fleet.now, SETTINGS)
    assert fleet.sweep(minutes=14).alerts == []  # within the grace: the crashed sweep may be alive
    health = fleet.sweep(minutes=13 + PUBLISH_GRACE / timedelta(minutes=1))
    assert [(a.kind, a.code) for a in health.alerts] == [(AlertKind.RAISED, "Offline")]
    fleet.sweep(minutes=30)
    assert fleet.alerts() == [(AlertKind.RAISED, "CP-1", "Offline")]


def stored_before_the_outbox(fault, *kinds_at: tuple[AlertKind, datetime]):
    """A fault item as written before alerts carried `published`: they were all sent."""
    alerts = [
        {"fault_id": fault.fault_id, "episode": fault.episode, "kind": kind.value, "at": at.isoformat()}
        for kind, at in kinds_at
    ]
    item = FaultItem(
        fault.fault_id,
        charger_id=fault.charger_id,
        state=fault.state.value,
        body=fault.model_dump_json(),
        alerts=json.dumps(alerts),
    )
    return item.to_domain()


def test_alerts_stored_before_the_outbox_count_as_sent_and_are_not_sent_again():
    fleet = Fleet()
    still_open = opened(code="OverVoltage")
    resolved = resolve(opened(), T0 + timedelta(minutes=5))
    for fault, alerts in (
        stored_before_the_outbox(still_open, (AlertKind.RAISED, T0)),
        stored_before_the_outbox(
            resolved, (AlertKind.RAISED, T0), (AlertKind.RESOLVED, T0 + timedelta(minutes=5))
        ),
    ):
        assert all(a.published for a in alerts)
        fleet.store.faults[fault.fault_id] = (fault, alerts)
    assert fleet.sweep(minutes=60).alerts == []
    assert fleet.alerts() == []
