"""DynamoDB adapters of the operator API: the audit trail (AuditTable) and its one-page listings."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError

from chargenet.adapters.dynamodb import (
    CHARGER_SK,
    CONNECTOR_SK_PREFIX,
    ChargerItem,
    DynamoChargerRegistry,
    conditional_failed,
    readable_charger,
    readable_connector,
)
from chargenet.adapters.faults_dynamodb import DynamoFaultStore, FaultItem
from chargenet.adapters.tables import TableModel, table_meta
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.audit import AuditRecord
from chargenet.domain.faults import Fault, FaultState
from chargenet.domain.models import Charger, ConnectorStatus
from chargenet.ports.audit import AuditLog, Key, OperatorViews, Page
from chargenet.ports.faults import StoredFault


class AuditItem(TableModel):
    Meta = table_meta("audit")

    day = UnicodeAttribute(hash_key=True)  # YYYY-MM-DD, UTC
    entry = UnicodeAttribute(range_key=True)  # "<ISO time>#<request id>"
    body = UnicodeAttribute()


@raises_store_unavailable
class DynamoAuditLog(AuditLog):
    def record(self, record: AuditRecord) -> None:
        item = AuditItem(record.day, record.entry, body=record.model_dump_json())
        try:
            item.save(condition=AuditItem.entry.does_not_exist())
        except PutError as error:
            if not conditional_failed(error):  # recorded already: the same request
                raise

    def of_day(self, day: str, limit: int, start: Key | None) -> Page[AuditRecord]:
        found = AuditItem._get_connection().query(
            day, limit=limit, exclusive_start_key=start, scan_index_forward=False
        )
        records = [
            AuditRecord.model_validate_json(AuditItem.from_raw_data(item).body)
            for item in found.get("Items", [])
        ]
        return Page(records, found.get("LastEvaluatedKey"))


@raises_store_unavailable
class DynamoOperatorViews(OperatorViews):
    """Each listing is one Scan or Query call of at most `limit` items (a filter may leave fewer)."""

    def __init__(self) -> None:
        self._registry = DynamoChargerRegistry()
        self._faults = DynamoFaultStore()

    def chargers(self, site_id: str | None, limit: int, start: Key | None) -> Page[Charger]:
        condition: Any = ChargerItem.sk == CHARGER_SK
        if site_id is not None:
            condition &= ChargerItem.site_id == site_id
        found = ChargerItem._get_connection().scan(
            filter_condition=condition, limit=limit, exclusive_start_key=_raw(start)
        )
        chargers = [c for c in map(readable_charger, found.get("Items", [])) if c is not None]
        return Page(sorted(chargers, key=lambda c: c.charger_id), found.get("LastEvaluatedKey"))

    def chargers_with_connectors(
        self, site_id: str | None, limit: int, start: Key | None
    ) -> Page[tuple[Charger, list[ConnectorStatus]]]:
        """One Scan page of charger and connector items: a charger's items share its partition and
        come together, its own item first ("charger" sorts before "connector#"). Connector items at
        the head of a page belong to the previous page's last charger and are skipped; that charger
        had its connectors read whole with one Query, as has this page's last one when the page
        stops inside its partition."""
        wanted: Any = ChargerItem.sk == CHARGER_SK
        if site_id is not None:
            wanted &= ChargerItem.site_id == site_id
        condition = wanted | ChargerItem.sk.startswith(CONNECTOR_SK_PREFIX)
        found = ChargerItem._get_connection().scan(
            filter_condition=condition, limit=limit, exclusive_start_key=_raw(start)
        )
        rows: list[tuple[Charger, list[ConnectorStatus]]] = []
        for raw in found.get("Items", []):
            if raw["sk"]["S"] == CHARGER_SK:
                charger = readable_charger(raw)  # a corrupt one is skipped with its connectors
                if charger is not None:
                    rows.append((charger, []))
            elif rows and rows[-1][0].charger_id == raw["charger_id"]["S"]:
                connector = readable_connector(raw)  # reported ones only, as the registry lists them
                if connector is not None:
                    rows[-1][1].append(connector)
        next_key = found.get("LastEvaluatedKey")
        if rows and next_key is not None:
            last, _ = rows[-1]
            rows[-1] = (last, self._registry.connectors(last.charger_id))
        for _, connectors in rows:
            connectors.sort(key=lambda c: c.connector_id)
        return Page(sorted(rows, key=lambda row: row[0].charger_id), next_key)

    def charger(self, charger_id: str) -> Charger | None:
        return self._registry.get(charger_id)

    def connectors(self, charger_id: str) -> list[ConnectorStatus]:
        return self._registry.connectors(charger_id)

    def faults(self, open_only: bool, limit: int, start: Key | None) -> Page[Fault]:
        condition = FaultItem.state != FaultState.RESOLVED.value if open_only else None
        found = FaultItem._get_connection().scan(
            filter_condition=condition, limit=limit, exclusive_start_key=_raw(start)
        )
        faults = [FaultItem.from_raw_data(item).to_domain()[0] for item in found.get("Items", [])]
        return Page(faults, found.get("LastEvaluatedKey"))

    def fault(self, fault_id: str) -> StoredFault | None:
        return self._faults.get(fault_id)

    def faults_of_charger(self, charger_id: str) -> list[Fault]:
        return [fault for fault, _ in self._faults.of_charger(charger_id)]

    def alerted_faults(self, limit: int, start: Key | None) -> Page[StoredFault]:
        # A Scan page: alerts live inside their fault's item, and no key orders them by time.
        found = FaultItem._get_connection().scan(
            filter_condition=FaultItem.alerts != "[]", limit=limit, exclusive_start_key=_raw(start)
        )
        faults = [FaultItem.from_raw_data(item).to_domain() for item in found.get("Items", [])]
        return Page(faults, found.get("LastEvaluatedKey"))


def _raw(start: Key | None) -> Any:
    """pynamodb annotates Scan's start key as a string; a dict with the hash key goes through as is."""
    return start
