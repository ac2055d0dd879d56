"""moto's TransactWriteItems once patched (chargenet_local.moto_transactions): all or nothing, the
reasons DynamoDB gives, and a cancelled one leaves the table (and its stream) as it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

from chargenet_local import moto_transactions

REGION = "us-east-1"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Patched for this test only: other tests in the process keep moto as released.
    for name in moto_transactions.PATCHED:
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))
    moto_transactions.apply()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        dynamodb.put_item(TableName="t", Item={"pk": {"S": "tag"}, "n": {"N": "1"}})
        yield dynamodb


def _put_new(pk: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": "t",
            "Item": {"pk": {"S": pk}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def _add_if_below(limit: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": "tag"}},
            "UpdateExpression": "ADD n :one",
            "ConditionExpression": "n < :limit",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": str(limit)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def test_a_transaction_writes_all_of_it_when_every_condition_holds(client: Any) -> None:
    client.transact_write_items(TransactItems=[_put_new("a"), _add_if_below(5)])
    assert "Item" in client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert client.get_item(TableName="t", Key={"pk": {"S": "tag"}})["Item"]["n"] == {"N": "2"}


def test_a_cancelled_transaction_writes_nothing_says_why_and_keeps_the_table_and_its_stream(
    client: Any,
) -> None:
    table = dynamodb_backends["123456789012"][REGION].tables["t"]
    with pytest.raises(client.exceptions.TransactionCanceledException) as cancelled:
        client.transact_write_items(TransactItems=[_put_new("b"), _add_if_below(1)])
    reasons = cancelled.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["n"] == {"N": "1"}  # ALL_OLD: the item as it was
    assert "Item" not in client.get_item(TableName="t", Key={"pk": {"S": "b"}})
    # The same table, not a copy put back: a stream reader's shard is still the table's.
    assert dynamodb_backends["123456789012"][REGION].tables["t"] is table
    client.put_item(TableName="t", Item={"pk": {"S": "after"}})
    assert table.stream_shard.items[-1].record["dynamodb"]["Keys"] == {"pk": {"S": "after"}}
