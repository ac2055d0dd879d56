"""DynamoDB adapters (pynamodb): the charger registry and the backend's pending calls.

Table names come from the function's environment (template.yaml sets them), read when
this module is imported, as Lambda and the local runtime both set them before that.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from chargenet.domain.clock import from_epoch_ms
from chargenet.domain.models import BootNotification, Charger, ConnectorStatus, PresenceEvent

CHARGER_SK = "charger"
CONNECTOR_SK_PREFIX = "connector#"
PENDING_CALL_TTL = timedelta(days=2)


def _conditional_failed(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def _table_meta(table_env_var: str, local_name: str) -> type:
    """pynamodb's Meta: the table the template created (its logical id on the local stack)."""

    class Meta:
        table_name = os.environ.get(table_env_var, local_name)
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

    return Meta


class _ChargersTable(Model):
    Meta = _table_meta("CHARGERS_TABLE", "ChargersTable")

    charger_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class ChargerItem(_ChargersTable):
    site_id = UnicodeAttribute(default="")
    vendor = UnicodeAttribute(null=True)
    model = UnicodeAttribute(null=True)
    serial_number = UnicodeAttribute(null=True)
    firmware_version = UnicodeAttribute(null=True)
    registered_at = UTCDateTimeAttribute()
    last_boot_at = UTCDateTimeAttribute(null=True)
    last_seen_at = UTCDateTimeAttribute(null=True)
    online = BooleanAttribute(default=False)
    presence_version = NumberAttribute(default=-1)
    presence_changed_at = UTCDateTimeAttribute(null=True)
    disconnect_reason = UnicodeAttribute(null=True)

    def to_domain(self) -> Charger:
        fields = {name: getattr(self, name) for name in Charger.model_fields if name != "presence_version"}
        return Charger(**fields, presence_version=int(self.presence_version))


class ConnectorItem(_ChargersTable):
    connector_id = NumberAttribute()
    status = UnicodeAttribute()
    error_code = UnicodeAttribute()
    info = UnicodeAttribute(null=True)
    vendor_id = UnicodeAttribute(null=True)
    vendor_error_code = UnicodeAttribute(null=True)
    status_at = UTCDateTimeAttribute()
    received_at = UTCDateTimeAttribute()

    def to_domain(self) -> ConnectorStatus:
        fields = {
            name: getattr(self, name) for name in ConnectorStatus.model_fields if name != "connector_id"
        }
        return ConnectorStatus(**fields, connector_id=int(self.connector_id))


class DynamoChargerRegistry:
    """Implements chargenet.domain.ports.ChargerRegistry."""

    def get(self, charger_id: str) -> Charger | None:
        try:
            return ChargerItem.get(charger_id, CHARGER_SK, consistent_read=True).to_domain()
        except DoesNotExist:
            return None

    def register(self, charger_id: str, site_id: str, at: datetime) -> bool:
        """Add a charger; False when the id is taken."""
        item = ChargerItem(charger_id, CHARGER_SK, site_id=site_id, registered_at=at)
        try:
            item.save(condition=ChargerItem.charger_id.does_not_exist())
        except PutError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def list(self) -> list[Charger]:
        items = ChargerItem.scan(ChargerItem.sk == CHARGER_SK)
        return sorted((item.to_domain() for item in items), key=lambda c: c.charger_id)

    def record_boot(self, charger_id: str, boot: BootNotification, at: datetime) -> None:
        ChargerItem(charger_id, CHARGER_SK).update(
            actions=[
                ChargerItem.vendor.set(boot.charge_point_vendor),
                ChargerItem.model.set(boot.charge_point_model),
                ChargerItem.serial_number.set(
                    boot.charge_point_serial_number or boot.charge_box_serial_number
                ),
                ChargerItem.firmware_version.set(boot.firmware_version),
                ChargerItem.last_boot_at.set(at),
                ChargerItem.last_seen_at.set(at),
            ],
            condition=ChargerItem.charger_id.exists(),
        )

    def record_seen(self, charger_id: str, at: datetime) -> None:
        try:
            ChargerItem(charger_id, CHARGER_SK).update(
                actions=[ChargerItem.last_seen_at.set(at)],
                condition=ChargerItem.charger_id.exists()
                & (ChargerItem.last_seen_at.does_not_exist() | (ChargerItem.last_seen_at < at)),
            )
        except UpdateError as error:
            if not _conditional_failed(error):  # a later frame already moved it on
                raise

    def record_connector_status(self, status: ConnectorStatus) -> bool:
        fields = status.model_dump(exclude={"charger_id", "connector_id"})
        item = ConnectorItem(
            status.charger_id,
            f"{CONNECTOR_SK_PREFIX}{status.connector_id}",
            connector_id=status.connector_id,
            **fields,
        )
        try:
            item.save(
                condition=ConnectorItem.status_at.does_not_exist()
                | (ConnectorItem.status_at <= status.status_at)
            )
        except PutError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def connectors(self, charger_id: str) -> list[ConnectorStatus]:
        items = ConnectorItem.query(charger_id, ConnectorItem.sk.startswith(CONNECTOR_SK_PREFIX))
        return sorted((item.to_domain() for item in items), key=lambda c: c.connector_id)

    def apply_presence(self, event: PresenceEvent) -> bool:
        at = from_epoch_ms(event.timestamp)
        try:
            ChargerItem(event.client_id, CHARGER_SK).update(
                actions=[
                    ChargerItem.online.set(event.event_type == "connected"),
                    ChargerItem.presence_version.set(event.version_number),
                    ChargerItem.presence_changed_at.set(at),
                    ChargerItem.disconnect_reason.set(event.disconnect_reason),
                ],
                condition=ChargerItem.charger_id.exists()
                & (ChargerItem.presence_version < event.version_number),
            )
        except UpdateError as error:
            if _conditional_failed(error):
                return False
            raise
        return True


class PendingCallItem(Model):
    Meta = _table_meta("PENDING_CALLS_TABLE", "PendingCallsTable")

    charger_id = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)
    action = UnicodeAttribute()
    payload = UnicodeAttribute()
    sent_at = UTCDateTimeAttribute()
    answered_at = UTCDateTimeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()


class DynamoPendingCalls:
    """Implements chargenet.domain.ports.PendingCalls."""

    def add(self, charger_id: str, message_id: str, action: str, payload: dict, at: datetime) -> None:
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

    def resolve(self, charger_id: str, message_id: str, outcome: dict, at: datetime) -> bool:
        try:
            PendingCallItem(charger_id, message_id).update(
                actions=[
                    PendingCallItem.answered_at.set(at),
                    PendingCallItem.outcome.set(json.dumps(outcome)),
                ],
                condition=PendingCallItem.message_id.exists() & PendingCallItem.answered_at.does_not_exist(),
            )
        except UpdateError as error:
            if _conditional_failed(error):
                return False
            raise
        return True
