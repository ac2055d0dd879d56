"""DynamoDB adapters of the console's reads: a charger's events (HistoryTable, PendingCallsTable,
Queries on the charger's key) and the energy report's CDRs (one Scan page) and sites (BatchGetItem)."""

from __future__ import annotations

from datetime import datetime

from chargenet.adapters.audit_dynamodb import _raw
from chargenet.adapters.cdrs_dynamodb import CdrItem
from chargenet.adapters.dynamodb import CHARGER_SK, ChargerItem, DynamoPendingCalls
from chargenet.adapters.history_dynamodb import (
    EPISODE_PREFIX,
    EpisodeHistoryItem,
    StatusHistoryItem,
    connector_prefix,
    episode_key,
    status_key,
)
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.billing import BillingRecord
from chargenet.domain.faults import Fault
from chargenet.domain.models import PendingCall
from chargenet.domain.uptime import StatusPoint
from chargenet.ports.audit import Key, Page
from chargenet.ports.console_reads import ChargerEvents, EnergySources

# Above every status key of a connector: "status#001#" then a time, and "~" sorts after digits.
_AFTER_EVERY_TIME = "~"


@raises_store_unavailable
class DynamoChargerEvents(ChargerEvents):
    def statuses_until(
        self, charger_id: str, connector_id: int, until: datetime | None, limit: int
    ) -> list[StatusPoint]:
        prefix = connector_prefix(connector_id)
        upper = status_key(connector_id, until) if until else prefix + _AFTER_EVERY_TIME
        items = StatusHistoryItem.query(
            charger_id, StatusHistoryItem.sk.between(prefix, upper), scan_index_forward=False, limit=limit
        )
        return [item.to_point() for item in items]

    def episodes_below(self, charger_id: str, fault_id: str, below: int | None, limit: int) -> list[Fault]:
        prefix = f"{EPISODE_PREFIX}{fault_id}#"
        condition = (
            EpisodeHistoryItem.sk.between(prefix, episode_key(fault_id, below - 1))
            if below is not None
            else EpisodeHistoryItem.sk.startswith(prefix)
        )
        items = EpisodeHistoryItem.query(charger_id, condition, scan_index_forward=False, limit=limit)
        return [Fault.model_validate_json(item.body) for item in items]

    def commands(self, charger_id: str, limit: int) -> list[PendingCall]:
        return DynamoPendingCalls().page_of_charger(charger_id, limit, None)[0]


@raises_store_unavailable
class DynamoEnergySources(EnergySources):
    def cdrs_ended_between(
        self, start: datetime, end: datetime, limit: int, from_key: Key | None
    ) -> Page[BillingRecord]:
        condition = (CdrItem.end_date_time >= start) & (CdrItem.end_date_time < end)
        found = CdrItem._get_connection().scan(
            filter_condition=condition, limit=limit, exclusive_start_key=_raw(from_key)
        )
        return Page(
            [CdrItem.from_raw_data(item).to_domain() for item in found.get("Items", [])],
            found.get("LastEvaluatedKey"),
        )

    def sites_of(self, charger_ids: set[str]) -> dict[str, str]:
        keys = [(charger_id, CHARGER_SK) for charger_id in sorted(charger_ids)]
        return {item.charger_id: item.site_id for item in ChargerItem.batch_get(keys)}
