"""DynamoDB adapters for sessions: the event log, the folded record, transaction ids, orphan stops."""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pynamodb.attributes import (
    Attribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.constants import ALL_OLD, NULL
from pynamodb.exceptions import CancellationReason, DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.operand import Path
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chargenet.adapters.batch_writes import put_together
from chargenet.adapters.dynamodb import (
    conditional_failed,
    conditional_update,
    deployment_time_zone,
    link_in_transaction,
)
from chargenet.adapters.history_dynamodb import expires_at, status_item
from chargenet.adapters.pages import scan_page
from chargenet.adapters.tables import TableModel, dynamodb_connection, table_meta
from chargenet.adapters.tags_tariffs_dynamodb import claim_in_transaction, refused_claim
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.clock import utc_now
from chargenet.domain.meter_values import MeterReading
from chargenet.domain.models import ConnectorStatus, SessionRecord
from chargenet.domain.running_meter import RunningMeter, latest_register
from chargenet.domain.sessions import FINAL_STATES, SessionEvent, SessionFacts, SessionState
from chargenet.domain.transactions201 import transaction_key
from chargenet.ports.audit import Key, Page
from chargenet.ports.billing import BillableSessions
from chargenet.ports.faults import ActiveSessions
from chargenet.ports.operator_sessions import OrphanStop, SessionPages
from chargenet.ports.sessions import SessionDriver, SessionStart, StartOutcome, StartResult, StoppedSessions

TRANSACTION_COUNTER_KEY = "counter#transaction"
ORPHAN_STOP_PREFIX = "orphan-stop#"
# A stopped session waits for its connector to be free; an active one may still get its stop.
_UNFINISHED = (SessionState.ACTIVE.value, SessionState.STOPPED.value)


class SessionsByState(GlobalSecondaryIndex["SessionItem"]):
    class Meta:
        index_name = "by-state"
        projection = AllProjection()

    state = UnicodeAttribute(hash_key=True)
    started_at = UTCDateTimeAttribute(range_key=True)


class SessionItem(TableModel):
    Meta = table_meta("sessions")
    by_state = SessionsByState()

    session_id = UnicodeAttribute(hash_key=True)
    transaction_id = NumberAttribute()
    charger_transaction_id = UnicodeAttribute(null=True)  # a 2.0.1 charger's own transactionId
    charger_id = UnicodeAttribute()
    site_id = UnicodeAttribute(default="")
    connector_id = NumberAttribute()
    id_tag = UnicodeAttribute()
    tag_status = UnicodeAttribute()
    started_at = UTCDateTimeAttribute()
    state = UnicodeAttribute()
    tariff_id = UnicodeAttribute(null=True)
    tariff_json = UnicodeAttribute(null=True)
    time_zone = UnicodeAttribute(null=True)
    rated_power_w = NumberAttribute(null=True)
    energy_wh = NumberAttribute(default=0)
    peak_power_w = NumberAttribute(default=0)
    charging_seconds = NumberAttribute(default=0)
    parking_seconds = NumberAttribute(default=0)
    stopped_at = UTCDateTimeAttribute(null=True)
    freed_at = UTCDateTimeAttribute(null=True)
    stop_reason = UnicodeAttribute(null=True)
    review_reasons = ListAttribute(of=UnicodeAttribute, default=list)
    last_reading_at = UTCDateTimeAttribute(null=True)
    event_count = NumberAttribute(default=0)
    # The running aggregates MeterValues advances without a fold (domain.running_meter), written
    # by every fold: absent until the start's fold, so the hot path then falls back to folding.
    meter_start_wh = NumberAttribute(null=True)
    last_register_wh = UnicodeAttribute(null=True)  # Decimal as text: a flat register must compare equal
    last_register_at = UTCDateTimeAttribute(null=True)

    def to_domain(self) -> SessionRecord:
        values = {name: getattr(self, name) for name in SessionRecord.model_fields}
        # Sessions recorded before sites had time zones are priced on the deployment's.
        values["time_zone"] = values["time_zone"] or deployment_time_zone()
        return SessionRecord.model_validate(values)


class SessionEventItem(TableModel):
    Meta = table_meta("session_events")

    session_id = UnicodeAttribute(hash_key=True)
    event_key = UnicodeAttribute(range_key=True)
    body = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)  # the table's TTL: see history_dynamodb.expires_at


