"""DynamoDB adapters for RFID tags (authorization, concurrent sessions) and tariffs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute
from pynamodb.constants import ALL_NEW, ALL_OLD, NULL
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.operand import Path

from chargenet.adapters.dynamodb import conditional_failed
from chargenet.adapters.pages import scan_page
from chargenet.adapters.tables import TableModel, table_meta
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.models import TagAuthorization, TagStatus
from chargenet.ports.audit import Key, Page
from chargenet.ports.operator_sessions import StoredTariff, TagEntry, TagPages, TariffAssignment, TariffPages
from chargenet.ports.tags_tariffs import MemberTariffs, TagDirectory, TariffBook

DEFAULT_SCOPE = "*"
TARIFF_PREFIX = "tariff#"
ASSIGNMENT_PREFIX = "assignment#"
MEMBER_PREFIX = "member#"


class TagItem(TableModel):
    Meta = table_meta("tags")

    id_tag = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute(default=TagStatus.ACCEPTED.value)
    expires_at = UTCDateTimeAttribute(null=True)
    max_concurrent_sessions = NumberAttribute(default=1)
    active_sessions = UnicodeSetAttribute(null=True)


@raises_store_unavailable
class DynamoTagDirectory(TagDirectory, TagPages):
    def put(self, id_tag: str, status: TagStatus, max_concurrent: int, expires_at: datetime | None) -> None:
        TagItem(
            id_tag, status=status.value, max_concurrent_sessions=max_concurrent, expires_at=expires_at
        ).save()

    def authorize(self, id_tag: str, at: datetime) -> TagAuthorization:
        try:
            item = TagItem.get(id_tag, consistent_read=True)
        except DoesNotExist:
            return TagAuthorization(status=TagStatus.INVALID)
        return _authorization(item, at)

    def authorize_and_claim(self, id_tag: str, session_id: str, at: datetime) -> TagAuthorization:
        # One conditional update. Refused, one read says why (rare: a blocked, expired, unknown
        # or busy tag).
        try:
            answer = TagItem._get_connection().update_item(
                id_tag,
                actions=[TagItem.active_sessions.add({session_id})],
                condition=_claimable(session_id, at),
                return_values=ALL_NEW,
            )
        except UpdateError as error:
            if not conditional_failed(error):
                raise
            return _refusal(self.authorize(id_tag, at))
        return _authorization(TagItem.from_raw_data(answer["Attributes"]), at)

    def release(self, id_tag: str, session_id: str, at: datetime) -> TagAuthorization:
        try:
            # ALL_NEW costs no read units: the tag as the release left it answers for it.
            answer = TagItem._get_connection().update_item(
                id_tag,
                actions=[TagItem.active_sessions.delete({session_id})],
                condition=TagItem.id_tag.exists(),
                return_values=ALL_NEW,
            )
        except UpdateError as error:
            if conditional_failed(error):
                return TagAuthorization(status=TagStatus.INVALID)
            raise
        return _authorization(TagItem.from_raw_data(answer["Attributes"]), at)

    def page(self, limit: int, start: Key | None) -> Page[TagEntry]:
        """One Scan call of at most `limit` tags (the operator API's listing)."""
        items, next_key = scan_page(TagItem, limit, start)
        return Page([_tag_entry(item) for item in items], next_key)


def _claimable(session_id: str, at: datetime) -> Condition:
    """The tag exists, is accepted and in date, and has room for the session (or holds it)."""
    usable = (TagItem.status == TagStatus.ACCEPTED.value) & (
        TagItem.expires_at.does_not_exist()
        | Path(TagItem.expires_at).is_type(NULL)
        | (TagItem.expires_at > at)
    )
    room = (
        TagItem.active_sessions.does_not_exist()
        | TagItem.active_sessions.contains(session_id)
        | (size(TagItem.active_sessions) < Path(TagItem.max_concurrent_sessions))
    )
    claimable: Condition = TagItem.id_tag.exists() & usable & room
    return claimable


def claim_in_transaction(id_tag: str, session_id: str, at: datetime) -> dict[str, Any]:
    """authorize_and_claim's update as a TransactWriteItems part: refused, the cancellation
    carries the tag as it was (refused_claim reads it; no read units)."""
    return TagItem(id_tag).get_update_kwargs_from_instance(
        actions=[TagItem.active_sessions.add({session_id})],
        condition=_claimable(session_id, at),
        return_values_on_condition_failure=ALL_OLD,
    )


def refused_claim(raw_tag: dict[str, Any] | None, at: datetime) -> TagAuthorization:
    """Why a claim was refused, from the tag as it was (None: no such tag)."""
    if raw_tag is None:
        return TagAuthorization(status=TagStatus.INVALID)
    return _refusal(_authorization(TagItem.from_raw_data(raw_tag), at))


def _refusal(authorization: TagAuthorization) -> TagAuthorization:
    """A refused claim's status: the tag's own, or, when the tag is fine, that it is busy."""
    if authorization.status is not TagStatus.ACCEPTED:
        return authorization
    return authorization.model_copy(update={"status": TagStatus.CONCURRENT_TX})


def _authorization(item: TagItem, at: datetime) -> TagAuthorization:
    status = TagStatus(item.status)
    if status is TagStatus.ACCEPTED and item.expires_at is not None and item.expires_at <= at:
        status = TagStatus.EXPIRED
    return TagAuthorization(
        status=status,
        expires_at=item.expires_at,
        max_concurrent_sessions=int(item.max_concurrent_sessions),
    )


def _tag_entry(item: TagItem) -> TagEntry:
    return TagEntry(
        id_tag=item.id_tag,
        status=item.status,
        max_concurrent_sessions=int(item.max_concurrent_sessions),
        expires_at=item.expires_at,
        active_sessions=len(item.active_sessions or ()),
    )


class TariffItem(TableModel):
    """`tariff#<id>` holds an OCPI tariff; `assignment#<charger>#<connector>` points at one (`*` = any),
    `member#<tag>` at a subscriber's member tariff."""

    Meta = table_meta("tariffs")

    key = UnicodeAttribute(hash_key=True)
    tariff_id = UnicodeAttribute()
    body = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)


