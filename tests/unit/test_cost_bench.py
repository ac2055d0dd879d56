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