class TransactionKeyItem(TableModel):
    """The transaction id counter and one item per StartTransaction seen (its start key)."""

    Meta = table_meta("transaction_keys")

    key = UnicodeAttribute(hash_key=True)
    transaction_id = NumberAttribute(null=True)
    charger_id = UnicodeAttribute(null=True)
    payload = UnicodeAttribute(null=True)
    received_at = UTCDateTimeAttribute(null=True)


def _orphan_key(charger_id: str, transaction_id: int) -> str:
    return f"{ORPHAN_STOP_PREFIX}{charger_id}#{transaction_id}"


def _save_orphan(key: str, charger_id: str, transaction_id: int, body: str, at: datetime) -> None:
    TransactionKeyItem(
        key, transaction_id=transaction_id, charger_id=charger_id, payload=body, received_at=at
    ).save()


def _unset(attribute: Attribute[Any]) -> Condition:
    # A null attribute set to None is stored as NULL, not removed.
    unset: Condition = attribute.does_not_exist() | Path(attribute).is_type(NULL)
    return unset


def _folded_every_reading(last_reading_at: datetime | None) -> Condition:
    if last_reading_at is None:
        return _unset(SessionItem.last_reading_at)
    folded: Condition = _unset(SessionItem.last_reading_at) | (SessionItem.last_reading_at <= last_reading_at)
    return folded


def _fact_values(facts: SessionFacts, event_count: int) -> dict[str, Any]:
    """The session item's attributes a fold over `event_count` events sets."""
    return {
        "state": facts.state.value,
        "energy_wh": int(facts.energy_wh),
        "peak_power_w": int(facts.peak_power_w),
        "charging_seconds": int(facts.charging_seconds),
        "parking_seconds": int(facts.parking_seconds),
        "stopped_at": facts.stopped_at,
        "freed_at": facts.freed_at,
        "stop_reason": facts.stop_reason,
        "review_reasons": facts.review_reasons,
        "last_reading_at": facts.last_reading_at,
        "event_count": event_count,
        "meter_start_wh": facts.meter_start_wh,
        # Decimal as text: a flat register must compare equal.
        "last_register_wh": str(facts.last_register[1]) if facts.last_register else None,
        "last_register_at": facts.last_register[0] if facts.last_register else None,
    }


@dataclass(frozen=True)
class _StartParts:
    """A start's TransactWriteItems, less what could not be written (see DynamoSessionStore.start)."""

    DROPPABLE: ClassVar[tuple[str, ...]] = ("claim", "link")
    record: SessionRecord
    claim: bool
    link: bool

    def _named(self, start: SessionStart) -> builtins.list[tuple[str, str, dict[str, Any]]]:
        """(part, TransactItems kind, item) in the order pynamodb sends them (condition checks,
        puts, updates), which is the order of a cancellation's reasons."""
        record = self.record
        named: builtins.list[tuple[str, str, dict[str, Any]]] = []
        if start.previous_session_id is not None:
            named.append(("previous", "check", _freed_before(start.previous_session_id, record.started_at)))
        if start.start_key is not None:
            key = TransactionKeyItem(f"start#{start.start_key}", transaction_id=record.transaction_id)
            new_key = TransactionKeyItem.key.does_not_exist()
            named.append(("key", "put", key.get_save_kwargs_from_instance(condition=new_key)))
        events = {event.key: event for event in start.events}  # a transaction writes an item once
        values = _fact_values(start.facts, event_count=len(events))
        session = SessionItem(**{**record.model_dump(), **values})
        new_session = SessionItem.session_id.does_not_exist()
        named.append(("session", "put", session.get_save_kwargs_from_instance(condition=new_session)))
        named += [
            ("event", "put", _event_item(record.session_id, event).get_save_kwargs_from_instance())
            for event in events.values()
        ]
        if self.claim:
            claim = claim_in_transaction(record.id_tag, record.session_id, record.started_at)
            named.append(("claim", "update", claim))
        if self.link:
            link = link_in_transaction(
                record.charger_id, record.connector_id, record.session_id, record.started_at
            )
            named.append(("link", "update", link))
        return named

    def write(self, start: SessionStart) -> None:
        named = self._named(start)
        checks, deletes, puts, updates = (
            [item for _, kind, item in named if kind == of] for of in _TRANSACT_KINDS
        )
        dynamodb_connection().transact_write_items(checks, deletes, puts, updates)

    def refused(
        self, start: SessionStart, reasons: builtins.list[CancellationReason | None]
    ) -> StartOutcome | _StartParts:
        """What a cancellation says: a copy came first, the session before is to be freed first,
        or the start is to be written again without a part that cannot be written."""
        failed = {
            part: reason
            for (part, _, _), reason in zip(self._named(start), reasons, strict=False)
            if reason is not None and reason.code == "ConditionalCheckFailed"
        }
        if "key" in failed or "session" in failed:
            return StartOutcome.COPY
        if "previous" in failed:
            return StartOutcome.PREVIOUS_UNFINISHED
        if "claim" in failed:
            status = refused_claim(failed["claim"].raw_item, self.record.started_at).status
            return replace(self, record=self.record.model_copy(update={"tag_status": status}), claim=False)
        if "link" in failed:  # a later session on the connector: it stays the connector's
            return replace(self, link=False)
        raise RuntimeError(f"session {self.record.session_id}: start cancelled ({reasons})")


