import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from chargenet.services.ingest import IngestEvent, Outcome
from tests.ingest_network import Network

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 8, 0, 1, tzinfo=UTC)


@pytest.fixture
def world():
    net = Network(max_frame_bytes=4096, now=NOW)
    return net.ingest, net.registry, net.pending, net.channel, net.dedupe


def event(frame, charger_id="CP-1", at=T0, client_id="CP-1"):
    raw = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
    return IngestEvent(
        charger_id=charger_id,
        client_id=client_id,
        payload=base64.b64encode(raw).decode(),
        received_at=int(at.timestamp() * 1000),
    )


def replies(channel):
    return [json.loads(frame) for _, frame in channel.sent]


BOOT = [
    2,
    "b1",
    "BootNotification",
    {
        "chargePointVendor": "Acme",
        "chargePointModel": "AC22",
        "chargePointSerialNumber": "SN-1",
        "firmwareVersion": "1.2.3",
    },
]


def test_boot_notification_is_stored_and_accepted(world):
    ingest, registry, _, channel, _ = world
    assert ingest.handle(event(BOOT)) is Outcome.ANSWERED
    charger = registry.get("CP-1")
    assert (charger.vendor, charger.model, charger.serial_number, charger.firmware_version) == (
        "Acme",
        "AC22",
        "SN-1",
        "1.2.3",
    )
    assert charger.last_boot_at == T0
    assert replies(channel) == [
        [3, "b1", {"status": "Accepted", "currentTime": "2026-11-26T08:00:01.000Z", "interval": 300}]
    ]
    assert channel.sent[0][0] == "CP-1"


def test_heartbeat_answers_current_time(world):
    ingest, _, _, channel, _ = world
    ingest.handle(event([2, "h1", "Heartbeat", {}]))
    assert replies(channel) == [[3, "h1", {"currentTime": "2026-11-26T08:00:01.000Z"}]]


def test_status_notification_stores_connector_status_with_charger_time(world):
    ingest, registry, _, channel, _ = world
    charger_time = "2026-11-26T07:59:58Z"
    ingest.handle(
        event(
            [
                2,
                "s1",
                "StatusNotification",
                {
                    "connectorId": 2,
                    "errorCode": "GroundFailure",
                    "status": "Faulted",
                    "info": "RCD tripped",
                    "vendorErrorCode": "E42",
                    "timestamp": charger_time,
                },
            ]
        )
    )
    [status] = registry.connectors("CP-1")
    assert (status.connector_id, status.status, status.error_code, status.vendor_error_code, status.info) == (
        2,
        "Faulted",
        "GroundFailure",
        "E42",
        "RCD tripped",
    )
    assert status.status_at == datetime(2026, 11, 26, 7, 59, 58, tzinfo=UTC)
    assert status.received_at == T0
    assert replies(channel) == [[3, "s1", {}]]


def test_late_status_notification_does_not_overwrite_a_newer_one(world):
    ingest, registry, *_ = world
    newer = {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Available",
        "timestamp": "2026-11-26T08:00:00Z",
    }
    older = {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Charging",
        "timestamp": "2026-11-26T07:00:00Z",
    }
    ingest.handle(event([2, "s2", "StatusNotification", newer]))
    ingest.handle(event([2, "s1", "StatusNotification", older]))
    assert registry.connectors("CP-1")[0].status == "Available"


def test_status_without_timestamp_uses_receive_time(world):
    ingest, registry, *_ = world
    ingest.handle(
        event(
            [2, "s1", "StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}]
        )
    )
    assert registry.connectors("CP-1")[0].status_at == T0


def test_duplicate_frame_gets_the_same_reply_and_is_applied_once(world):
    ingest, registry, _, channel, dedupe = world
    ingest.handle(event(BOOT, at=T0))
    ingest.handle(event(BOOT, at=T0 + timedelta(seconds=5)))
    first, second = replies(channel)
    assert first == second
    assert dedupe.computed == 1
    assert registry.get("CP-1").last_boot_at == T0


def test_reused_message_id_with_new_payload_is_a_new_call(world):
    # Actions answered from the reply cache (the replay-safe ones bypass it: see the tests below).
    ingest, _, _, channel, dedupe = world
    ingest.handle(event([2, "1", "FirmwareStatusNotification", {"status": "Idle"}]))
    ingest.handle(event([2, "1", "DiagnosticsStatusNotification", {"status": "Idle"}]))
    assert dedupe.computed == 2
    assert replies(channel) == [[3, "1", {}], [3, "1", {}]]


def test_a_copy_of_an_authorize_is_answered_again_not_from_the_reply_cache(world):
    # A read: no cache record (a conditional put and an update) to answer a copy the same.
    ingest, _, _, channel, dedupe = world
    authorize = [2, "a1", "Authorize", {"idTag": "TAG-OK"}]
    ingest.handle(event(authorize))
    ingest.handle(event(authorize, at=T0 + timedelta(seconds=5)))
    assert dedupe.computed == 0
    first, second = replies(channel)
    assert first == second == [3, "a1", {"idTagInfo": {"status": "Accepted"}}]


def test_duplicate_in_flight_is_not_answered_twice(world):
    ingest, _, _, channel, dedupe = world
    frame = json.dumps([2, "h1", "DiagnosticsStatusNotification", {"status": "Idle"}]).encode()
    dedupe.in_flight.add("CP-1#h1#" + hashlib.sha256(frame).hexdigest()[:32])
    assert ingest.handle(event(frame)) is Outcome.DUPLICATE_IN_FLIGHT
    assert channel.sent == []


# DataTransfer is handled (vendor "chargenet"; any other vendor is answered UnknownVendorId).
@pytest.mark.parametrize("action", ["LogStatusNotification", "GetInstalledCertificateIds"])
def test_actions_not_built_yet_answer_not_implemented(world, action):
    ingest, _, _, channel, _ = world
    payloads = {"LogStatusNotification": {"status": "Idle"}, "GetInstalledCertificateIds": {}}
    assert ingest.handle(event([2, "x1", action, payloads[action]])) is Outcome.REFUSED
    [[kind, message_id, code, *_]] = replies(channel)
    assert (kind, message_id, code) == (4, "x1", "NotImplemented")


def test_schema_violation_is_refused_and_changes_nothing(world):
    ingest, registry, _, channel, _ = world
    ingest.handle(event([2, "b1", "BootNotification", {"chargePointVendor": "Acme"}]))
    assert replies(channel)[0][:3] == [4, "b1", "OccurenceConstraintViolation"]
    assert registry.get("CP-1").vendor is None


def test_schema_valid_but_impossible_timestamp_is_refused(world):
    ingest, registry, _, channel, _ = world
    ingest.handle(
        event(
            [
                2,
                "s1",
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "yesterday"},
            ]
        )
    )
    assert replies(channel)[0][:3] == [4, "s1", "PropertyConstraintViolation"]
    assert registry.connectors("CP-1") == []


