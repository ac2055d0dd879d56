"""Smoke tests of the benchmark scripts' pure parts (no timing assertions, no local stack)."""

import base64
import json
from pathlib import Path

import pytest

from bench import cold_start as cold_start_module
from bench import cost_counts as cost_counts_module
from bench import warm_path as warm_path_module


@pytest.fixture(scope="module")
def cost_counts():
    return cost_counts_module


@pytest.fixture(scope="module")
def cold_start():
    return cold_start_module


@pytest.fixture(scope="module")
def warm_path():
    return warm_path_module


def test_frame_and_event_labels(cost_counts):
    frame = json.dumps([2, "1", "Heartbeat", {}]).encode()
    assert cost_counts.frame_label(frame) == "ocpp:Heartbeat"
    assert cost_counts.frame_label(b'[3, "1", {}]') == "ocpp:CALLRESULT"
    assert cost_counts.frame_label(b"not json") == "ocpp:invalid"
    ingest = {"charger_id": "CP-1", "payload": base64.b64encode(frame).decode(), "received_at": 0}
    assert cost_counts.event_label(ingest) == "ocpp:Heartbeat"
    assert cost_counts.event_label({"eventType": "connected", "clientId": "CP-1"}) == "presence:connected"
    assert cost_counts.event_label({"Records": []}) == "stream"
    assert cost_counts.event_label({"source": "aws.events"}) == "schedule"
    assert cost_counts.event_label({"requestContext": {}}) == "api"


def test_units(cost_counts):
    assert [cost_counts.iot_units(n) for n in (0, 5120, 5121)] == [1, 1, 2]
    item = {"pk": {"S": "CP-001"}, "n": {"N": "12345"}, "ok": {"BOOL": True}, "m": {"M": {"a": {"S": "xy"}}}}
    # names 2+1+2+1, values 6 + 4 + 1 + (3 + 1 + 2 + 1)
    assert cost_counts.item_size(item) == 6 + 6 + 4 + 1 + 7
    assert cost_counts.write_units(1024) == 1 and cost_counts.write_units(1025) == 2
    assert cost_counts.write_units(10, transactional=True) == 2
    assert cost_counts.read_units(100, consistent=False) == 0.5
    assert cost_counts.read_units(4097, consistent=True) == 2.0


def test_profiles_from_a_tally(cost_counts):
    raw = {
        "frames": {
            "ocpp:Heartbeat": {"count": 4, "bytes": 100, "units": 4},
            "ocpp:StartTransaction": {"count": 2, "bytes": 200, "units": 2},
            "presence:connected": {"count": 2, "bytes": 200, "units": 2},
        },
        "rules": {"ocpp:Heartbeat": {"triggered": 4, "actions": 4}},
        "invocations": {
            "Ingest": {
                "ocpp:Heartbeat": {
                    "count": 4,
                    "failed": 0,
                    "duration_ms": [9.2, 10, 10, 10],
                    "requests": {"iot-data.Publish": 4},
                    "iot_publish_bytes": [50, 50, 50, 50],
                }
            },
            "Sweep": {
                "schedule": {
                    "count": 2,
                    "failed": 0,
                    "duration_ms": [100, 100],
                    "requests": {},
                    "iot_publish_bytes": [],
                }
            },
        },
        "dynamodb": {
            "Ingest|ocpp:Heartbeat": {"calls": 4, "rcu": 2.0, "wcu": 4.0},
            "Sweep|schedule": {"calls": 2, "rcu": 8.0, "wcu": 0.0},
        },
        "metrics": ["chargenet|Frames|service=x", "AWS/Lambda|Invocations|FunctionName=Ingest"],
    }
    functions = {
        "Ingest": {"memory_mb": 1024},
        "Sweep": {"memory_mb": 512, "schedule_every_s": 60},
        "__template__": {"alarms": 3, "secrets": 1},
    }
    run = {"chargers": 2, "sessions_billed": 2, "sessions_run": 2}
    profile = cost_counts.profiles(raw, run, functions)
    heartbeat = profile["per_frame"]["Heartbeat"]
    assert heartbeat["lambda_requests"] == 1
    assert heartbeat["lambda_gb_seconds"] == 0.01  # 10 ms billed at 1 GB
    assert heartbeat["iot_messages"] == 2  # the reply in and out
    assert heartbeat["dynamodb_write_units"] == 1 and heartbeat["dynamodb_read_units"] == 0.5
    assert profile["session_frames"]["StartTransaction"] == 1
    assert profile["scheduled"]["Sweep"]["runs_per_month"] == 43200
    assert profile["scheduled"]["Sweep"]["per_run"]["dynamodb_read_units"] == 2  # 8 / 2 runs / 2 chargers
    assert profile["custom_metrics"] == 1 and profile["alarms"] == 3
    from chargenet_cli.cost_model import Counts

    Counts.from_json({"profile": profile})  # what `chargenet cost` reads


