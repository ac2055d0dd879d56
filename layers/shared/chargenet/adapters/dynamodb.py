"""DynamoDB adapters (pynamodb): the charger registry and the backend's pending calls.

Table names are bound by the composition (chargenet.adapters.tables), never read at import.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from chargenet.adapters.history_dynamodb import DynamoHistory
from chargenet.adapters.tables import TableModel, table_meta
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.clock import from_epoch_ms
from chargenet.domain.models import BootNotification, Charger, ConnectorStatus, PendingCall, PresenceEvent
from chargenet.domain.ocpp201_messages import DeviceModel, DeviceModelPart
from chargenet.domain.time_zones import site_clock, time_zone_name
from chargenet.ocpp.versions import OcppVersion
from chargenet.ports.faults import Fleet
from chargenet.ports.messaging import PendingCalls
from chargenet.ports.registry import ChargerRegistry, ChargerView, ConnectorLink

CHARGER_SK = "charger"
CONNECTOR_SK_PREFIX = "connector#"
SITE_SK = "site"
# A 2.0.1 charger's reported device model, one item per NotifyReport part, in the charger's
# partition. The prefix sorts after "charger" and "connector#": the per-frame view reads the
# keys below it only, so a large report never adds to every frame's read.
DEVICE_MODEL_SK_PREFIX = "device_model#"
# A report's parts kept: each is at most one frame (the ingest's max_frame_bytes), so a charger's
# device model stays bounded; a report of more parts keeps its first ones.
MAX_DEVICE_MODEL_PARTS = 64
SITE_KEY_PREFIX = "site#"  # a site's record shares the chargers table; '#' is in no charger id
PENDING_CALL_TTL = timedelta(days=2)
RECENT_BOOTS_KEPT = 10
logger = logging.getLogger(__name__)  # enough for fault_rules.reboot_loop


def conditional_failed(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def deployment_time_zone() -> str:
    """The template's DefaultTimeZone: the zone of sites that set none, and of sessions recorded before
    sites had zones."""
    return time_zone_name(os.environ.get("DEFAULT_TIME_ZONE", "UTC"))


def _connector_sk(connector_id: int) -> str:
    return f"{CONNECTOR_SK_PREFIX}{connector_id}"


def _session_link(
    charger_id: str, connector_id: int, session_id: str, at: datetime
) -> tuple[ConnectorItem, list[Action], Condition]:
    """link_session's update: the connector's session from `at`, unless a later one is linked."""
    later = ConnectorItem.session_linked_at.does_not_exist() | (ConnectorItem.session_linked_at <= at)
    actions: list[Action] = [
        ConnectorItem.connector_id.set(connector_id),
        ConnectorItem.session_id.set(session_id),
        ConnectorItem.session_linked_at.set(at),
    ]
    return ConnectorItem(charger_id, _connector_sk(connector_id)), actions, later


def link_in_transaction(charger_id: str, connector_id: int, session_id: str, at: datetime) -> dict[str, Any]:
    """link_session's update as a TransactWriteItems part (a start's: see sessions_dynamodb)."""
    item, actions, condition = _session_link(charger_id, connector_id, session_id, at)
    return item.get_update_kwargs_from_instance(actions=actions, condition=condition)


def conditional_update(item: Model, actions: list[Action], condition: Condition | None) -> bool:
    """An update that loses to newer data: False (not an error) when the condition fails."""
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as error:
        if conditional_failed(error):
            return False
        raise
    return True


# What reading a stored item can raise when it is corrupt: pynamodb's and pydantic's deserialisation.
UNREADABLE = (ValueError, TypeError)


def log_unreadable(kind: str, error: Exception) -> None:
    logger.error(f"unreadable {kind} record skipped", extra={"error": str(error)[:200]})


class _ChargersTable(TableModel):
    Meta = table_meta("chargers")

    charger_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class ChargerItem(_ChargersTable):
    site_id = UnicodeAttribute(default="")
    time_zone = UnicodeAttribute(null=True)
    vendor = UnicodeAttribute(null=True)
    model = UnicodeAttribute(null=True)
    serial_number = UnicodeAttribute(null=True)
    firmware_version = UnicodeAttribute(null=True)
    rated_power_w = NumberAttribute(null=True)
    registered_at = UTCDateTimeAttribute()
    last_boot_at = UTCDateTimeAttribute(null=True)
    last_seen_at = UTCDateTimeAttribute(null=True)
    online = BooleanAttribute(default=False)
    presence_version = NumberAttribute(default=-1)
    presence_changed_at = UTCDateTimeAttribute(null=True)
    disconnect_reason = UnicodeAttribute(null=True)
    recent_boots = ListAttribute(of=UTCDateTimeAttribute, default=list)
    certificate_not_after = UTCDateTimeAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)
    revocation_reason = UnicodeAttribute(null=True)
    diagnostics_status = UnicodeAttribute(null=True)
    firmware_status = UnicodeAttribute(null=True)
    ocpp_version = UnicodeAttribute(null=True)

    def to_domain(self) -> Charger:
        numbers = {"presence_version", "rated_power_w"}
        fields = {name: getattr(self, name) for name in Charger.model_fields if name not in numbers}
        rated = int(self.rated_power_w) if self.rated_power_w is not None else None
        return Charger(**fields, presence_version=int(self.presence_version), rated_power_w=rated)


class SiteItem(_ChargersTable):
    """A site's settings: today its time zone, the default of its chargers."""

    time_zone = UnicodeAttribute(null=True)


