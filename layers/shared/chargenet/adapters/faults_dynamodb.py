"""DynamoDB adapter for fault records (with the alerts sent about each) and SNS for alerts."""

from __future__ import annotations

import json
import os
from functools import cached_property
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.transactions import TransactWrite

from chargenet.adapters.history_dynamodb import episode_item
from chargenet.adapters.tables import TableModel, dynamodb_connection, table_meta
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.alerts import AlertDecision, AlertKind, AlertRecord
from chargenet.domain.faults import Fault, FaultState
from chargenet.ports.faults import AlertPublisher, FaultStore

UNPUBLISHED_FLAG = '"published": false'  # as json.dumps writes it in the alerts attribute


class FaultsByCharger(GlobalSecondaryIndex["FaultItem"]):
    class Meta:
        index_name = "by-charger"
        projection = AllProjection()

    charger_id = UnicodeAttribute(hash_key=True)


class FaultItem(TableModel):
    Meta = table_meta("faults")
    by_charger = FaultsByCharger()

    fault_id = UnicodeAttribute(hash_key=True)
    charger_id = UnicodeAttribute()
    state = UnicodeAttribute()
    body = UnicodeAttribute()
    alerts = UnicodeAttribute(default="[]")

    def to_domain(self) -> tuple[Fault, list[AlertRecord]]:
        # No flag: published (see _alerts_json), as every alert stored before the flag existed was.
        return Fault.model_validate_json(self.body), [
            AlertRecord.model_validate({"published": True, **a}) for a in json.loads(self.alerts)
        ]


@raises_store_unavailable
class DynamoFaultStore(FaultStore):
    def get(self, fault_id: str) -> tuple[Fault, list[AlertRecord]] | None:
        try:
            return FaultItem.get(fault_id, consistent_read=True).to_domain()
        except DoesNotExist:
            return None

    def of_charger(self, charger_id: str) -> list[tuple[Fault, list[AlertRecord]]]:
        return [item.to_domain() for item in FaultItem.by_charger.query(charger_id)]

    def save(
        self, fault: Fault, alerts: list[AlertRecord], previous: tuple[Fault, list[AlertRecord]] | None
    ) -> bool:
        """Write unless someone changed the record since `previous` was read; False on that conflict."""
        item = FaultItem(
            fault.fault_id,
            charger_id=fault.charger_id,
            state=fault.state.value,
            body=fault.model_dump_json(),
            alerts=_alerts_json(alerts),
        )
        unchanged = (
            FaultItem.fault_id.does_not_exist()
            if previous is None
            else (FaultItem.body == previous[0].model_dump_json())
            & (FaultItem.alerts == _alerts_json(previous[1]))
        )
        try:
            # The episode's archive (HistoryTable) is written in the same transaction: saved
            # one after the other, a crash in between would lose the episode's final state,
            # as a retry finds the fault already resolved and saves nothing.
            with TransactWrite(connection=dynamodb_connection()) as transaction:
                transaction.save(item, condition=unchanged)
                transaction.save(episode_item(fault))
        except TransactWriteError as error:
            if _lost_race(error):
                return False
            raise
        return True

    def watched(self) -> list[tuple[Fault, list[AlertRecord]]]:
        # A scan: the table holds one item per (charger, connector, kind, code), bounded by the
        # fleet rather than by time, and the sweep reads it once a minute.
        flapping = FaultItem.alerts.contains(f'"kind": "{AlertKind.FLAPPING.value}"')
        unpublished = FaultItem.alerts.contains(UNPUBLISHED_FLAG)
        return [
            item.to_domain()
            for item in FaultItem.scan(
                (FaultItem.state != FaultState.RESOLVED.value) | flapping | unpublished
            )
        ]

    def list(self) -> list[Fault]:
        return sorted((item.to_domain()[0] for item in FaultItem.scan()), key=lambda f: f.first_seen)


def _lost_race(error: TransactWriteError) -> bool:
    """The fault changed since it was read, or a concurrent transaction is writing it."""
    if error.cause_response_code != "TransactionCanceledException":
        return False
    return any(
        reason is not None and reason.code in ("ConditionalCheckFailed", "TransactionConflict")
        for reason in error.cancellation_reasons
    )


def _alerts_json(alerts: list[AlertRecord]) -> str:
    """`published` is written only while False: an item stored before the flag existed then
    writes back exactly as read, as the conditional save compares the text."""
    return json.dumps(
        [a.model_dump(mode="json", exclude={"published"} if a.published else None) for a in alerts]
    )


@raises_store_unavailable
class SnsAlertPublisher(AlertPublisher):
    @cached_property
    def _sns(self) -> Any:
        import boto3  # only when the first alert goes out

        return boto3.client("sns")

    def publish(self, decision: AlertDecision) -> None:
        self._sns.publish(
            TopicArn=os.environ["ALERTS_TOPIC_ARN"],
            Subject=decision.subject[:100],  # SNS e-mail subject limit
            Message=decision.message,
            MessageAttributes={
                "severity": {"DataType": "String", "StringValue": decision.severity.value},
                "kind": {"DataType": "String", "StringValue": decision.kind.value},
                "fault_id": {"DataType": "String", "StringValue": decision.fault_id},
            },
        )
