"""moto behind waitress (chargenet_local.moto_server): SDK calls reuse their connection, and a kept-alive
connection holds up neither a snapshot's pause nor a shutdown. Real sockets on 127.0.0.1, moto's own
application in this process."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chargenet_local.moto_server import MotoServer, moto_application
from chargenet_local.persistence import RequestGate

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ConnectionsSeen:
    """moto's application, noting the client port of every request: one port, one connection."""

    def __init__(self) -> None:
        self.ports: list[str] = []
        self._moto: Wsgi = moto_application()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.ports.append(str(environ["REMOTE_PORT"]))
        return self._moto(environ, start_response)


@pytest.fixture
def seen() -> ConnectionsSeen:
    return ConnectionsSeen()


@pytest.fixture
def gate() -> RequestGate:
    return RequestGate()


@pytest.fixture
def server(gate: RequestGate, seen: ConnectionsSeen) -> Iterator[MotoServer]:
    served = MotoServer(gate, application=seen)
    served.start()
    yield served
    served.stop()


def client(server: MotoServer, service: str, pool: int = 10) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(max_pool_connections=pool, retries={"max_attempts": 1}),
    )


def new_table(dynamodb: Any) -> str:
    name = f"keepalive-{uuid.uuid4().hex[:8]}"  # moto's backends are this process's, shared by tests
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def test_sequential_sdk_calls_reuse_one_connection(server: MotoServer, seen: ConnectionsSeen) -> None:
    dynamodb = client(server, "dynamodb")
    table = new_table(dynamodb)
    for n in range(20):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"k{n}"}, "n": {"N": str(n)}})
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "k7"}})["Item"]

    assert item["n"] == {"N": "7"}
    assert len(seen.ports) == 22
    assert len(set(seen.ports)) == 1


def test_heads_errors_and_s3_metadata_answer_as_s3_does_on_one_connection(
    server: MotoServer, seen: ConnectionsSeen
) -> None:
    s3 = client(server, "s3")
    bucket = f"keepalive-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="absent")  # 404 without a body
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as no_bucket:
        s3.get_object(Bucket=f"{bucket}-absent", Key="x")  # an error with an XML body
    assert no_bucket.value.response["Error"]["Code"] == "NoSuchBucket"
    s3.put_object(Bucket=bucket, Key="firmware.bin", Body=b"\x00" * 70_000, Metadata={"key-id": "k1"})
    stored = s3.get_object(Bucket=bucket, Key="firmware.bin")

    assert stored["Body"].read() == b"\x00" * 70_000
    assert stored["Metadata"] == {"key-id": "k1"}
    assert len(set(seen.ports)) == 1


def test_concurrent_clients_each_keep_their_connections(server: MotoServer, seen: ConnectionsSeen) -> None:
    dynamodb = client(server, "dynamodb", pool=4)
    table = new_table(dynamodb)
    failures: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for n in range(15):
                dynamodb.put_item(TableName=table, Item={"pk": {"S": f"w{worker}-{n}"}})
        except BaseException as failure:  # noted, asserted below
            failures.append(failure)

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert failures == []
    assert dynamodb.scan(TableName=table, Select="COUNT")["Count"] == 60
    assert len(seen.ports) == 62
    assert len(set(seen.ports)) <= 4  # botocore's pool of 4, each connection reused


def test_an_idle_kept_alive_connection_holds_up_neither_a_snapshot_nor_a_shutdown(gate: RequestGate) -> None:
    server = MotoServer(gate)
    server.start()
    dynamodb = client(server, "dynamodb")
    new_table(dynamodb)  # the client's connection now stays open, idle
    paused = threading.Event()

    def snapshot() -> None:
        with gate.paused():
            paused.set()

    threading.Thread(target=snapshot, daemon=True).start()
    assert paused.wait(2)

    stopping = threading.Thread(target=server.stop, daemon=True)
    stopping.start()
    stopping.join(10)
    assert not stopping.is_alive()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", server.port), 2):
        pass
