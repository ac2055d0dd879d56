"""A StartTransaction's one TransactWriteItems and a fold's (sessions_dynamodb.start, save_folded)
against the local stack's DynamoDB: all or nothing, and what each refusal leaves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory
from chargenet.domain.models import SessionRecord, TagStatus
from chargenet.domain.sessions import EventKind, SessionEvent, fold
from chargenet.ports.sessions import SessionStart, StartOutcome
from tests.integration.conftest import registry

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@dataclass
class Charger:
    store: DynamoSessionStore
    charger_id: str
    tag: str

    def start(self, minutes: int, tag: str | None = None, previous: str | None = None) -> SessionStart:
        at = T0 + timedelta(minutes=minutes)
        transaction_id = self.store.next_transaction_id()
        record = SessionRecord(
            session_id=str(transaction_id),
            transaction_id=transaction_id,
            charger_id=self.charger_id,
            connector_id=1,
            id_tag=tag or self.tag,
            tag_status=TagStatus.ACCEPTED,
            started_at=at,
        )
        event = SessionEvent(
            kind=EventKind.START, at=at, connector_id=1, id_tag=record.id_tag, meter_start_wh=0
        )
        key = f"{self.charger_id}|{minutes}|{uuid.uuid4().hex}"
        return SessionStart(record, fold([event]), [event], start_key=key, previous_session_id=previous)


def charger(max_concurrent: int = 1) -> Charger:
    charger_id = f"CP-start-{uuid.uuid4().hex[:8]}"
    assert registry().register(charger_id, "S", T0 - timedelta(days=1))
    tag = f"TAG-{uuid.uuid4().hex[:8]}"
    DynamoTagDirectory().put(tag, TagStatus.ACCEPTED, max_concurrent, None)
    return Charger(DynamoSessionStore(), charger_id, tag)


def test_a_start_writes_its_session_events_key_claim_and_link_at_once_and_a_copy_nothing(stack):
    cp = charger()
    start = cp.start(0)
    result = cp.store.start(start)
    session_id = start.record.session_id

    assert (result.outcome, result.record.tag_status) == (StartOutcome.OPENED, TagStatus.ACCEPTED)
    stored = cp.store.get(session_id)
    assert (stored.state, stored.event_count) == ("active", 1)
    assert [e.kind for e in cp.store.events(session_id)] == [EventKind.START]
    assert cp.store.transaction_of(start.start_key) == start.record.transaction_id
    assert registry().view(cp.charger_id).session_on(1) == session_id
    # Its tag is claimed: the tag's one session is this one.
    assert DynamoTagDirectory().authorize_and_claim(cp.tag, "other", T0).status is TagStatus.CONCURRENT_TX

    again = cp.start(0)  # a copy: the same start key, with the id the copy allocated
    copy = SessionStart(again.record, again.facts, again.events, start_key=start.start_key)
    assert cp.store.start(copy).outcome is StartOutcome.COPY
    assert cp.store.get(again.record.session_id) is None
    assert registry().view(cp.charger_id).session_on(1) == session_id


def test_a_refused_tag_opens_the_session_unclaimed_with_the_tags_status(stack):
    cp = charger()
    busy = cp.store.start(cp.start(0))
    assert busy.record.tag_status is TagStatus.ACCEPTED
    blocked = f"TAG-blocked-{uuid.uuid4().hex[:8]}"
    DynamoTagDirectory().put(blocked, TagStatus.BLOCKED, 1, None)

    second = cp.store.start(cp.start(5, previous=busy.record.session_id))
    assert second.outcome is StartOutcome.PREVIOUS_UNFINISHED  # the first is still active
    second = cp.store.start(cp.start(5))
    assert (second.outcome, second.record.tag_status) == (StartOutcome.OPENED, TagStatus.CONCURRENT_TX)
    assert cp.store.get(second.record.session_id).tag_status is TagStatus.CONCURRENT_TX
    unknown = cp.store.start(cp.start(6, tag="TAG-never-issued"))
    assert unknown.record.tag_status is TagStatus.INVALID
    refused = cp.store.start(cp.start(7, tag=blocked))
    assert cp.store.get(refused.record.session_id).tag_status is TagStatus.BLOCKED
    # Nothing was claimed for the refused ones: the busy tag's one session is still the first.
    DynamoTagDirectory().release(cp.tag, busy.record.session_id, T0)
    assert DynamoTagDirectory().authorize_and_claim(cp.tag, "next", T0).status is TagStatus.ACCEPTED


def test_a_start_waits_for_the_session_before_and_never_unlinks_a_later_one(stack):
    cp = charger(max_concurrent=3)
    first = cp.store.start(cp.start(0)).record
    waiting = cp.start(10, previous=first.session_id)
    assert cp.store.start(waiting).outcome is StartOutcome.PREVIOUS_UNFINISHED
    # Nothing of it was written: not its session, nor its key, nor its link.
    assert cp.store.get(waiting.record.session_id) is None
    assert cp.store.transaction_of(waiting.start_key) is None
    assert registry().view(cp.charger_id).session_on(1) == first.session_id

    stop = SessionEvent(kind=EventKind.STOP, at=T0 + timedelta(minutes=5), meter_stop_wh=10)
    free = SessionEvent(kind=EventKind.NEXT_SESSION, at=T0 + timedelta(minutes=10))
    events = [*cp.store.events(first.session_id), stop, free]
    assert cp.store.save_folded(first.session_id, [stop, free], fold(events), event_count=3)
    assert cp.store.start(waiting).outcome is StartOutcome.OPENED
    assert registry().view(cp.charger_id).session_on(1) == waiting.record.session_id

    late = cp.store.start(cp.start(8))  # started before the linked one (an offline queue's)
    assert late.outcome is StartOutcome.OPENED
    assert cp.store.get(late.record.session_id) is not None
    assert registry().view(cp.charger_id).session_on(1) == waiting.record.session_id


def test_a_fold_stores_its_events_with_the_facts_or_neither(stack):
    cp = charger()
    session = cp.store.start(cp.start(0)).record
    start = cp.store.events(session.session_id)
    stop = SessionEvent(kind=EventKind.STOP, at=T0 + timedelta(minutes=5), meter_stop_wh=10)

    # A fold over fewer events than already folded loses: its stop is not stored either.
    assert not cp.store.save_folded(session.session_id, [stop], fold(start), event_count=0)
    assert len(cp.store.events(session.session_id)) == 1
    assert cp.store.save_folded(session.session_id, [stop], fold([*start, stop]), event_count=2)
    stored = cp.store.get(session.session_id)
    assert (stored.state, stored.energy_wh, stored.event_count) == ("stopped", 10, 2)
    assert len(cp.store.events(session.session_id)) == 2
