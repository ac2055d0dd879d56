"""A status's session event and history entry in one BatchWriteItem, against the stack's DynamoDB."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from chargenet.adapters.history_dynamodb import DynamoHistory
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.domain.models import ConnectorStatus
from chargenet.domain.sessions import EventKind, SessionEvent

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def test_an_event_appended_with_its_status_history_lands_in_both_tables_once_whatever_the_copies(stack):
    charger_id, session_id = f"CP-batch-{uuid.uuid4().hex[:8]}", f"batch-{uuid.uuid4().hex[:12]}"
    charging = ConnectorStatus(
        charger_id=charger_id,
        connector_id=1,
        status="Charging",
        error_code="NoError",
        status_at=T0 + timedelta(minutes=1),
        received_at=T0 + timedelta(minutes=1),
    )
    event = SessionEvent(kind=EventKind.STATUS, at=charging.status_at, status=charging.status)
    store = DynamoSessionStore()
    store.append(session_id, event, status_history=charging)
    store.append(session_id, event, status_history=charging)  # a redelivered frame: same keys
    assert store.events(session_id) == [event]
    timeline = DynamoHistory().timeline(charger_id, 1, T0, T0 + timedelta(hours=1))
    assert [(p.status, p.at) for p in timeline] == [("Charging", charging.status_at)]
