"""DynamoDB adapters for RFID tags (authorization, concurrent sessions) and tariffs."""

from __future__ import annotations

from datetime import datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import size

from chargenet.adapters.dynamodb import conditional_update
from chargenet.adapters.tables import TableModel, table_meta
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.models import TagAuthorization, TagStatus
from chargenet.ports.tags_tariffs import MemberTariffs, TagDirectory, TariffBook

DEFAULT_SCOPE = "*"


class TagItem(TableModel):
    Meta = table_meta("tags")

    id_tag = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute(default=TagStatus.ACCEPTED.value)
    expires_at = UTCDateTimeAttribute(null=True)
    max_concurrent_sessions = NumberAttribute(default=1)
    active_sessions = UnicodeSetAttribute(null=True)


@raises_store_unavailable
class DynamoTagDirectory(TagDirectory):
    def put(self, id_tag: str, status: TagStatus, max_concurrent: int, expires_at: datetime | None) -> None:
        TagItem(
            id_tag, status=status.value, max_concurrent_sessions=max_concurrent, expires_at=expires_at
        ).save()

    def authorize(self, id_tag: str, at: datetime) -> TagAuthorization:
        try:
            item = TagItem.get(id_tag, consistent_read=True)
        except DoesNotExist:
            return TagAuthorization(status=TagStatus.INVALID)
        status = TagStatus(item.status)
        if status is TagStatus.ACCEPTED and item.expires_at is not None and item.expires_at <= at:
            status = TagStatus.EXPIRED
        return TagAuthorization(
            status=status,
            expires_at=item.expires_at,
            max_concurrent_sessions=int(item.max_concurrent_sessions),
        )

    def claim(self, id_tag: str, session_id: str, max_concurrent: int) -> bool:
        room = (
            TagItem.active_sessions.does_not_exist()
            | TagItem.active_sessions.contains(session_id)
            | (size(TagItem.active_sessions) < max_concurrent)
        )
        return conditional_update(
            TagItem(id_tag), [TagItem.active_sessions.add({session_id})], TagItem.id_tag.exists() & room
        )

    def release(self, id_tag: str, session_id: str) -> None:
        conditional_update(
            TagItem(id_tag), [TagItem.active_sessions.delete({session_id})], TagItem.id_tag.exists()
        )

    def list(self) -> list[TagItem]:
        return sorted(TagItem.scan(), key=lambda t: t.id_tag)


class TariffItem(TableModel):
    """`tariff#<id>` holds an OCPI tariff; `assignment#<charger>#<connector>` points at one (`*` = any),
    `member#<tag>` at a subscriber's member tariff."""

    Meta = table_meta("tariffs")

    key = UnicodeAttribute(hash_key=True)
    tariff_id = UnicodeAttribute()
    body = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)


def _assignment_key(charger_id: str, connector_id: int | str) -> str:
    return f"assignment#{charger_id}#{connector_id}"


@raises_store_unavailable
class DynamoTariffBook(TariffBook, MemberTariffs):
    def store(self, tariff_id: str, body: str, at: datetime) -> None:
        TariffItem(f"tariff#{tariff_id}", tariff_id=tariff_id, body=body, updated_at=at).save()

    def assign(
        self, tariff_id: str, charger_id: str = DEFAULT_SCOPE, connector_id: int | str = DEFAULT_SCOPE
    ) -> None:
        TariffItem(_assignment_key(charger_id, connector_id), tariff_id=tariff_id).save()

    def tariff(self, tariff_id: str) -> str | None:
        try:
            return TariffItem.get(f"tariff#{tariff_id}", consistent_read=True).body
        except DoesNotExist:
            return None

    def in_force(self, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        scopes: list[tuple[str, int | str]] = [
            (charger_id, connector_id),
            (charger_id, DEFAULT_SCOPE),
            (DEFAULT_SCOPE, DEFAULT_SCOPE),
        ]
        keys = [_assignment_key(*scope) for scope in scopes]
        assigned = {item.key: item.tariff_id for item in TariffItem.batch_get(keys)}
        for key in keys:
            if key in assigned and (body := self.tariff(assigned[key])) is not None:
                return assigned[key], body
        return None

    def assign_member(self, id_tag: str, tariff_id: str) -> None:
        TariffItem(f"member#{id_tag}", tariff_id=tariff_id).save()

    def member_tariff(self, id_tag: str) -> tuple[str, str] | None:
        try:
            tariff_id = TariffItem.get(f"member#{id_tag}", consistent_read=True).tariff_id
        except DoesNotExist:
            return None
        body = self.tariff(tariff_id)
        return (tariff_id, body) if body is not None else None

    def list(self) -> list[TariffItem]:
        return sorted(TariffItem.scan(), key=lambda t: t.key)