def _assignment_key(charger_id: str, connector_id: int | str) -> str:
    return f"{ASSIGNMENT_PREFIX}{charger_id}#{connector_id}"


def _assignment_keys(charger_id: str, connector_id: int) -> list[str]:
    """The connector's, the charger's and the network's assignment, in that order."""
    scopes: list[tuple[str, int | str]] = [
        (charger_id, connector_id),
        (charger_id, DEFAULT_SCOPE),
        (DEFAULT_SCOPE, DEFAULT_SCOPE),
    ]
    return [_assignment_key(*scope) for scope in scopes]


def _member_key(id_tag: str) -> str:
    return f"{MEMBER_PREFIX}{id_tag}"


@raises_store_unavailable
class DynamoTariffBook(TariffBook, MemberTariffs, TariffPages):
    def store(self, tariff_id: str, body: str, at: datetime) -> None:
        TariffItem(f"{TARIFF_PREFIX}{tariff_id}", tariff_id=tariff_id, body=body, updated_at=at).save()

    def assign(
        self, tariff_id: str, charger_id: str = DEFAULT_SCOPE, connector_id: int | str = DEFAULT_SCOPE
    ) -> None:
        TariffItem(_assignment_key(charger_id, connector_id), tariff_id=tariff_id).save()

    def tariff(self, tariff_id: str) -> str | None:
        try:
            return TariffItem.get(f"{TARIFF_PREFIX}{tariff_id}", consistent_read=True).body
        except DoesNotExist:
            return None

    def in_force(self, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        return self._first_stored(_assignment_keys(charger_id, connector_id))

    def session_tariff(self, id_tag: str, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        # The member pointer and the assignments in one batch: most tags are not members.
        return self._first_stored([_member_key(id_tag), *_assignment_keys(charger_id, connector_id)])

    def _first_stored(self, keys: list[str]) -> tuple[str, str] | None:
        """The tariff the first of `keys` points at whose tariff is stored."""
        assigned = {item.key: item.tariff_id for item in TariffItem.batch_get(keys)}
        for key in keys:
            if key in assigned and (body := self.tariff(assigned[key])) is not None:
                return assigned[key], body
        return None

    def assign_member(self, id_tag: str, tariff_id: str) -> None:
        TariffItem(_member_key(id_tag), tariff_id=tariff_id).save()

    def tariff_page(self, limit: int, start: Key | None) -> Page[StoredTariff]:
        """One Scan call of at most `limit` items, the stored tariffs among them."""
        items, next_key = scan_page(TariffItem, limit, start, TariffItem.key.startswith(TARIFF_PREFIX))
        return Page([StoredTariff(item.tariff_id, item.body or "") for item in items], next_key)

    def assignment_page(self, limit: int, start: Key | None) -> Page[TariffAssignment]:
        """One Scan call of at most `limit` items, the assignments among them."""
        condition = TariffItem.key.startswith(ASSIGNMENT_PREFIX)
        items, next_key = scan_page(TariffItem, limit, start, condition)
        assignments = []
        for item in items:
            charger_id, connector_id = item.key.removeprefix(ASSIGNMENT_PREFIX).rsplit("#", 1)
            assignments.append(TariffAssignment(item.tariff_id, charger_id, connector_id))
        return Page(assignments, next_key)
