"""The ingest hot path's DynamoDB writes against moto server: the running meter's conditional
update, the fold's guard against losing what it moved on, and the charger view in one Query."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.meter_values import MeterReading
from chargenet.domain.models import ConnectorStatus, SessionRecord, TagStatus
from chargenet.domain.running_meter import RunningMeter
from chargenet.domain.sessions import EventKind, SessionEvent, fold
from tests.integration.conftest import registry

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def reading(minutes: int, wh: str) -> MeterReading:
    return MeterReading(at=T0 + timedelta(minutes=minutes), energy_wh=Decimal(wh))


def opened_session(store: DynamoSessionStore, charger_id: str) -> str:
    session_id = f"hot-{uuid.uuid4().hex[:12]}"
    store.open(
        SessionRecord(
            session_id=session_id,
            transaction_id=1,
            charger_id=charger_id,
            connector_id=1,
            id_tag="TAG",
            tag_status=TagStatus.ACCEPTED,
            started_at=T0,
            rated_power_w=11000,
        )
    )
    return session_id


def test_the_running_meter_moves_on_only_from_a_folded_start_and_only_forward(stack):
    store = DynamoSessionStore()
    session_id = opened_session(store, "CP-hot")
    assert store.advance_meter(session_id, "CP-hot", 1, [reading(1, "1100")]) is None  # no start folded
    start = SessionEvent(kind=EventKind.START, at=T0, connector_id=1, id_tag="TAG", meter_start_wh=1000)
    store.append(session_id, start)
    assert store.save_facts(session_id, fold([start]), event_count=1)

    before = store.advance_meter(session_id, "CP-hot", 1, [reading(1, "1100.5")])
    assert before == RunningMeter(register_at=T0, register_wh=Decimal(1000), rated_power_w=Decimal(11000))
    store.append(
        session_id,
        SessionEvent(kind=EventKind.METER, at=reading(1, "1100.5").at, reading=reading(1, "1100.5")),
    )
    assert store.advance_meter(session_id, "CP-hot", 1, [reading(1, "1100.5")]) is None  # a copy
    assert store.advance_meter(session_id, "CP-other", 1, [reading(2, "1200")]) is None  # not its charger
    assert store.advance_meter(session_id, "CP-hot", 2, [reading(2, "1200")]) is None  # not its connector
    assert store.advance_meter(session_id, "CP-hot", 1, [reading(-1, "1200")]) is None  # before its start
    session = store.get(session_id)
    assert (session.energy_wh, session.last_reading_at, session.event_count) == (100, reading(1, "0").at, 2)

    # A fold that read the log before the reading cannot write over it; one that read it all can.
    assert not store.save_facts(session_id, fold([start]), event_count=2)
    assert store.save_facts(session_id, fold(store.events(session_id)), event_count=2)
    assert store.get(session_id).energy_wh == 100


def test_the_charger_view_reads_the_charger_its_connectors_and_their_status_fault_marks(stack):
    charger_id = f"CP-view-{uuid.uuid4().hex[:8]}"
    assert registry().register(charger_id, "S", T0)
    assert registry().view(charger_id).connectors == {}

    def status(name: str, minutes: int, error: str = "NoError") -> ConnectorStatus:
        at = T0 + timedelta(minutes=minutes)
        return ConnectorStatus(
            charger_id=charger_id, connector_id=1, status=name, error_code=error, status_at=at, received_at=at
        )

    registry().record_connector_status(status("Faulted", 5, "GroundFailure"), raises_fault=True)
    registry().link_session(charger_id, 1, "42", T0)
    registry().record_register(charger_id, 1, 1234, T0)
    view = registry().view(charger_id)
    assert (view.charger.charger_id, view.session_on(1), view.register_of(1)) == (charger_id, "42", 1234)
    assert view.session_linked_at(1) == T0
    assert view.may_have_status_fault(1)
    registry().clear_status_fault(charger_id, 1, T0 + timedelta(minutes=3))  # older than the Faulted
    assert registry().view(charger_id).may_have_status_fault(1)
    registry().record_connector_status(status("Available", 6))
    registry().clear_status_fault(charger_id, 1, T0 + timedelta(minutes=6))
    assert not registry().view(charger_id).may_have_status_fault(1)
    assert registry().view("CP-never-registered") is None


def test_a_tag_is_authorized_and_claimed_in_one_update_and_its_release_answers_for_it(stack):
    tags = DynamoTagDirectory()
    tag, expired, blocked = (f"TAG-{uuid.uuid4().hex[:8]}" for _ in range(3))
    tags.put(tag, TagStatus.ACCEPTED, 1, None)
    tags.put(expired, TagStatus.ACCEPTED, 1, T0)
    tags.put(blocked, TagStatus.BLOCKED, 1, None)

    assert tags.authorize_and_claim(tag, "s1", T0).status is TagStatus.ACCEPTED
    assert tags.authorize_and_claim(tag, "s1", T0).status is TagStatus.ACCEPTED  # a copy: same session
    assert tags.authorize_and_claim(tag, "s2", T0).status is TagStatus.CONCURRENT_TX  # its one session
    assert tags.authorize_and_claim(expired, "s3", T0).status is TagStatus.EXPIRED
    assert tags.authorize_and_claim(blocked, "s4", T0).status is TagStatus.BLOCKED
    assert tags.authorize_and_claim("TAG-unknown", "s5", T0).status is TagStatus.INVALID

    assert tags.release(tag, "s1", T0).status is TagStatus.ACCEPTED
    assert tags.release(tag, "s1", T0).status is TagStatus.ACCEPTED  # a copy releases nothing more
    assert tags.authorize_and_claim(tag, "s2", T0).status is TagStatus.ACCEPTED  # room again
    assert tags.release(expired, "s3", T0 + timedelta(seconds=1)).status is TagStatus.EXPIRED
    assert tags.release("TAG-unknown", "s5", T0).status is TagStatus.INVALID


def test_a_session_is_priced_with_the_members_tariff_else_the_connectors_in_one_batch(stack):
    tariffs = DynamoTariffBook()
    charger_id, member, plan, site = f"CP-tariff-{uuid.uuid4().hex[:8]}", "TAG-member", "plan", "site"
    tariffs.store(f"{plan}-{charger_id}", '{"id": "plan"}', T0)
    tariffs.store(f"{site}-{charger_id}", '{"id": "site"}', T0)
    tariffs.assign(f"{site}-{charger_id}", charger_id)
    tariffs.assign_member(f"{member}-{charger_id}", f"{plan}-{charger_id}")

    assert tariffs.session_tariff(f"{member}-{charger_id}", charger_id, 1) == (
        f"{plan}-{charger_id}",
        '{"id": "plan"}',
    )
    assert tariffs.session_tariff("TAG-other", charger_id, 1) == (f"{site}-{charger_id}", '{"id": "site"}')
    tariffs.assign_member("TAG-lapsed", "plan-never-stored")  # a pointer with no tariff falls through
    assert tariffs.session_tariff("TAG-lapsed", charger_id, 1) == (f"{site}-{charger_id}", '{"id": "site"}')
