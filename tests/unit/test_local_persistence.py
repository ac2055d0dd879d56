"""The local stack's snapshots (chargenet_local.persistence), its stream positions and `reset`."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chargenet_local.persistence import PortBook, RequestGate, dumps, write_atomically, writes
from chargenet_local.stack import NotAStackHome, reset
from chargenet_local.streams import StreamPoller
from chargenet_local.template import StreamMappingSpec


@pytest.mark.parametrize(
    ("environ", "changes"),
    [
        ({"REQUEST_METHOD": "GET", "PATH_INFO": "/things"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Query"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem"}, True),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "AmazonSQS.DeleteMessage"}, True),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/service/X/operation/GetMetricData"}, False),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/service/X/operation/PutMetricData"}, True),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/"}, True),  # query protocol: the action is in the body
        ({"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/key"}, True),
    ],
)
def test_only_requests_that_can_change_moto_make_it_dirty(environ: dict[str, Any], changes: bool) -> None:
    assert writes(environ) is changes


def test_a_snapshot_waits_for_running_requests_and_holds_new_ones() -> None:
    gate = RequestGate()
    order: list[str] = []
    running, release = threading.Event(), threading.Event()

    def slow_request() -> None:
        with gate.request(writes=True):
            running.set()
            release.wait(5)
            order.append("first request done")

    def later_request() -> None:
        with gate.request(writes=False):
            order.append("later request")

    first = threading.Thread(target=slow_request)
    first.start()
    running.wait(5)

    def snapshot() -> None:
        with gate.paused():
            order.append("snapshot")
            time.sleep(0.2)  # a later request arriving now must wait for it

    snapshotting = threading.Thread(target=snapshot)
    snapshotting.start()
    time.sleep(0.1)
    later = threading.Thread(target=later_request)
    later.start()
    time.sleep(0.05)
    release.set()
    for thread in (first, snapshotting, later):
        thread.join(5)

    assert order == ["first request done", "snapshot", "later request"]
    assert gate.dirty  # the write was noted; the snapshotter clears it


def test_locks_conditions_and_cognito_keys_pickle_as_new_ones() -> None:
    from moto.cognitoidp.models import jwk

    lock, condition = threading.Lock(), threading.Condition()
    lock.acquire()  # held while pickled: comes back free
    key = jwk.RSAKey.generate_key(2048)
    value = {"lock": lock, "rlock": threading.RLock(), "condition": condition, "key": key, "data": [1, "x"]}

    restored = pickle.loads(dumps(value))

    assert restored["data"] == [1, "x"]
    assert restored["lock"].acquire(blocking=False)
    with restored["rlock"], restored["condition"]:
        pass
    assert restored["key"].as_dict(private=True) == key.as_dict(private=True)


def test_a_snapshot_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "moto.pickle"
    write_atomically(path, b"first")
    write_atomically(path, b"second")

    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["moto.pickle"]
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_ports_stay_the_same_across_restarts_unless_taken(tmp_path: Path) -> None:
    first = PortBook(tmp_path).take("mqtt")
    assert PortBook(tmp_path).take("mqtt") == first
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", first))
        squatter.listen()
        moved = PortBook(tmp_path).take("mqtt")
    assert moved != first
    assert PortBook(tmp_path).take("mqtt") == moved


class FakeStreams:
    """moto's stream API for one shard: sequence numbers 1..n, iterators as 'after:<n>'."""

    def __init__(self, records: int) -> None:
        self.records = [
            {"eventName": "INSERT", "dynamodb": {"SequenceNumber": str(n)}} for n in range(1, records + 1)
        ]
        self.iterator_requests: list[dict[str, Any]] = []

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:  # boto3's parameter names
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **request: Any) -> dict[str, str]:
        self.iterator_requests.append(request)
        after = request.get("SequenceNumber", "0")
        return {"ShardIterator": f"after:{after}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        after = int(ShardIterator.split(":")[1])
        batch = [r for r in self.records if int(r["dynamodb"]["SequenceNumber"]) > after][:Limit]
        last = batch[-1]["dynamodb"]["SequenceNumber"] if batch else str(after)
        return {"Records": batch, "NextShardIterator": f"after:{last}"}


def poller(
    streams: FakeStreams, delivered: list[str], positions: dict[str, str] | None = None
) -> StreamPoller:
    spec = StreamMappingSpec(
        name="Billing",
        table="SessionsTable",
        function="BillingFunction",
        batch_size=2,
        filter_patterns=[],
        max_retries=0,
        reports_item_failures=False,
        on_failure_queue=None,
    )
    return StreamPoller(
        spec,
        streams=streams,
        stream_arn="arn:stream",
        invoke=lambda event: delivered.extend(r["dynamodb"]["SequenceNumber"] for r in event["Records"]),
        on_failure=lambda batch: None,
        positions=positions,
    )


def test_a_restarted_poller_goes_on_after_the_last_record_it_handled() -> None:
    streams, delivered = FakeStreams(records=5), list[str]()
    first = poller(streams, delivered)
    assert first._poll_shard("shard-1") == 5
    assert delivered == ["1", "2", "3", "4", "5"]
    assert first._poll_shard("shard-1") == 0  # nothing new: the poller backs off
    assert first.positions() == {"shard-1": "5"}

    streams.records += [{"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "6"}}]
    redelivered: list[str] = []
    poller(streams, redelivered, first.positions())._poll_shard("shard-1")

    assert redelivered == ["6"]
    assert streams.iterator_requests[-1]["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert streams.iterator_requests[0]["ShardIteratorType"] == "TRIM_HORIZON"


def test_reset_wipes_a_stack_home_but_its_ports_and_refuses_any_other_folder(tmp_path: Path) -> None:
    home = tmp_path / "stack"
    (home / "state").mkdir(parents=True)
    (home / "state" / "moto.pickle").write_bytes(b"x")
    (home / "first-admin-password").write_text("secret")
    (home / "ca").mkdir()
    (home / "ca" / "ca.pem").write_text("pem")
    (home / "state" / "ports.json").write_text("{}")
    other = tmp_path / "documents"
    other.mkdir()
    (other / "thesis.txt").write_text("keep me")

    assert reset(home) is True
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == ["state", "state/ports.json"]
    with pytest.raises(NotAStackHome):
        reset(other)
    assert (other / "thesis.txt").read_text() == "keep me"


def test_the_local_stack_keeps_fifteen_minutes_of_metrics() -> None:
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from chargenet_local.metrics import METRICS_KEPT_S, trim_metrics

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    old_naive = SimpleNamespace(timestamp=(now - timedelta(seconds=METRICS_KEPT_S + 1)).replace(tzinfo=None))
    recent_naive = SimpleNamespace(timestamp=(now - timedelta(seconds=60)).replace(tzinfo=None))
    recent_aware = SimpleNamespace(timestamp=now - timedelta(seconds=METRICS_KEPT_S - 1))
    backend = SimpleNamespace(metric_data=[old_naive, recent_naive, recent_aware])

    assert trim_metrics(backend, now) == 1
    assert backend.metric_data == [recent_naive, recent_aware]


def test_handled_stream_records_are_dropped_and_the_rest_keep_their_numbers() -> None:
    import boto3
    from moto import mock_aws
    from moto.dynamodb.models import dynamodb_backends

    from chargenet_local.streams import trim_handled

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        stream = dynamodb.create_table(
            TableName="T",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]["LatestStreamArn"]
        for n in range(5):
            dynamodb.put_item(TableName="T", Item={"pk": {"S": f"k{n}"}})
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
        records = streams.get_records(
            ShardIterator=streams.get_shard_iterator(
                StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        )["Records"]
        handled = records[2]["dynamodb"]["SequenceNumber"]

        table = dynamodb_backends["123456789012"]["us-east-1"].get_table("T")
        assert trim_handled(table, int(handled)) == 3
        dynamodb.put_item(TableName="T", Item={"pk": {"S": "k5"}})
        after = streams.get_records(
            ShardIterator=streams.get_shard_iterator(
                StreamArn=stream,
                ShardId=shard,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=handled,
            )["ShardIterator"]
        )["Records"]

    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert [r["dynamodb"]["SequenceNumber"] for r in after] == [*numbers[3:], str(int(numbers[-1]) + 1)]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in after] == ["k3", "k4", "k5"]