_TRANSACT_KINDS = ("check", "delete", "put", "update")


def _freed_before(session_id: str, started_at: datetime) -> dict[str, Any]:
    """A condition check that the connector's session before needs no freeing (as
    session_log.free_connector_for decides): gone, finished, or started at or after the new one."""
    condition = (
        SessionItem.session_id.does_not_exist()
        | ~SessionItem.state.is_in(*_UNFINISHED)
        | (SessionItem.started_at >= started_at)
    )
    return SessionItem.get_operation_kwargs_from_class(session_id, condition=condition)


def _facts_update(facts: SessionFacts, event_count: int) -> tuple[builtins.list[Action], Condition]:
    """save_facts's update: unless a fold over more events was written, or the session is final."""
    values = _fact_values(facts, event_count)
    actions: builtins.list[Action] = [getattr(SessionItem, name).set(value) for name, value in values.items()]
    condition = (
        SessionItem.session_id.exists()
        & (SessionItem.event_count <= event_count)
        & ~SessionItem.state.is_in(*FINAL_STATES)
        # Nor one that misses a reading the hot path has already moved the session on to.
        & _folded_every_reading(facts.last_reading_at)
    )
    return actions, condition


def _cancelled_by_a_condition(error: TransactWriteError) -> bool:
    return error.cause_response_code == "TransactionCanceledException" and any(
        reason is not None and reason.code == "ConditionalCheckFailed"
        for reason in error.cancellation_reasons
    )


def _event_item(session_id: str, event: SessionEvent) -> SessionEventItem:
    # Kept for the retention from when it was written, not from the charger's clock (a charger
    # whose clock is years behind must not have its session deleted before it is billed).
    return SessionEventItem(
        session_id, event.key, body=event.model_dump_json(), expires_at=expires_at(utc_now())
    )


