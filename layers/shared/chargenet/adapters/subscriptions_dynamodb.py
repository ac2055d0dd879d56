"""DynamoDB adapters for subscriptions: plans, subscribers and invoice runs (one table), the
subscribers' tags in the tag directory, and the operator alert when a tag is blocked."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PutError

from chargenet.adapters.dynamodb import conditional_failed
from chargenet.adapters.tables import TableModel, table_meta
from chargenet.adapters.tags_tariffs_dynamodb import TagItem
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.models import TagStatus, mask_tag
from chargenet.domain.subscriptions import InvoiceRun, Plan, Subscriber
from chargenet.ports.subscriptions import OperatorAlerts, SubscriberStore, TagGate

PLAN, SUBSCRIBER, INVOICE = "plan", "subscriber", "invoice"


class SubscriptionItem(TableModel):
    """`plan#<id>`, `subscriber#<tag>`, `invoice#<tag>#<period>`: the domain object as JSON."""

    Meta = table_meta("subscribers")

    key = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    body = UnicodeAttribute()
    version = NumberAttribute(default=0)


def _saved(item: SubscriptionItem, condition: Any) -> bool:
    try:
        item.save(condition=condition)
    except PutError as error:
        if conditional_failed(error):
            return False
        raise
    return True


def _get(key: str) -> SubscriptionItem | None:
    try:
        return SubscriptionItem.get(key, consistent_read=True)
    except DoesNotExist:
        return None


def _scan(kind: str) -> list[SubscriptionItem]:
    return list(SubscriptionItem.scan(SubscriptionItem.kind == kind))


@raises_store_unavailable
class DynamoSubscriberStore(SubscriberStore):
    def plan(self, plan_id: str) -> Plan | None:
        item = _get(f"{PLAN}#{plan_id}")
        return Plan.model_validate_json(item.body) if item else None

    def save_plan(self, plan: Plan) -> None:
        SubscriptionItem(f"{PLAN}#{plan.plan_id}", kind=PLAN, body=plan.model_dump_json()).save()

    def plans(self) -> list[Plan]:
        return sorted((Plan.model_validate_json(i.body) for i in _scan(PLAN)), key=lambda p: p.plan_id)

    def get(self, id_tag: str) -> Subscriber | None:
        item = _get(f"{SUBSCRIBER}#{id_tag}")
        return Subscriber.model_validate_json(item.body) if item else None

    def create(self, subscriber: Subscriber) -> bool:
        return _saved(self._item(subscriber), SubscriptionItem.key.does_not_exist())

    def save(self, subscriber: Subscriber) -> bool:
        return _saved(self._item(subscriber), SubscriptionItem.version == subscriber.version - 1)

    def subscribers(self) -> list[Subscriber]:
        found = (Subscriber.model_validate_json(i.body) for i in _scan(SUBSCRIBER))
        return sorted(found, key=lambda s: s.id_tag)

    def invoice_run(self, id_tag: str, period: str) -> InvoiceRun | None:
        item = _get(f"{INVOICE}#{id_tag}#{period}")
        return InvoiceRun.model_validate_json(item.body) if item else None

    def invoice_runs(self, id_tag: str) -> list[InvoiceRun]:
        """The subscriber's invoices (operator views: a scan is fine at the CLI's pace)."""
        items = SubscriptionItem.scan(SubscriptionItem.key.startswith(f"{INVOICE}#{id_tag}#"))
        return sorted((InvoiceRun.model_validate_json(i.body) for i in items), key=lambda r: r.period)

    def save_invoice_run(self, run: InvoiceRun) -> None:
        SubscriptionItem(
            f"{INVOICE}#{run.id_tag}#{run.period}", kind=INVOICE, body=run.model_dump_json()
        ).save()

    @staticmethod
    def _item(subscriber: Subscriber) -> SubscriptionItem:
        return SubscriptionItem(
            f"{SUBSCRIBER}#{subscriber.id_tag}",
            kind=SUBSCRIBER,
            body=subscriber.model_dump_json(),
            version=subscriber.version,
        )


@raises_store_unavailable
class DynamoTagGate(TagGate):
    """Subscribers' tags, in the tag directory's table.

    Only the status is updated afterwards: the tag's running sessions (`active_sessions`) stay."""

    def register(self, id_tag: str, status: TagStatus) -> bool:
        item = TagItem(id_tag, status=status.value, max_concurrent_sessions=1)
        try:
            item.save(condition=TagItem.id_tag.does_not_exist())
        except PutError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def set_status(self, id_tag: str, status: TagStatus) -> None:
        TagItem(id_tag).update(actions=[TagItem.status.set(status.value)])


@raises_store_unavailable
class SnsSubscriberAlerts(OperatorAlerts):
    """Operator alerts through the AlertsTopic.

    An alert, not a fault: faults belong to chargers and connectors (episodes, uptime), a blocked
    subscriber to neither. The message attributes are the ones the alert inbox reads."""

    @cached_property
    def _sns(self) -> Any:
        import boto3

        return boto3.client("sns")

    def subscriber_blocked(self, subscriber: Subscriber) -> None:
        tag = mask_tag(subscriber.id_tag)
        self._sns.publish(
            TopicArn=os.environ["ALERTS_TOPIC_ARN"],
            Subject=f"Subscriber tag {tag} blocked: invoice unpaid"[:100],
            Message=(
                f"The tag {tag} of subscriber {subscriber.email} (plan {subscriber.plan_id}, Stripe "
                f"customer {subscriber.customer_id}) is blocked: an invoice has been unpaid since "
                f"{subscriber.past_due_since:%Y-%m-%d %H:%M} UTC and the grace period is over. "
                "Paying the invoice unblocks it (chargenet subscriber show TAG)."
            ),
            MessageAttributes={
                "severity": {"DataType": "String", "StringValue": "major"},
                "kind": {"DataType": "String", "StringValue": "subscriber_blocked"},
                "id_tag": {"DataType": "String", "StringValue": tag},
            },
        )