class DeviceModelPartItem(_ChargersTable):
    part = UnicodeAttribute()  # DeviceModelPart as JSON


class ConnectorItem(_ChargersTable):
    connector_id = NumberAttribute()
    # Null until the first StatusNotification: meter registers and sessions may come first.
    status = UnicodeAttribute(null=True)
    error_code = UnicodeAttribute(null=True)
    info = UnicodeAttribute(null=True)
    vendor_id = UnicodeAttribute(null=True)
    vendor_error_code = UnicodeAttribute(null=True)
    status_at = UTCDateTimeAttribute(null=True)
    received_at = UTCDateTimeAttribute(null=True)
    session_id = UnicodeAttribute(null=True)
    session_linked_at = UTCDateTimeAttribute(null=True)
    last_register_wh = NumberAttribute(null=True)
    last_register_at = UTCDateTimeAttribute(null=True)
    status_fault_open = BooleanAttribute(null=True)  # see ports.registry.ConnectorLink

    def to_domain(self) -> ConnectorStatus:
        fields = {
            name: getattr(self, name) for name in ConnectorStatus.model_fields if name != "connector_id"
        }
        return ConnectorStatus(**fields, connector_id=int(self.connector_id))


def readable_charger(raw: dict[str, Any]) -> Charger | None:
    """A charger item of a Scan page, None (logged) when it is corrupt: one bad record must not
    make a whole listing fail."""
    try:
        return ChargerItem.from_raw_data(raw).to_domain()
    except UNREADABLE as error:
        log_unreadable("charger", error)
        return None


def readable_connector(raw: dict[str, Any]) -> ConnectorStatus | None:
    """A connector item with a reported status, None when it has none yet or is corrupt (logged)."""
    try:
        item = ConnectorItem.from_raw_data(raw)
        return item.to_domain() if item.status is not None else None
    except UNREADABLE as error:
        log_unreadable("connector", error)
        return None


