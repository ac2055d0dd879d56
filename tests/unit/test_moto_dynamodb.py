"""moto's Query on a table's key reads only the partition once patched (chargenet_local.moto_dynamodb),
and answers exactly what DynamoDB answers (moto in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from chargenet_local import moto_dynamodb, moto_transactions

REGION = "us-east-1"
# Three partitions of 1, 7 and 25 items: a query must see only the one asked for.
PARTITIONS = {"charger-a": 1, "charger-b": 7, "charger-c": 25}


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto patched for this test only: other tests in the process keep moto as released."""
    monkeypatch.setattr(Table, "query", Table.query)
    monkeypatch.setattr(Table, "all_items", Table.all_items)
    for name in moto_transactions.PATCHED:
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))
    moto_dynamodb.apply()


@pytest.fixture
def table(patched: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        events = dynamodb.create_table(
            TableName="events",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "seq", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "seq", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        # Written out of order, so the order a query returns is its own.
        for pk, count in PARTITIONS.items():
            for seq in reversed(range(count)):
                events.put_item(Item={"pk": pk, "seq": seq, "kind": "meter" if seq % 3 else "status"})
        yield events


@pytest.fixture
def items_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many items each of moto's reads of a table went through."""
    read: list[int] = []
    all_items = Table.all_items

    def counted(self: Table) -> Any:
        items = all_items(self)
        read.append(len(items))
        return items

    monkeypatch.setattr(Table, "all_items", counted)
    return read


def _seqs(response: dict[str, Any]) -> list[int]:
    return [int(item["seq"]) for item in response["Items"]]


def test_a_query_reads_only_its_partition_and_a_scan_the_whole_table(
    table: Any, items_read: list[int]
) -> None:
    partition_b = table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "charger-b"})

    assert _seqs(partition_b) == list(range(7))
    assert items_read == [7]

    assert table.scan()["Count"] == sum(PARTITIONS.values())
    assert items_read[-1] == sum(PARTITIONS.values())


def test_a_partition_query_answers_as_dynamodb_does(table: Any) -> None:
    def query(**kwargs: Any) -> dict[str, Any]:
        return table.query(
            ExpressionAttributeValues={":p": "charger-c", **kwargs.pop("values", {})}, **kwargs
        )

    assert _seqs(query(KeyConditionExpression="pk = :p")) == list(range(25))
    assert _seqs(query(KeyConditionExpression="pk = :p", ScanIndexForward=False, Limit=3)) == [24, 23, 22]
    assert _seqs(
        query(KeyConditionExpression="pk = :p AND seq BETWEEN :a AND :b", values={":a": 5, ":b": 8})
    ) == [5, 6, 7, 8]
    filtered = query(
        KeyConditionExpression="pk = :p AND seq < :b",
        FilterExpression="kind = :k",
        values={":b": 10, ":k": "status"},
    )
    assert (_seqs(filtered), filtered["ScannedCount"]) == ([0, 3, 6, 9], 10)


def test_pages_follow_one_another_within_the_partition(table: Any) -> None:
    pages, start = [], {}
    while True:
        page = table.query(
            KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "charger-c"}, Limit=10, **start
        )
        pages.append(_seqs(page))
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]


def test_a_partition_that_does_not_exist_is_empty_and_stays_absent(table: Any) -> None:
    response = table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "nobody"})

    assert (response["Items"], response["Count"]) == ([], 0)
    assert table.scan()["Count"] == sum(PARTITIONS.values())


def test_applying_twice_patches_once(patched: None) -> None:
    once = Table.query, Table.all_items
    moto_dynamodb.apply()

    assert (Table.query, Table.all_items) == once
