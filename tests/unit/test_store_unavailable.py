"""Infrastructure failures stay in the adapters: a port raises StoreUnavailable, which the ingest
lets fail the invocation (Lambda retries, then the dead-letter queue) instead of answering it."""

import ast
import base64
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from pynamodb.exceptions import GetError, PutError

from chargenet.adapters.sessions_dynamodb import DynamoSessionStore, SessionItem
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.ports.errors import StoreUnavailable, is_unavailable
from chargenet.services.ingest import IngestEvent
from tests.ingest_network import T0, Network
from tests.unit.fault_builders import session_record

LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared" / "chargenet"
THROTTLED = ClientError(
    {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "GetItem"
)
CONDITION_FAILED = ClientError(
    {"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}, "PutItem"
)


def test_an_adapter_raises_store_unavailable_chained_to_the_infrastructure_error():
    @raises_store_unavailable
    class Adapter:
        def read(self) -> None:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")

        def fails_otherwise(self) -> None:
            raise KeyError("not the store's")

    with pytest.raises(StoreUnavailable) as raised:
        Adapter().read()
    assert isinstance(raised.value.__cause__, EndpointConnectionError)
    with pytest.raises(KeyError):
        Adapter().fails_otherwise()


def test_a_store_that_throttles_is_unavailable_but_a_lost_condition_is_an_answer(monkeypatch):
    def throttled(*args, **kwargs):
        raise GetError("Failed to get item", cause=THROTTLED)

    def condition_failed(*args, **kwargs):
        raise PutError("Failed to put item", cause=CONDITION_FAILED)

    monkeypatch.setattr(SessionItem, "get", throttled)
    with pytest.raises(StoreUnavailable, match="GetError"):
        DynamoSessionStore().get("1")

    monkeypatch.setattr(SessionItem, "save", condition_failed)
    assert DynamoSessionStore().open(session_record(T0)) is False


def test_store_unavailable_is_the_one_retryable_failure_of_a_handler():
    assert is_unavailable(StoreUnavailable("throttled"))
    assert is_unavailable(TimeoutError("read timed out"))
    assert not is_unavailable(KeyError("a bug"))
    assert not is_unavailable(ValueError("bad input"))


def test_the_ingest_lets_store_unavailable_fail_the_invocation_unanswered():
    net = Network()

    def unavailable(*args):
        raise StoreUnavailable("ProvisionedThroughputExceededException")

    net.registry.record_boot = unavailable
    frame = json.dumps([2, "b1", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "M"}])
    event = IngestEvent(
        charger_id="CP-1",
        client_id="CP-1",
        payload=base64.b64encode(frame.encode()).decode(),
        received_at=int(T0.timestamp() * 1000),
    )
    with pytest.raises(StoreUnavailable):
        net.ingest.handle(event)
    assert net.channel.sent == []  # the retry answers


@pytest.mark.parametrize("package", ["domain", "ports", "services", "ocpp"])
def test_only_adapters_import_the_aws_clients(package):
    importers = []
    for path in (LAYER / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name.partition(".")[0] in {"boto3", "botocore", "pynamodb"} for name in names):
                importers.append(f"{path.relative_to(LAYER)}:{node.lineno}")
    assert importers == []