@raises_store_unavailable
class DynamoChargerRegistry(ChargerRegistry, Fleet):
    def get(self, charger_id: str) -> Charger | None:
        try:
            return ChargerItem.get(charger_id, CHARGER_SK, consistent_read=True).to_domain()
        except DoesNotExist:
            return None

    def view(self, charger_id: str) -> ChargerView | None:
        # One Query of the partition: the charger item and its connectors share it (sk), and
        # together they are far below the 4 KB a read unit covers.
        found = ChargerItem._get_connection().query(
            charger_id, range_key_condition=ChargerItem.sk < DEVICE_MODEL_SK_PREFIX, consistent_read=True
        )
        charger, connectors = None, {}
        for raw in found.get("Items", []):
            sk = raw["sk"]["S"]
            if sk == CHARGER_SK:
                charger = ChargerItem.from_raw_data(raw).to_domain()
            elif sk.startswith(CONNECTOR_SK_PREFIX):
                item = ConnectorItem.from_raw_data(raw)
                register = int(item.last_register_wh) if item.last_register_wh is not None else None
                connectors[int(item.connector_id)] = ConnectorLink(
                    item.session_id, register, item.status_fault_open, item.session_linked_at, item.status
                )
        return ChargerView(charger, connectors) if charger is not None else None

    def register(
        self,
        charger_id: str,
        site_id: str,
        at: datetime,
        rated_power_w: int | None = None,
        certificate_not_after: datetime | None = None,
        time_zone: str | None = None,
    ) -> bool:
        """Add a charger; False when the id is taken."""
        item = ChargerItem(
            charger_id,
            CHARGER_SK,
            site_id=site_id,
            time_zone=time_zone,
            registered_at=at,
            rated_power_w=rated_power_w,
            certificate_not_after=certificate_not_after,
        )
        try:
            item.save(condition=ChargerItem.charger_id.does_not_exist())
        except PutError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def time_zone_of(self, charger: Charger) -> str:
        """The wall clock of the charger's site: its own zone, else its site's, else the deployment's."""
        site_zone = (
            self.site_time_zone(charger.site_id) if charger.site_id and not charger.time_zone else None
        )
        return site_clock(charger.time_zone, site_zone, deployment_time_zone())

    def site_time_zone(self, site_id: str) -> str | None:
        try:
            return SiteItem.get(f"{SITE_KEY_PREFIX}{site_id}", SITE_SK).time_zone
        except DoesNotExist:
            return None

    def set_site_time_zone(self, site_id: str, time_zone: str) -> None:
        SiteItem(f"{SITE_KEY_PREFIX}{site_id}", SITE_SK, time_zone=time_zone_name(time_zone)).save()

    def list(self) -> list[Charger]:
        """Every charger that can be read: one corrupt record must not blind the fleet-wide sweep."""
        chargers = []
        items = ChargerItem.scan(ChargerItem.sk == CHARGER_SK)
        while True:
            try:
                chargers.append(next(items).to_domain())
            except StopIteration:
                break
            except UNREADABLE as error:
                # The iterator has moved past the bad item: log it and go on.
                log_unreadable("charger", error)
        return sorted(chargers, key=lambda c: c.charger_id)

    def record_boot(
        self,
        charger_id: str,
        boot: BootNotification,
        at: datetime,
        ocpp_version: OcppVersion = OcppVersion.V16,
        rebooted: bool = True,
    ) -> Charger:
        item = ChargerItem(charger_id, CHARGER_SK)
        # Only what the boot reports: a field it leaves out keeps what is known (the serial
        # recorded at claim time, the firmware last reported).
        facts = [getattr(ChargerItem, field).set(value) for field, value in boot.reported_facts().items()]
        boot_time = [
            ChargerItem.last_boot_at.set(at),
            # Expressions take the stored form: the typed list attribute does not serialise them.
            ChargerItem.recent_boots.set(
                (ChargerItem.recent_boots | []).append([UTCDateTimeAttribute().serialize(at)])
            ),
        ]
        item.update(
            actions=[
                *facts,
                *(boot_time if rebooted else []),
                ChargerItem.last_seen_at.set(at),
                ChargerItem.ocpp_version.set(ocpp_version.value),
            ],
            condition=ChargerItem.charger_id.exists(),
        )
        excess = len(item.recent_boots) - RECENT_BOOTS_KEPT
        if excess > 0:
            item.update(actions=[ChargerItem.recent_boots[i].remove() for i in range(excess)])
        return item.to_domain()

    def record_device_status(self, charger_id: str, field: str, status: str) -> None:
        attribute = {
            "diagnostics_status": ChargerItem.diagnostics_status,
            "firmware_status": ChargerItem.firmware_status,
        }
        ChargerItem(charger_id, CHARGER_SK).update(
            actions=[attribute[field].set(status)], condition=ChargerItem.charger_id.exists()
        )

    def record_device_model_part(self, charger_id: str, part: DeviceModelPart) -> None:
        if part.seq_no >= MAX_DEVICE_MODEL_PARTS:
            return
        # UpdateItem, which creates the item: the ingest may not PutItem into the chargers table.
        DeviceModelPartItem(charger_id, f"{DEVICE_MODEL_SK_PREFIX}{part.seq_no:04d}").update(
            actions=[DeviceModelPartItem.part.set(part.model_dump_json())]
        )

    def device_model(self, charger_id: str) -> DeviceModel | None:
        items = DeviceModelPartItem.query(
            charger_id, DeviceModelPartItem.sk.startswith(DEVICE_MODEL_SK_PREFIX), consistent_read=True
        )
        return DeviceModel.of_parts([DeviceModelPart.model_validate_json(item.part) for item in items])

    def record_certificate(self, charger_id: str, not_after: datetime) -> None:
        """A rotated certificate is in use: its expiry is what the fault sweep watches now."""
        ChargerItem(charger_id, CHARGER_SK).update(
            actions=[ChargerItem.certificate_not_after.set(not_after)],
            condition=ChargerItem.charger_id.exists(),
        )

    def record_revocation(self, charger_id: str, at: datetime, reason: str | None) -> None:
        ChargerItem(charger_id, CHARGER_SK).update(
            actions=[
                ChargerItem.revoked_at.set(at),
                ChargerItem.revocation_reason.set(reason),  # type: ignore[arg-type]  # null=True: pynamodb types set() without None
            ],
            condition=ChargerItem.charger_id.exists(),
        )

    def record_seen(self, charger_id: str, at: datetime) -> None:
        # Losing to a later frame that already moved it on is fine.
        conditional_update(
            ChargerItem(charger_id, CHARGER_SK),
            [ChargerItem.last_seen_at.set(at)],
            ChargerItem.charger_id.exists()
            & (ChargerItem.last_seen_at.does_not_exist() | (ChargerItem.last_seen_at < at)),
        )

    def record_connector_status(self, status: ConnectorStatus, raises_fault: bool = False) -> bool:
        # Every status joins the history, older ones too (they are part of the timeline), and
        # before the latest is stored, so no latest status ever lacks its history entry.
        self.record_status_history(status)
        return self.record_latest_status(status, raises_fault)

    def record_status_history(self, status: ConnectorStatus) -> None:
        DynamoHistory().record_status(status)

    def record_latest_status(self, status: ConnectorStatus, raises_fault: bool = False) -> bool:
        fields = status.model_dump(exclude={"charger_id", "connector_id"})
        item = ConnectorItem(status.charger_id, _connector_sk(status.connector_id))
        actions = [getattr(ConnectorItem, name).set(value) for name, value in fields.items()]
        if raises_fault:
            actions.append(ConnectorItem.status_fault_open.set(True))
        newer = ConnectorItem.status_at.does_not_exist() | (ConnectorItem.status_at <= status.status_at)
        return conditional_update(
            item, [*actions, ConnectorItem.connector_id.set(status.connector_id)], newer
        )

    def clear_status_fault(self, charger_id: str, connector_id: int, status_at: datetime) -> None:
        conditional_update(
            ConnectorItem(charger_id, _connector_sk(connector_id)),
            [ConnectorItem.status_fault_open.set(False)],
            ConnectorItem.status_at <= status_at,
        )

    def connectors(self, charger_id: str) -> builtins.list[ConnectorStatus]:
        items = ConnectorItem.query(charger_id, ConnectorItem.sk.startswith(CONNECTOR_SK_PREFIX))
        statuses = (item.to_domain() for item in items if item.status is not None)
        return sorted(statuses, key=lambda c: c.connector_id)

    def link_session(self, charger_id: str, connector_id: int, session_id: str, at: datetime) -> None:
        conditional_update(*_session_link(charger_id, connector_id, session_id, at))

    def connector_session(self, charger_id: str, connector_id: int) -> str | None:
        connector = self._connector(charger_id, connector_id)
        return connector.session_id if connector else None

    def record_register(self, charger_id: str, connector_id: int, energy_wh: int, at: datetime) -> None:
        item = ConnectorItem(charger_id, _connector_sk(connector_id))
        later = ConnectorItem.last_register_at.does_not_exist() | (ConnectorItem.last_register_at <= at)
        actions: list[Action] = [
            ConnectorItem.connector_id.set(connector_id),
            ConnectorItem.last_register_wh.set(energy_wh),
            ConnectorItem.last_register_at.set(at),
        ]
        conditional_update(item, actions, later)

    def last_register(self, charger_id: str, connector_id: int) -> int | None:
        connector = self._connector(charger_id, connector_id)
        return (
            int(connector.last_register_wh) if connector and connector.last_register_wh is not None else None
        )

    def _connector(self, charger_id: str, connector_id: int) -> ConnectorItem | None:
        try:
            return ConnectorItem.get(charger_id, _connector_sk(connector_id), consistent_read=True)
        except DoesNotExist:
            return None

    def apply_presence(self, event: PresenceEvent) -> bool:
        return conditional_update(
            ChargerItem(event.client_id, CHARGER_SK),
            [
                ChargerItem.online.set(event.event_type == "connected"),
                ChargerItem.presence_version.set(event.version_number),
                ChargerItem.presence_changed_at.set(from_epoch_ms(event.timestamp)),
                ChargerItem.disconnect_reason.set(event.disconnect_reason),  # type: ignore[arg-type]  # null=True: pynamodb types set() without None
            ],
            ChargerItem.charger_id.exists() & (ChargerItem.presence_version < event.version_number),
        )


