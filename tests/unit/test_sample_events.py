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
