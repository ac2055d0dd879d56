"""The pure parts of bench/ingest_calls.py: the frames of a session, the events, the summaries."""

import base64
import json
from datetime import UTC, datetime, timedelta

from bench import ingest_calls

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