class PendingCallItem(TableModel):
    Meta = table_meta("pending_calls")

    charger_id = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)
    action = UnicodeAttribute()
    payload = UnicodeAttribute()
    sent_at = UTCDateTimeAttribute()
    answered_at = UTCDateTimeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()


@raises_store_unavailable
class DynamoPendingCalls(PendingCalls):
    def add(
        self, charger_id: str, message_id: str, action: str, payload: dict[str, Any], at: datetime
    ) -> None:
        PendingCallItem(
            charger_id,
            message_id,
            action=action,
            payload=json.dumps(payload),
            sent_at=at,
            expires_at=int((at + PENDING_CALL_TTL).timestamp()),
        ).save(condition=PendingCallItem.message_id.does_not_exist())

    def action_of(self, charger_id: str, message_id: str) -> str | None:
        try:
            return PendingCallItem.get(charger_id, message_id, consistent_read=True).action
        except DoesNotExist:
            return None

    def get(self, charger_id: str, message_id: str) -> PendingCall | None:
        try:
            return _pending_call(PendingCallItem.get(charger_id, message_id, consistent_read=True))
        except DoesNotExist:
            return None

    def of_charger(self, charger_id: str) -> list[PendingCall]:
        calls = (_pending_call(item) for item in PendingCallItem.query(charger_id, consistent_read=True))
        return sorted(calls, key=lambda c: c.sent_at)

    def page_of_charger(
        self, charger_id: str, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[PendingCall], dict[str, Any] | None]:
        found = PendingCallItem._get_connection().query(
            charger_id, limit=limit, exclusive_start_key=start, consistent_read=True
        )
        calls = [_pending_call(PendingCallItem.from_raw_data(item)) for item in found.get("Items", [])]
        return calls, found.get("LastEvaluatedKey")

    def resolve(self, charger_id: str, message_id: str, outcome: dict[str, Any], at: datetime) -> bool:
        return conditional_update(
            PendingCallItem(charger_id, message_id),
            [PendingCallItem.answered_at.set(at), PendingCallItem.outcome.set(json.dumps(outcome))],
            PendingCallItem.message_id.exists() & PendingCallItem.answered_at.does_not_exist(),
        )


def _pending_call(item: PendingCallItem) -> PendingCall:
    return PendingCall(
        charger_id=item.charger_id,
        message_id=item.message_id,
        action=item.action,
        payload=json.loads(item.payload),
        sent_at=item.sent_at,
        answered_at=item.answered_at,
        outcome=json.loads(item.outcome) if item.outcome else None,
    )
