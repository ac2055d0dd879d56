"""The pure parts of bench/ingest_calls.py: the frames of a session, the events, the summaries."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import ValidationError
from ocpp.messages import MessageType, get_validator

from bench import ingest_calls
from chargenet.ocpp.versions import OcppVersion
from chargenet.services.ingest import IngestEvent

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_a_session_is_one_frame_a_minute_with_its_readings_numbered():
    frames = ingest_calls.session_frames(readings=3, start=START, meter_start_wh=1000)

    assert [f.action for f in frames] == [
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "StatusNotification",
        "MeterValues",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
        "StatusNotification",
        "StatusNotification",
    ]
    assert [f.at for f in frames] == [START + timedelta(minutes=k) for k in range(10)]
    assert [f.reading for f in frames if f.action == "MeterValues"] == [1, 2, 3]
    registers = [f.payload["meterValue"][0]["sampledValue"][0]["value"] for f in frames if f.reading]
    assert registers == ["1150", "1300", "1450"]
    assert frames[7].payload["meterStop"] == 1550


def test_the_rule_event_carries_the_transaction_id_the_start_was_given():
    reading = ingest_calls.session_frames(readings=1, start=START, meter_start_wh=0)[4]

    event = ingest_calls.ingest_event("CP-9", "m7", reading, transaction_id=42)

    message_type, message_id, action, payload = json.loads(base64.b64decode(event["payload"]))
    assert (message_type, message_id, action) == (2, "m7", "MeterValues")
    assert payload["transactionId"] == 42
    assert event["received_at"] == int(reading.at.timestamp() * 1000)
    assert event["charger_id"] == event["client_id"] == "CP-9"
    authorize = ingest_calls.session_frames(readings=1, start=START, meter_start_wh=0)[1]
    assert "transactionId" not in ingest_calls.with_transaction(authorize, 42)


def _frame(action, operations, session="s", reading=None, wcu=1.0, rcu=0.5, cpu_us=100.0, warm_up=False):
    writes, reads = ingest_calls.split_calls(operations)
    return {
        "session": session,
        "action": action,
        "reading": reading,
        "warm_up": warm_up,
        "operations": operations,
        "write_calls": writes,
        "read_calls": reads,
        "wcu": wcu,
        "rcu": rcu,
        "cpu_us": cpu_us,
        "baseline_cpu_us": 50.0,
    }


def test_calls_split_into_writes_and_reads():
    assert ingest_calls.split_calls({"GetItem": 2, "Query": 1, "PutItem": 1, "UpdateItem": 3}) == (4, 3)
    assert ingest_calls.split_calls({"TransactWriteItems": 1, "BatchGetItem": 1}) == (1, 1)


def test_medians_per_type_and_readings_at_marks():
    frames = [
        _frame("MeterValues", {"PutItem": 1, "UpdateItem": 1}, reading=1, cpu_us=100),
        _frame("MeterValues", {"PutItem": 1, "UpdateItem": 2, "Query": 1}, reading=2, rcu=3.0, cpu_us=300),
        _frame("MeterValues", {"PutItem": 1, "UpdateItem": 3, "Query": 1}, reading=3, rcu=5.0, cpu_us=500),
        _frame("Heartbeat", {"UpdateItem": 1}),
    ]

    per_type = ingest_calls.median_per_type(frames)

    assert list(per_type) == ["Heartbeat", "MeterValues"]
    assert per_type["MeterValues"]["calls"] == 4
    assert per_type["MeterValues"]["write_calls"] == 3
    assert per_type["MeterValues"]["rcu"] == 3.0
    assert per_type["MeterValues"]["operations"] == {"PutItem": 1, "Query": 1, "UpdateItem": 2}
    marks = ingest_calls.readings_at(frames, "s", [1, 3, 45])
    assert list(marks) == ["1", "3"]
    assert marks["3"]["rcu"] == 5.0 and marks["3"]["cpu_us"] == 500


def test_cpu_ratio_leaves_the_warm_up_out_and_the_table_shows_every_label():
    frames = [
        _frame("MeterValues", {"PutItem": 1}, reading=1, cpu_us=10_000, warm_up=True),
        _frame("MeterValues", {"PutItem": 1}, reading=1, cpu_us=200),
        _frame("MeterValues", {"PutItem": 1}, reading=2, cpu_us=400),
    ]

    ratios = ingest_calls.cpu_ratios(frames, ["MeterValues", "StartTransaction"])

    assert list(ratios) == ["MeterValues"]
    assert ratios["MeterValues"]["frames"] == 2
    assert ratios["MeterValues"]["ratio"] == 6.0  # median 300 µs over 50 µs
    run = {
        "code": "/x",
        "per_type": ingest_calls.median_per_type(frames),
        "readings": {"s": ingest_calls.readings_at(frames, "s", [1])},
        "cpu": ratios,
    }
    table = ingest_calls.markdown({"runs": {"before": run, "after": run}})
    assert "### before" in table and "### after" in table
    assert "| MeterValues | 3 | 1 | 1 | 0 |" in table


# ------------------------------------------------------------------ the 2.0.1 mode
def _session_201(readings=3, evse=2):
    return ingest_calls.session_frames_201(
        readings=readings, start=START, meter_start_wh=1000, evse_id=evse, transaction_id="TX-7"
    )


def test_every_201_frame_and_the_boot_are_valid_against_the_ocpp_packages_201_schemas():
    frames = [
        ingest_calls.Frame("BootNotification", ingest_calls.boot_payload("2.0.1"), START),
        ingest_calls.Frame("Heartbeat", {}, START),
        *_session_201(),
    ]
    for frame in frames:
        get_validator(MessageType.Call, frame.action, "2.0.1").validate(frame.payload)
    with pytest.raises(ValidationError):  # the check can fail: a 1.6 boot is no 2.0.1 one
        get_validator(MessageType.Call, "BootNotification", "2.0.1").validate(
            ingest_calls.boot_payload("1.6")
        )


def test_a_201_session_is_one_frame_a_minute_numbered_from_seq_no_0_on_its_evse():
    frames = _session_201(readings=3, evse=2)

    assert [f.kind for f in frames] == [
        "StatusNotification",
        "Authorize",
        ingest_calls.STARTED,
        ingest_calls.STATE_UPDATED,
        ingest_calls.UPDATED,
        ingest_calls.UPDATED,
        ingest_calls.UPDATED,
        ingest_calls.ENDED,
        "StatusNotification",
    ]
    assert [f.at for f in frames] == [START + timedelta(minutes=k) for k in range(9)]
    events = [f.payload for f in frames if f.action == "TransactionEvent"]
    assert [e["seqNo"] for e in events] == [0, 1, 2, 3, 4, 5]
    assert [e["eventType"] for e in events] == [
        "Started",
        "Updated",
        "Updated",
        "Updated",
        "Updated",
        "Ended",
    ]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {"TX-7"}
    assert [e["triggerReason"] for e in events] == ["Authorized", "ChargingStateChanged"] + [
        "MeterValuePeriodic"
    ] * 3 + ["EVDeparted"]
    registers = [
        (e["meterValue"][0]["sampledValue"][0]["value"], e["meterValue"][0]["sampledValue"][0]["context"])
        for e in events
        if "meterValue" in e
    ]
    assert registers == [
        (1000, "Transaction.Begin"),
        (1150, "Sample.Periodic"),
        (1300, "Sample.Periodic"),
        (1450, "Sample.Periodic"),
        (1550, "Transaction.End"),
    ]
    assert [f.reading for f in frames if f.kind == ingest_calls.UPDATED] == [1, 2, 3]
    assert events[0]["evse"] == {"id": 2, "connectorId": 1}
    assert [f.payload["evseId"] for f in frames if f.action == "StatusNotification"] == [2, 2]
    assert [f.payload["connectorStatus"] for f in frames if f.action == "StatusNotification"] == [
        "Occupied",
        "Available",
    ]


def test_the_201_rule_event_names_its_version_and_keeps_the_stations_own_transaction_id():
    updated = _session_201()[4]

    event = ingest_calls.ingest_event("CP-9", "m7", updated, transaction_id=42, ocpp="2.0.1")

    parsed = IngestEvent.model_validate(event)
    assert parsed.ocpp_version is OcppVersion.V201
    message_type, message_id, action, payload = json.loads(base64.b64decode(parsed.payload))
    assert (message_type, message_id, action) == (2, "m7", "TransactionEvent")
    assert payload == updated.payload and "transactionId" not in payload
    assert (
        IngestEvent.model_validate(
            ingest_calls.ingest_event("CP-9", "m8", updated, transaction_id=42)
        ).ocpp_version
        is OcppVersion.V16
    )


def test_a_periodic_updated_answered_with_the_running_cost_counts_as_a_priced_one():
    updated, state_change = _session_201()[4], _session_201()[3]

    assert ingest_calls.reported_kind(updated, {"totalCost": 1.31}) == ingest_calls.PRICED_UPDATED
    assert ingest_calls.reported_kind(updated, {}) == ingest_calls.UPDATED
    assert ingest_calls.reported_kind(state_change, {"totalCost": 1.31}) == ingest_calls.STATE_UPDATED


def test_a_201_run_measures_each_length_with_and_without_a_tariff_and_shows_first_45th_and_last():
    planned = ingest_calls.sessions_201([45, 600], cpu_sessions=2, cpu_readings=5)

    assert planned[0][0] == "warm-up" and planned[0][1] > 4  # reaches the first priced Updated
    assert planned[1:5] == [
        ("45 readings, priced", 45, ingest_calls.PRICED_EVSE),
        ("45 readings, no tariff", 45, ingest_calls.UNPRICED_EVSE),
        ("600 readings, priced", 600, ingest_calls.PRICED_EVSE),
        ("600 readings, no tariff", 600, ingest_calls.UNPRICED_EVSE),
    ]
    assert [name for name, _, _ in planned[5:]] == ["cpu 1", "cpu 2"]
    priced = [_frame(ingest_calls.PRICED_UPDATED, {"Query": 2}, reading=n) for n in (4, 9, 44, 49, 599)]
    assert ingest_calls.first_45th_and_last(priced, "s", ingest_calls.PRICED_UPDATED) == [4, 44, 599]
    assert ingest_calls.first_45th_and_last(priced, "s", ingest_calls.UPDATED) == []
