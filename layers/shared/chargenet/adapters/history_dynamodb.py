"""DynamoDB adapter for availability history: every connector status and every fault episode.

The charger registry keeps only each connector's latest status and FaultsTable only each
fault's latest episode; uptime (NEVI) needs the whole timeline. So every status is also
written here under its charger time, and every episode under its number, one item each:

    status#<connector, 3 digits>#<charger time, UTC, microseconds>    a StatusNotification
    episode#<fault id>#<episode, 6 digits>                            a fault episode as last saved

Keys sort in time (and episode) order, and a redelivered status or a re-saved episode
lands on its own key again, so every write is idempotent.

Each item carries `expires_at` (epoch seconds, the table's TTL attribute): its server time plus
the template's SessionDataRetentionDays (SESSION_DATA_RETENTION_DAYS), so the table stops growing
at that many days of history. Without the variable an item is kept.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from chargenet.adapters.tables import TableModel, table_meta
from chargenet.domain.clock import utc_now
from chargenet.domain.faults import Fault
from chargenet.domain.models import ConnectorStatus
from chargenet.domain.uptime import StatusPoint

STATUS_PREFIX = "status#"
EPISODE_PREFIX = "episode#"
RETENTION_DAYS_VARIABLE = "SESSION_DATA_RETENTION_DAYS"


def connector_prefix(connector_id: int) -> str:
    return f"{STATUS_PREFIX}{connector_id:03d}#"


def status_key(connector_id: int, at: datetime) -> str:
    # Fixed width in every part, so the string order is the connector's time order.
    return f"{connector_prefix(connector_id)}{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def episode_key(fault_id: str, episode: int) -> str:
    return f"{EPISODE_PREFIX}{fault_id}#{episode:06d}"


def expires_at(written_at: datetime) -> int | None:
    """When DynamoDB's TTL may delete an item written at `written_at`; None: kept."""
    days = os.environ.get(RETENTION_DAYS_VARIABLE)
    if not days:
        return None
    return int((written_at + timedelta(days=int(days))).timestamp())


class _HistoryTable(TableModel):
    Meta = table_meta("history")

    charger_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    expires_at = NumberAttribute(null=True)


class StatusHistoryItem(_HistoryTable):
    connector_id = NumberAttribute()
    status = UnicodeAttribute()
    error_code = UnicodeAttribute()
    status_at = UTCDateTimeAttribute()
    received_at = UTCDateTimeAttribute()

    def to_point(self) -> StatusPoint:
        return StatusPoint(
            charger_id=self.charger_id,
            connector_id=int(self.connector_id),
            status=self.status,
            at=self.status_at,
        )


class EpisodeHistoryItem(_HistoryTable):
    fault_id = UnicodeAttribute()
    body = UnicodeAttribute()


def episode_item(fault: Fault) -> EpisodeHistoryItem:
    """The archive entry of this fault's current episode (DynamoFaultStore writes it with the fault)."""
    return EpisodeHistoryItem(
        fault.charger_id,
        episode_key(fault.fault_id, fault.episode),
        fault_id=fault.fault_id,
        body=fault.model_dump_json(),
        # From this save: a re-saved episode (it closed, alerts went out) is kept the full period.
        expires_at=expires_at(utc_now()),
    )


def status_item(status: ConnectorStatus) -> StatusHistoryItem:
    """The history entry of a status. Written unconditionally (alone, or in one request with the
    session event the status makes: DynamoSessionStore.append): the same status overwrites
    itself; two statuses with the same charger time keep the later arrival, as the registry's
    latest status does."""
    return StatusHistoryItem(
        status.charger_id,
        status_key(status.connector_id, status.status_at),
        connector_id=status.connector_id,
        status=status.status,
        error_code=status.error_code,
        status_at=status.status_at,
        received_at=status.received_at,
        # From the server's time: a charger's clock may be far off.
        expires_at=expires_at(status.received_at),
    )


class DynamoHistory:
    def record_status(self, status: ConnectorStatus) -> None:
        status_item(status).save()

    def timeline(
        self, charger_id: str, connector_id: int, start: datetime, end: datetime
    ) -> list[StatusPoint]:
        """The connector's statuses in [start, end) and the one in force at `start`, oldest first."""
        # Newest first from `end` back: stop at the first status at or before `start`.
        items = StatusHistoryItem.query(
            charger_id,
            StatusHistoryItem.sk.between(connector_prefix(connector_id), status_key(connector_id, end)),
            scan_index_forward=False,
        )
        points: list[StatusPoint] = []
        for item in items:
            if item.status_at >= end:
                continue
            points.append(item.to_point())
            if item.status_at <= start:
                break
        return points[::-1]

    def episodes(self, charger_id: str) -> list[Fault]:
        items = EpisodeHistoryItem.query(charger_id, EpisodeHistoryItem.sk.startswith(EPISODE_PREFIX))
        return [Fault.model_validate_json(item.body) for item in items]