@raises_store_unavailable
class DynamoSessionStore(StoppedSessions, ActiveSessions, BillableSessions, SessionPages):
    def next_transaction_id(self) -> int:
        counter = TransactionKeyItem(TRANSACTION_COUNTER_KEY)
        counter.update(actions=[TransactionKeyItem.transaction_id.add(1)])
        return int(counter.transaction_id)

    def start(self, start: SessionStart) -> StartResult:
        # One TransactWriteItems (its units doubled): a crash leaves all of it or none, so a
        # retry either finds the start key (a copy) or starts over with a new id; no tag is left
        # claimed for a session that never opened. A refused tag or a later session on the
        # connector is rare: the start is written again without that part.
        parts = _StartParts(start.record, claim=start.claim_tag, link=True)
        for _ in range(len(_StartParts.DROPPABLE) + 1):
            try:
                parts.write(start)
            except TransactWriteError as error:
                if error.cause_response_code != "TransactionCanceledException":
                    raise
                refused = parts.refused(start, error.cancellation_reasons)
                if isinstance(refused, StartOutcome):
                    return StartResult(refused, start.record)
                parts = refused
                continue
            return StartResult(StartOutcome.OPENED, parts.record)
        raise RuntimeError(f"session {start.record.session_id}: start kept being refused")

    def allocate_transaction(self, start_key: str) -> tuple[int, bool]:
        # No read first: the conditional put tells a copy, which is rare (it only wastes an id).
        key = f"start#{start_key}"
        candidate = self.next_transaction_id()
        try:
            TransactionKeyItem(key, transaction_id=candidate).save(
                condition=TransactionKeyItem.key.does_not_exist()
            )
        except PutError as error:
            if not conditional_failed(error):
                raise
            # A copy of the same StartTransaction came first: its id stands (ours goes unused).
            return self._transaction_of(key) or candidate, False
        return candidate, True

    def transaction_of(self, start_key: str) -> int | None:
        return self._transaction_of(f"start#{start_key}")

    def session_id_of_transaction(self, charger_id: str, charger_transaction_id: str) -> str | None:
        number = self.transaction_of(transaction_key(charger_id, charger_transaction_id))
        return str(number) if number is not None else None

    def _transaction_of(self, key: str) -> int | None:
        try:
            return int(TransactionKeyItem.get(key, consistent_read=True).transaction_id)
        except DoesNotExist:
            return None

    def get(self, session_id: str) -> SessionRecord | None:
        try:
            return SessionItem.get(session_id, consistent_read=True).to_domain()
        except DoesNotExist:
            return None

    def list(self) -> list[SessionRecord]:
        return sorted((item.to_domain() for item in SessionItem.scan()), key=lambda s: s.started_at)

    def in_state(self, state: str) -> builtins.list[SessionRecord]:
        return [item.to_domain() for item in SessionItem.by_state.query(state)]

    def unfinished_on_connector(
        self, charger_id: str, connector_id: int, started_by: datetime
    ) -> builtins.list[SessionRecord]:
        on_connector = (SessionItem.charger_id == charger_id) & (SessionItem.connector_id == connector_id)
        return [
            item.to_domain()
            for state in (SessionState.ACTIVE, SessionState.STOPPED)
            for item in SessionItem.by_state.query(
                state.value, SessionItem.started_at <= started_by, filter_condition=on_connector
            )
        ]

    def open(
        self, record: SessionRecord, start_facts: SessionFacts | None = None, event_count: int = 1
    ) -> bool:
        values = _fact_values(start_facts, event_count=event_count) if start_facts else {}
        item = SessionItem(**{**record.model_dump(), **values})
        try:
            item.save(condition=SessionItem.session_id.does_not_exist())
        except PutError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def append(
        self, session_id: str, event: SessionEvent, status_history: ConnectorStatus | None = None
    ) -> None:
        # Same event, same key, same body: writing it twice is harmless, so no condition.
        item = _event_item(session_id, event)
        if status_history is None:
            item.save()
        else:
            put_together([item, status_item(status_history)])

    def events(self, session_id: str) -> builtins.list[SessionEvent]:
        items = SessionEventItem.query(session_id, consistent_read=True)
        return [SessionEvent.model_validate_json(item.body) for item in items]

    def save_facts(self, session_id: str, facts: SessionFacts, event_count: int) -> bool:
        return conditional_update(SessionItem(session_id), *_facts_update(facts, event_count))

    def save_folded(
        self, session_id: str, events: builtins.list[SessionEvent], facts: SessionFacts, event_count: int
    ) -> bool:
        if not events:
            return self.save_facts(session_id, facts, event_count)
        # One TransactWriteItems (its units doubled) instead of a put per event and the update.
        actions, condition = _facts_update(facts, event_count)
        update = SessionItem(session_id).get_update_kwargs_from_instance(actions=actions, condition=condition)
        puts = [_event_item(session_id, event).get_save_kwargs_from_instance() for event in events]
        try:
            dynamodb_connection().transact_write_items([], [], puts, [update])
        except TransactWriteError as error:
            if _cancelled_by_a_condition(error):
                return False
            raise
        return True

    def advance_meter(
        self, session_id: str, charger_id: str, connector_id: int, readings: builtins.list[MeterReading]
    ) -> RunningMeter | None:
        first_at, last_at = min(r.at for r in readings), max(r.at for r in readings)
        actions: builtins.list[Action] = [
            SessionItem.last_reading_at.set(last_at),
            # One event per reading instant (see the MeterValues handler).
            SessionItem.event_count.add(len({r.at for r in readings})),
        ]
        register = latest_register(readings)
        if register is not None:
            at, energy_wh = register
            actions += [
                SessionItem.last_register_wh.set(str(energy_wh)),
                SessionItem.last_register_at.set(at),
                # The fold's energy (int() of a non-negative difference: the register only went up).
                SessionItem.energy_wh.set(int(energy_wh) - SessionItem.meter_start_wh),
            ]
        running = (
            (SessionItem.charger_id == charger_id)
            & (SessionItem.connector_id == connector_id)
            & (SessionItem.state == SessionState.ACTIVE.value)
            & (SessionItem.started_at <= first_at)
            & (_unset(SessionItem.review_reasons) | (size(SessionItem.review_reasons) == 0))
            & SessionItem.meter_start_wh.exists()
            & (SessionItem.last_register_at < first_at)
            & (_unset(SessionItem.last_reading_at) | (SessionItem.last_reading_at < first_at))
        )
        try:
            # ALL_OLD costs no read units: the register the new readings go on from, and the rating.
            answer = SessionItem._get_connection().update_item(
                session_id, actions=actions, condition=running, return_values=ALL_OLD
            )
        except UpdateError as error:
            if conditional_failed(error):
                return None
            raise
        before = SessionItem.from_raw_data(answer["Attributes"])
        return RunningMeter(
            register_at=before.last_register_at,  # the condition required it
            register_wh=Decimal(before.last_register_wh),
            rated_power_w=Decimal(before.rated_power_w) if before.rated_power_w else None,
        )

    def assign_driver(self, session_id: str, driver: SessionDriver, replacing_tag: str) -> bool:
        actions: builtins.list[Action] = [
            SessionItem.id_tag.set(driver.id_tag),
            SessionItem.tag_status.set(driver.tag_status.value),
        ]
        if driver.tariff is None:
            actions += [SessionItem.tariff_id.remove(), SessionItem.tariff_json.remove()]
        else:
            actions += [
                SessionItem.tariff_id.set(driver.tariff[0]),
                SessionItem.tariff_json.set(driver.tariff[1]),
            ]
        condition = (SessionItem.id_tag == replacing_tag) & ~SessionItem.state.is_in(*FINAL_STATES)
        return conditional_update(SessionItem(session_id), actions, condition)

    def mark_billed(self, session_id: str) -> bool:
        return conditional_update(
            SessionItem(session_id),
            [SessionItem.state.set("billed")],
            SessionItem.state == SessionState.COMPLETED.value,
        )

    def record_orphan_stop(
        self, charger_id: str, transaction_id: int, payload: dict[str, Any], at: datetime
    ) -> None:
        # Keyed on the payload too: a 1.6 charger's stops for unknown ids can repeat an id.
        body = json.dumps(payload, sort_keys=True)
        key = f"{_orphan_key(charger_id, transaction_id)}#{hashlib.sha256(body.encode()).hexdigest()[:16]}"
        _save_orphan(key, charger_id, transaction_id, body, at)

    def record_orphan_end(
        self, charger_id: str, transaction_id: int, payload: dict[str, Any], at: datetime
    ) -> None:
        # The network numbers a 2.0.1 transaction: its one Ended has one key, found again below.
        body = json.dumps(payload, sort_keys=True)
        _save_orphan(_orphan_key(charger_id, transaction_id), charger_id, transaction_id, body, at)

    def resolve_orphan_end(self, charger_id: str, transaction_id: int) -> None:
        TransactionKeyItem(_orphan_key(charger_id, transaction_id)).delete()

    # ---------------------------------------------------------------- the operator API's pages
    # One Query or one Scan call of at most `limit` items each (a filter may leave fewer).
    def page(
        self, state: str | None, charger_id: str | None, limit: int, start: Key | None
    ) -> Page[SessionRecord]:
        on_charger = SessionItem.charger_id == charger_id if charger_id else None
        if state is None:
            items, next_key = scan_page(SessionItem, limit, start, on_charger)
            return Page([item.to_domain() for item in items], next_key)
        found = SessionItem._get_connection().query(
            state,
            index_name=SessionsByState.Meta.index_name,
            filter_condition=on_charger,
            limit=limit,
            exclusive_start_key=start,
        )
        sessions = [SessionItem.from_raw_data(item).to_domain() for item in found.get("Items", [])]
        return Page(sessions, found.get("LastEvaluatedKey"))

    def orphan_page(self, limit: int, start: Key | None) -> Page[OrphanStop]:
        orphan = TransactionKeyItem.key.startswith(ORPHAN_STOP_PREFIX)
        items, next_key = scan_page(TransactionKeyItem, limit, start, orphan)
        orphans = [
            OrphanStop(
                charger_id=item.charger_id or "",
                transaction_id=int(item.transaction_id or 0),
                received_at=item.received_at,
                payload=json.loads(item.payload or "{}"),
            )
            for item in items
        ]
        return Page(orphans, next_key)

    def peaks(self, session_ids: builtins.list[str]) -> dict[str, int]:
        return {item.session_id: int(item.peak_power_w) for item in SessionItem.batch_get(set(session_ids))}