def test_profiles_count_index_writes_logs_timed_writes_storage_and_keys(cost_counts):
    raw = {
        "frames": {"ocpp:MeterValues": {"count": 10, "bytes": 100, "units": 10}},
        "rules": {},
        "invocations": {
            "Ingest": {
                "ocpp:MeterValues": {
                    "count": 10,
                    "failed": 0,
                    "duration_ms": [1] * 10,
                    "requests": {},
                    "iot_publish_bytes": [],
                    "log_bytes": 3000,
                    "log_lines": 10,
                }
            }
        },
        "dynamodb": {
            "Ingest|ocpp:MeterValues": {"calls": 20, "rcu": 0.0, "wcu": 20.0, "index_wcu": 10.0},
            f"Ingest|{cost_counts.LAST_SEEN}": {"calls": 4, "rcu": 0.0, "wcu": 4.0, "index_wcu": 0.0},
        },
        "metrics": [],
        "storage": {
            "SessionEventsTable": {"items": 10, "bytes": 5000, "index_bytes": 0},
            "ChargersTable": {"items": 2, "bytes": 800, "index_bytes": 0},
            "IdempotencyTable": {"items": 10, "bytes": 3000, "index_bytes": 0},
        },
    }
    template = {
        "alarms": 0,
        "secrets": 0,
        "tracing_mode": "PassThrough",
        "tables": {
            "SessionEventsTable": {"ttl": True, "session_data_ttl": True},
            "ChargersTable": {"ttl": False, "session_data_ttl": False},
            "IdempotencyTable": {"ttl": True, "session_data_ttl": False},
        },
        "table_principals": {"Ingest": 3, "OperatorApi": 5},
    }
    functions = {"Ingest": {"memory_mb": 1024}, "__template__": template}
    profile = cost_counts.profiles(raw, {"chargers": 2, "sessions_billed": 1, "sessions_run": 1}, functions)
    meter = profile["per_frame"]["MeterValues"]
    # The last_seen writes are not the frame's: 2 table + 1 index write units per reading
    assert (meter["dynamodb_write_units"], meter["dynamodb_index_write_units"]) == (2, 1)
    assert (meter["log_bytes"], meter["log_lines"]) == (300, 1)
    assert profile["timed_writes"]["last_seen"] == {
        "every_s": 60,
        "write_units": 1.0,
        "index_write_units": 0.0,
    }
    assert profile["storage"] == {
        "ChargersTable": {"bytes_per_unit": 400.0, "driver": "charger", "retention": "kept"},
        "SessionEventsTable": {"bytes_per_unit": 500.0, "driver": "MeterValues", "retention": "session_data"},
    }  # the idempotency records expire within hours: no steady-state storage
    # Only functions the run invoked hold table keys all month: 3 tables x one request per 5 minutes
    assert profile["deployment"]["kms_requests_per_month"] == 3 * 30 * 86400 / 300
    assert profile["deployment"]["tracing_mode"] == "PassThrough"
    from chargenet_cli.cost_model import Counts

    counts = Counts.from_json({"profile": profile})
    assert counts.storage["SessionEventsTable"].driver == "MeterValues"