def test_malformed_json_is_answered_with_message_id_minus_one(world):
    ingest, _, _, channel, _ = world
    assert ingest.handle(event(b"[2, 'oops'")) is Outcome.REFUSED
    assert replies(channel)[0][:3] == [4, "-1", "FormationViolation"]


def test_oversized_frame_is_refused(world):
    ingest, _, _, channel, _ = world
    big = [2, "d1", "DataTransfer", {"vendorId": "acme", "data": "x" * 5000}]
    assert ingest.handle(event(big)) is Outcome.REFUSED
    assert replies(channel)[0][:3] == [4, "d1", "GenericError"]


def test_payload_that_is_not_base64_is_refused_not_crashed(world):
    ingest, _, _, channel, _ = world
    bad = IngestEvent(charger_id="CP-1", payload="%%%not-base64", received_at=0)
    assert ingest.handle(bad) is Outcome.REFUSED
    assert replies(channel)[0][:2] == [4, "-1"]


def test_unknown_charger_is_rejected_without_reply_or_write(world):
    ingest, registry, _, channel, _ = world
    assert ingest.handle(event(BOOT, charger_id="CP-404", client_id="CP-404")) is Outcome.UNKNOWN_CHARGER
    assert channel.sent == []
    assert registry.get("CP-404") is None


def test_client_id_other_than_topic_charger_is_rejected(world):
    ingest, registry, _, channel, _ = world
    assert ingest.handle(event(BOOT, client_id="CP-2")) is Outcome.CLIENT_MISMATCH
    assert channel.sent == []
    assert registry.get("CP-1").vendor is None


def test_any_frame_marks_the_charger_seen_but_writes_at_most_once_half_a_heartbeat_interval(world):
    ingest, registry, *_ = world  # heartbeats every 300 s: a write at most every 150 s
    for seconds in (0, 10, 70, 149, 150):
        ingest.handle(event([2, f"h{seconds}", "Heartbeat", {}], at=T0 + timedelta(seconds=seconds)))
    assert registry.seen_writes == 2
    assert registry.get("CP-1").last_seen_at == T0 + timedelta(seconds=150)


def test_call_result_resolves_the_pending_call_once(world):
    ingest, _, pending, channel, _ = world
    pending.add("CP-1", "r1", "Reset", {"type": "Soft"}, T0)
    assert ingest.handle(event([3, "r1", {"status": "Accepted"}])) is Outcome.RESULT_MATCHED
    assert pending.calls[("CP-1", "r1")]["outcome"] == {"result": {"status": "Accepted"}}
    ingest.handle(event([3, "r1", {"status": "Rejected"}]))
    assert pending.calls[("CP-1", "r1")]["outcome"] == {"result": {"status": "Accepted"}}
    assert channel.sent == []  # results are never answered


def test_invalid_call_result_is_recorded_as_invalid(world):
    ingest, _, pending, *_ = world
    pending.add("CP-1", "r2", "Reset", {"type": "Hard"}, T0)
    ingest.handle(event([3, "r2", {"status": "Maybe"}]))
    assert "status" in pending.calls[("CP-1", "r2")]["outcome"]["invalid"]


def test_call_error_from_charger_is_recorded(world):
    ingest, _, pending, *_ = world
    pending.add("CP-1", "r3", "Reset", {"type": "Hard"}, T0)
    ingest.handle(event([4, "r3", "NotSupported", "no", {}]))
    assert pending.calls[("CP-1", "r3")]["outcome"] == {
        "error": {"code": "NotSupported", "description": "no"}
    }


def test_result_for_unknown_call_is_reported_unmatched(world):
    ingest, _, _, channel, _ = world
    assert ingest.handle(event([3, "nope", {}])) is Outcome.RESULT_UNMATCHED
    assert channel.sent == []


def test_charger_id_must_be_a_safe_topic_level():
    with pytest.raises(ValueError):
        IngestEvent(charger_id="CP/../x", payload="", received_at=0)
