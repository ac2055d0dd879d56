"""The sample events in events/ are what the handlers' models accept (sam local invoke -e ...)."""

import json
from pathlib import Path

import pytest

from chargenet.domain.models import PresenceEvent
from chargenet.services.ingest import IngestEvent

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize("path", sorted(EVENTS.glob("ocpp_ingest_*.json")), ids=lambda p: p.name)
def test_ingest_samples_parse(path):
    event = IngestEvent.model_validate(json.loads(path.read_text()))
    assert event.charger_id == event.client_id


@pytest.mark.parametrize("path", sorted(EVENTS.glob("presence_*.json")), ids=lambda p: p.name)
def test_presence_samples_parse(path):
    event = PresenceEvent.model_validate(json.loads(path.read_text()))
    assert event.event_type.value in path.name


def test_billing_sample_is_a_completed_session_stream_record_that_the_filter_passes():
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

    from chargenet_local.streams import matches

    raw = json.loads((EVENTS / "billing_session_completed.json").read_text())
    [record] = DynamoDBStreamEvent(raw).records
    assert record.dynamodb.keys["session_id"] == "42"
    assert matches({"dynamodb": {"NewImage": {"state": {"S": ["completed"]}}}}, raw["Records"][0])
    assert not matches({"dynamodb": {"NewImage": {"state": {"S": ["billed"]}}}}, raw["Records"][0])