def test_index_writes_follow_dynamodbs_rules(cost_counts):
    shape = cost_counts.IndexShape(key_attributes=("state",), table_keys=("id",), projection="KEYS_ONLY")
    item = {"id": (10, "a"), "state": (10, "active"), "energy": (500, "1")}
    more_energy = {**item, "energy": (500, "2")}
    stopped = {**item, "state": (11, "stopped")}
    write = cost_counts.index_write_units
    assert write(None, shape.entry(item)) == 1  # an entry added
    assert write(shape.entry(item), None) == 1  # removed
    assert write(shape.entry(item), shape.entry(more_energy)) == 0  # nothing projected changed
    assert write(shape.entry(item), shape.entry(stopped)) == 2  # a new key: delete + put
    assert shape.entry({"id": (10, "a")}) is None  # sparse: no index key, no entry
    everything = cost_counts.IndexShape(key_attributes=("state",), table_keys=("id",), projection="ALL")
    assert write(everything.entry(item), everything.entry(more_energy)) == 1  # the copy changes too
    big = {**item, "energy": (2000, "3")}
    assert write(everything.entry(item), everything.entry(big)) == 2  # the larger of the two, in KB
    included = cost_counts.IndexShape(("state",), ("id",), "INCLUDE", included=("energy",))
    assert included.entry(item).size == 520


def test_reads_are_billed_on_items_evaluated(cost_counts):
    # 2 items of 1 KB returned, 18 more of ~1 KB scanned and filtered out: 20 KB, 5 units
    assert cost_counts.evaluated_read_units([1024, 1024], 20, 1024.0, consistent=True) == 5.0
    assert cost_counts.evaluated_read_units([1024, 1024], 2, 0.0, consistent=True) == 1.0
    assert cost_counts.evaluated_read_units([], 0, 0.0, consistent=False) == 0.5


def test_only_the_lone_last_seen_update_is_time_based(cost_counts):
    # As pynamodb sends record_seen: the condition's names share the placeholder map
    seen = {
        "UpdateExpression": "SET #0 = :0",
        "ConditionExpression": "(attribute_exists (#1) AND (attribute_not_exists (#0) OR #0 < :1))",
        "ExpressionAttributeNames": {"#0": "last_seen_at", "#1": "charger_id"},
    }
    assert cost_counts.is_last_seen_write("update_item", seen)
    assert not cost_counts.is_last_seen_write("put_item", seen)
    both = {
        "UpdateExpression": "SET #0 = :0, #1 = :1",
        "ExpressionAttributeNames": {"#0": "last_seen_at", "#1": "online"},
    }
    assert not cost_counts.is_last_seen_write("update_item", both)


def test_counting_stream_reports_and_passes_on(cost_counts):
    import io

    seen: list[str] = []
    inner = io.StringIO()
    stream = cost_counts.CountingStream(inner, seen.append)
    stream.write('{"level":"WARNING"}\n')
    assert seen == ['{"level":"WARNING"}\n'] and inner.getvalue() == seen[0]


def test_importtime_parsing(cold_start):
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      1500 |       1500 |   botocore.compat",
            "import time:       500 |       2000 | botocore",
            "import time:      3000 |       3000 | stripe",
            "something else",
        ]
    )
    packages = cold_start.parse_importtime(stderr)
    assert packages == {"botocore": 2.0, "stripe": 3.0}
    heavy = cold_start.heavy_imports(packages)
    assert cold_start.unneeded(heavy, "from chargenet.composition.payments import x") == []
    assert cold_start.unneeded(heavy, "import os") == ["stripe"]
    assert "importlib.import_module('app')" in cold_start.handler_body(Path("/x"), "app.lambda_handler")


def test_warm_path_runs_and_summarises(warm_path):
    measured = warm_path.run(cycles=1, meter_values=2)
    summary = warm_path.summarise(measured)
    assert set(summary) == set(warm_path.MESSAGE_TYPES)
    assert summary["MeterValues"]["messages"] == 2
    assert all(r["not_answered_with_callresult"] == 0 for r in summary.values())
