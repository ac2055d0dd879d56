"""Ingest benchmark: DynamoDB calls and capacity units per OCPP frame, through the real handler.

Every frame goes through `functions/ocpp_ingest/app.py:lambda_handler` called in this process
(Powertools, pydantic, pynamodb and boto3 included) against a moto server started here, with
the tables, topics and policy of template.yaml created as the local stack creates them
(`chargenet_local.aws_resources.create_all`, moto patched by `chargenet_local.moto_dynamodb`)
and IoT Data replies published to the same moto endpoint. Nothing in the product is changed:

* calls: a wrapper on botocore's `BaseClient._make_api_call` counts every DynamoDB operation
  (GetItem, PutItem, UpdateItem, Query, Scan, Batch*, Transact*) and IoT Data Publish of a frame;
* units: moto answers a fixed ConsumedCapacity, so moto's DynamoDB handler is wrapped by
  `bench.cost_counts` (the same accounting as `chargenet cost`: ceil(KB) per written item,
  ceil(size / 4 KB) per read, halved when eventually consistent, doubled in transactions); a
  frame's units are what that tally gained while the handler ran;
* CPU: `time.thread_time_ns` of the handler call (the moto server answers on its own threads
  of this process, so process time would count the server too), and right after each frame
  the baseline: a bare boto3 `get_item` of the charger's record against the same endpoint.

Sessions run at real-time spacing of the charger's clock: the frames of a session carry
timestamps (and the rule's `received_at`) a minute apart, ending about now, so nothing sleeps.
The readings' cost is reported at the 1st, 45th and last reading of a 45- and a 600-reading
session (flat when the work per frame does not grow with the session), with per-type medians.

The code measured is the `chargenet` package Python imports (and its checkout's handler and
template.yaml): run with PYTHONPATH set to another checkout's layers/shared, functions/ocpp_ingest
and root to measure that one (`--label before`); results of other labels in the file are kept.

`--ocpp 2.0.1` runs the same charger as an OCPP 2.0.1 station (events on the 2.0.1 rule,
`ocpp_version` "ocpp2.0.1"): StatusNotification Occupied, Authorize, TransactionEvent Started
(the Transaction.Begin register), an Updated for the chargingState change, an Updated every
minute (MeterValuePeriodic), Ended (EVDeparted), StatusNotification Available, with Heartbeats.
Each measured length runs twice: on EVSE 1, whose connector has the tariff, and on EVSE 2, which
has none. Updateds are counted by what they cost: plain ones (readings stored, no fold) apart
from the priced ones, those whose reply carries totalCost (every 5 minutes of the session's
clock; they fold the session's log). Results go to their own file (`ingest_calls_201.json`).

Usage: .venv/bin/python -m bench.ingest_calls [--label after] [--sessions 45,600] [--cpu-sessions 20]
       .venv/bin/python -m bench.ingest_calls --ocpp 2.0.1 [--sessions 45,600]
       .venv/bin/python -m bench.ingest_calls --table   # the markdown tables of the last results
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import logging
import os
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, write_results
from bench.warm_path import MESSAGE_TYPES

OCPP16, OCPP201 = "1.6", "2.0.1"
DEFAULT_OUT = {OCPP16: RESULTS / "ingest_calls.json", OCPP201: RESULTS / "ingest_calls_201.json"}
FUNCTION = "OcppIngestFunction"
CHARGER_ID = "CP-BENCH-1"
ID_TAG = "TAG-BENCH"
TARIFF_ID = "T-BENCH"
# Issue 21's targets per frame (DynamoDB calls), shown beside the medians.
TARGETS = {
    "MeterValues": "<= 2 writes, <= 1 read",
    "Heartbeat": "0-1 calls",
    "StatusNotification": "<= 3 calls",
    "StartTransaction": "<= 6 calls",
    "StopTransaction": "<= 4 calls",
}
CPU_TARGET_MS = {"MeterValues": 3.0, "StartTransaction": 6.0}
# What a 2.0.1 frame is reported as: the TransactionEvents by what they do (and cost).
STARTED, UPDATED, ENDED = "TransactionEvent Started", "TransactionEvent Updated", "TransactionEvent Ended"
PRICED_UPDATED = "TransactionEvent Updated, priced"
STATE_UPDATED = "TransactionEvent Updated, chargingState"
MESSAGE_TYPES_201 = (
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    STARTED,
    STATE_UPDATED,
    UPDATED,
    PRICED_UPDATED,
    ENDED,
)
EVENT_TYPES = {STARTED: "Started", STATE_UPDATED: "Updated", UPDATED: "Updated", ENDED: "Ended"}
PRICED_EVSE, UNPRICED_EVSE = 1, 2  # the tariff is assigned to EVSE 1's connector only
OCPP201_EVENT_VERSION = "ocpp2.0.1"  # IngestEvent.ocpp_version, as the 2.0.1 rule sets it
WRITE_OPS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})


# ------------------------------------------------------------------ pure helpers
@dataclass(frozen=True)
class Frame:
    action: str
    payload: dict[str, Any]
    at: datetime  # the charger's clock and the rule's timestamp() alike
    reading: int | None = None  # 1-based index of a MeterValues (2.0.1: periodic Updated) in its session
    label: str | None = None  # what the frame is reported as, when not its action

    @property
    def kind(self) -> str:
        return self.label or self.action


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def session_frames(readings: int, start: datetime, meter_start_wh: int) -> list[Frame]:
    """One charging session, a minute between frames: Preparing, Authorize, StartTransaction,
    Charging, `readings` MeterValues, StopTransaction, Finishing, Available. The transaction id
    is left out: the runner adds the one the StartTransaction's reply carried (`with_transaction`)."""

    def minute(k: int) -> datetime:
        return start + timedelta(minutes=k)

    def status(connector_status: str, k: int) -> Frame:
        payload = {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": connector_status,
            "timestamp": iso(minute(k)),
        }
        return Frame("StatusNotification", payload, minute(k))

    def reading(n: int) -> Frame:
        sampled = [
            {
                "value": str(meter_start_wh + 150 * n),
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            },
            {"value": "9000", "measurand": "Power.Active.Import", "unit": "W"},
        ]
        payload = {
            "connectorId": 1,
            "meterValue": [{"timestamp": iso(minute(3 + n)), "sampledValue": sampled}],
        }
        return Frame("MeterValues", payload, minute(3 + n), reading=n)

    start_payload = {
        "connectorId": 1,
        "idTag": ID_TAG,
        "meterStart": meter_start_wh,
        "timestamp": iso(minute(2)),
    }
    stop_k = 4 + readings
    stop_payload = {
        "meterStop": meter_start_wh + 150 * readings + 100,
        "timestamp": iso(minute(stop_k)),
        "idTag": ID_TAG,
    }
    return [
        status("Preparing", 0),
        Frame("Authorize", {"idTag": ID_TAG}, minute(1)),
        Frame("StartTransaction", start_payload, minute(2)),
        status("Charging", 3),
        *(reading(n) for n in range(1, readings + 1)),
        Frame("StopTransaction", stop_payload, minute(stop_k)),
        status("Finishing", stop_k + 1),
        status("Available", stop_k + 2),
    ]


def energy_201(at: datetime, wh: int, context: str) -> list[dict[str, Any]]:
    """A 2.0.1 meterValue: the energy register and the power drawn, numbers with their units."""
    sampled = [
        {
            "value": wh,
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "unitOfMeasure": {"unit": "Wh"},
        },
        {
            "value": 9000,
            "context": context,
            "measurand": "Power.Active.Import",
            "unitOfMeasure": {"unit": "W"},
        },
    ]
    return [{"timestamp": iso(at), "sampledValue": sampled}]


def session_frames_201(
    readings: int, start: datetime, meter_start_wh: int, evse_id: int, transaction_id: str
) -> list[Frame]:
    """One 2.0.1 charging session, a minute between frames: Occupied, Authorize, Started (EV
    connected, the Transaction.Begin register), Updated to Charging, `readings` periodic Updateds,
    Ended (EV departed), Available. The station numbers its TransactionEvents (seqNo) from 0."""

    def minute(k: int) -> datetime:
        return start + timedelta(minutes=k)

    def status(connector_status: str, k: int) -> Frame:
        payload = {
            "timestamp": iso(minute(k)),
            "connectorStatus": connector_status,
            "evseId": evse_id,
            "connectorId": 1,
        }
        return Frame("StatusNotification", payload, minute(k))

    def event(label: str, seq_no: int, k: int, info: dict[str, Any], **fields: Any) -> Frame:
        payload = {
            "eventType": EVENT_TYPES[label],
            "timestamp": iso(minute(k)),
            "seqNo": seq_no,
            "transactionInfo": {"transactionId": transaction_id, **info},
            **fields,
        }
        return Frame("TransactionEvent", payload, minute(k), label=label)

    def reading(n: int) -> Frame:
        wh = meter_start_wh + 150 * n
        frame = event(
            UPDATED,
            1 + n,
            3 + n,
            {},
            triggerReason="MeterValuePeriodic",
            meterValue=energy_201(minute(3 + n), wh, "Sample.Periodic"),
        )
        return Frame(frame.action, frame.payload, frame.at, reading=n, label=UPDATED)

    token = {"idToken": ID_TAG, "type": "ISO14443"}
    end_k = 4 + readings
    return [
        status("Occupied", 0),
        Frame("Authorize", {"idToken": token}, minute(1)),
        event(
            STARTED,
            0,
            2,
            {"chargingState": "EVConnected"},
            triggerReason="Authorized",
            idToken=token,
            evse={"id": evse_id, "connectorId": 1},
            meterValue=energy_201(minute(2), meter_start_wh, "Transaction.Begin"),
        ),
        event(STATE_UPDATED, 1, 3, {"chargingState": "Charging"}, triggerReason="ChargingStateChanged"),
        *(reading(n) for n in range(1, readings + 1)),
        event(
            ENDED,
            2 + readings,
            end_k,
            {"chargingState": "Idle", "stoppedReason": "EVDisconnected"},
            triggerReason="EVDeparted",
            meterValue=energy_201(minute(end_k), meter_start_wh + 150 * readings + 100, "Transaction.End"),
        ),
        status("Available", end_k + 1),
    ]


def boot_payload(ocpp: str) -> dict[str, Any]:
    """The charger's BootNotification in its version's words."""
    if ocpp == OCPP201:
        station = {"vendorName": "Acme", "model": "AC22", "firmwareVersion": "1.2.3"}
        return {"chargingStation": station, "reason": "PowerUp"}
    return {"chargePointVendor": "Acme", "chargePointModel": "AC22", "firmwareVersion": "1.2.3"}


def reported_kind(frame: Frame, reply: Any) -> str:
    """The frame's kind; a periodic Updated whose reply tells the running cost is a priced one."""
    if frame.kind == UPDATED and isinstance(reply, dict) and "totalCost" in reply:
        return PRICED_UPDATED
    return frame.kind


def session_name(index: int, readings: int, measured: int) -> str:
    """The warm-up first, then the measured sessions by length, then the CPU-sample ones by number."""
    if index == 0:
        return "warm-up"
    return f"{readings} readings" if index <= measured else f"cpu {index}"


def with_transaction(frame: Frame, transaction_id: int) -> dict[str, Any]:
    """The frame's payload, with the transaction id where OCPP 1.6 wants one."""
    if frame.action in ("MeterValues", "StopTransaction"):
        return {**frame.payload, "transactionId": transaction_id}
    return frame.payload


def ingest_event(
    charger_id: str, message_id: str, frame: Frame, transaction_id: int, ocpp: str = OCPP16
) -> dict[str, Any]:
    """The event OcppIngestRule's SQL makes of the frame's MQTT publish (the 2.0.1 rule's adds
    the version; 2.0.1 frames carry their own transaction id)."""
    payload = with_transaction(frame, transaction_id) if ocpp == OCPP16 else frame.payload
    raw = json.dumps([2, message_id, frame.action, payload])
    event = {
        "charger_id": charger_id,
        "client_id": charger_id,
        "payload": base64.b64encode(raw.encode()).decode(),
        "received_at": int(frame.at.timestamp() * 1000),
    }
    return event if ocpp == OCPP16 else {**event, "ocpp_version": OCPP201_EVENT_VERSION}


def split_calls(operations: dict[str, int]) -> tuple[int, int]:
    """(write calls, read calls) of one frame's DynamoDB operations."""
    writes = sum(n for op, n in operations.items() if op in WRITE_OPS)
    reads = sum(n for op, n in operations.items() if op in READ_OPS)
    return writes, reads


def median_per_type(
    frames: Sequence[dict[str, Any]], types: Sequence[str] = MESSAGE_TYPES
) -> dict[str, dict[str, Any]]:
    """Per message type: frames, median calls (all, writes, reads), median units, every operation's median."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for frame in frames:
        by_type[frame["action"]].append(frame)
    out: dict[str, dict[str, Any]] = {}
    for action in types:
        rows = by_type.get(action)
        if not rows:
            continue
        operations = sorted({op for row in rows for op in row["operations"]})
        out[action] = {
            "frames": len(rows),
            "calls": statistics.median(sum(r["operations"].values()) for r in rows),
            "write_calls": statistics.median(r["write_calls"] for r in rows),
            "read_calls": statistics.median(r["read_calls"] for r in rows),
            "wcu": statistics.median(r["wcu"] for r in rows),
            "rcu": statistics.median(r["rcu"] for r in rows),
            "operations": {
                op: statistics.median(r["operations"].get(op, 0) for r in rows) for op in operations
            },
        }
    return out


def readings_at(
    frames: Sequence[dict[str, Any]], session: str, marks: Sequence[int], action: str = "MeterValues"
) -> dict[str, dict[str, Any]]:
    """The `action` frames of `session` at each reading of `marks` (1-based) it has: calls, units, CPU."""
    wanted = {f["reading"]: f for f in frames if f["session"] == session and f["action"] == action}
    return {
        str(mark): {
            k: wanted[mark][k] for k in ("operations", "write_calls", "read_calls", "wcu", "rcu", "cpu_us")
        }
        for mark in marks
        if mark in wanted
    }


def first_45th_and_last(frames: Sequence[dict[str, Any]], session: str, action: str) -> list[int]:
    """The readings of `session`'s `action` frames to show: its first, the last by the 45th, its last."""
    numbers = sorted(f["reading"] for f in frames if f["session"] == session and f["action"] == action)
    if not numbers:
        return []
    by_45th = [n for n in numbers if n <= 45] or numbers[:1]
    return sorted({numbers[0], by_45th[-1], numbers[-1]})


def cpu_ratios(frames: Sequence[dict[str, Any]], actions: Sequence[str]) -> dict[str, dict[str, float]]:
    """Median handler CPU per action (µs) over the median bare get_item CPU of the same frames."""
    out: dict[str, dict[str, float]] = {}
    for action in actions:
        rows = [f for f in frames if f["action"] == action and not f["warm_up"]]
        if not rows:
            continue
        cpu = statistics.median(f["cpu_us"] for f in rows)
        base = statistics.median(f["baseline_cpu_us"] for f in rows)
        out[action] = {
            "frames": len(rows),
            "cpu_ms_median": round(cpu / 1000, 2),
            "get_item_ms_median": round(base / 1000, 3),
            "ratio": round(cpu / base, 1) if base else 0.0,
        }
        if action in CPU_TARGET_MS:
            out[action]["target_ms"] = CPU_TARGET_MS[action]
    return out


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows),
        "",
    ]


def _calls_and_units(row: dict[str, Any]) -> list[Any]:
    calls = sum(row["operations"].values())
    return [
        f"{calls:g}",
        f"{row['write_calls']:g}",
        f"{row['read_calls']:g}",
        f"{row['wcu']:g}",
        f"{row['rcu']:g}",
    ]


def markdown(report: dict[str, Any]) -> str:
    """The tables docs/BENCHMARKS.md shows, for every label in the results."""
    units = ["DynamoDB calls", "writes", "reads", "WCU", "RCU"]
    lines: list[str] = []
    for label, run in report["runs"].items():
        lines += [f"### {label} ({run['code']})", ""]
        lines += _table(
            ["message", "frames", *units, "operations (median per frame)", "issue 21 target"],
            (
                [action, row["frames"], *_calls_and_units(row), _operations(row), TARGETS.get(action, "")]
                for action, row in run["per_type"].items()
            ),
        )
        lines += _table(
            ["session", "reading", *units, "CPU ms"],
            (
                [session, mark, *_calls_and_units(row), f"{row['cpu_us'] / 1000:.2f}"]
                for session, marks in run["readings"].items()
                for mark, row in marks.items()
            ),
        )
        lines += _table(
            ["message", "frames", "handler CPU ms (median)", "bare get_item ms", "**ratio**", "target ms"],
            (
                [
                    action,
                    r["frames"],
                    r["cpu_ms_median"],
                    r["get_item_ms_median"],
                    f"**{r['ratio']}**",
                    r.get("target_ms", ""),
                ]
                for action, r in run["cpu"].items()
            ),
        )
    return "\n".join(lines)


def _operations(row: dict[str, Any]) -> str:
    return ", ".join(f"{op} {n:g}" for op, n in row["operations"].items() if n)


# ------------------------------------------------------------------ counting
@dataclass
class CallLog:
    """What the AWS SDK was asked to do since the last `take`: operations per service, replies sent."""

    operations: Counter[str] = field(default_factory=Counter)
    replies: list[bytes] = field(default_factory=list)

    def take(self) -> tuple[dict[str, int], list[bytes]]:
        taken = dict(self.operations), self.replies
        self.operations, self.replies = Counter(), []
        return taken


@contextlib.contextmanager
def counting_calls() -> Iterator[CallLog]:
    """Every botocore client call of this process (pynamodb's, Powertools', boto3's) into a CallLog."""
    from botocore.client import BaseClient

    log = CallLog()
    original = BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        if service == "dynamodb":
            log.operations[operation] += 1
        elif service == "iot-data" and operation == "Publish":
            log.replies.append(params["payload"])
        return original(client, operation, params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield log
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def dynamodb_units() -> tuple[float, float]:
    """(read, write) units moto's instrumented handler has counted so far, DynamoDB's way."""
    from bench.cost_counts import TALLY

    with TALLY.lock:
        total = {"rcu": 0.0, "wcu": 0.0}
        for entry in TALLY.dynamodb.values():
            total["rcu"] += entry["rcu"]
            total["wcu"] += entry["wcu"]
    return total["rcu"], total["wcu"]


# ------------------------------------------------------------------ the run
@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free local port in this process, counting units as `chargenet cost` does."""
    from moto.server import ThreadedMotoServer

    from bench.cost_counts import _instrument_moto_dynamodb
    from chargenet_local import moto_dynamodb
    from chargenet_local.stack import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    moto_dynamodb.apply()  # a Query reads its partition, as the local stack's moto does
    _instrument_moto_dynamodb()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def checkout_root() -> Path:
    """The checkout whose `chargenet` Python imports (this one, or the one PYTHONPATH names)."""
    import chargenet

    return Path(chargenet.__file__).resolve().parents[3]


def prepare(root: Path, endpoint: str) -> tuple[Callable[[dict[str, Any], Any], Any], Any]:
    """The template's resources in moto, the function's environment set, its handler imported."""
    from chargenet_local.aws_resources import create_all
    from chargenet_local.template import load

    template = load(root / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": endpoint})
    create_all(template, endpoint)
    spec = template.functions()[FUNCTION]
    os.environ.update(
        {
            **spec.environment,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_IOT_DATA_PLANE": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        }
    )
    if str(spec.code_dir) not in sys.path:
        sys.path.append(str(spec.code_dir))  # after PYTHONPATH: another checkout's handler wins
    module, function = spec.handler.rsplit(".", 1)
    return getattr(importlib.import_module(module), function), spec


def seed(root: Path, first_frame_at: datetime, evse_id: int | None = None) -> None:
    """The charger, its driver's tag and a tariff in force (network-wide, or on `evse_id`'s
    connector only): what provisioning leaves behind."""
    from chargenet.adapters.dynamodb import DynamoChargerRegistry
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
    from chargenet.composition.settings import FunctionEnvironment, environment
    from chargenet.domain.models import TagStatus

    environment(FunctionEnvironment)  # binds the function's table names, as its composition does
    DynamoChargerRegistry().register(CHARGER_ID, "SITE-BENCH", first_frame_at - timedelta(days=1))
    DynamoTagDirectory().put(ID_TAG, TagStatus.ACCEPTED, 1, None)
    tariffs = DynamoTariffBook()
    tariff = json.loads((root / "docs" / "tariffs" / "example-tariff.json").read_text())
    tariff["id"] = TARIFF_ID
    tariffs.store(TARIFF_ID, json.dumps(tariff), first_frame_at - timedelta(days=1))
    if evse_id is None:
        tariffs.assign(TARIFF_ID)
    else:
        tariffs.assign(TARIFF_ID, CHARGER_ID, evse_id)


def lambda_context(spec: Any) -> Any:
    from chargenet_local.lambda_runtime import LambdaContext

    return LambdaContext(
        function_name=FUNCTION,
        memory_limit_in_mb=spec.memory_mb,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}",
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + spec.timeout_s,
    )


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Powertools writes logs and EMF to the stdout it started with: still written, not shown."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@dataclass
class Runner:
    handler: Callable[[dict[str, Any], Any], Any]
    spec: Any
    log: CallLog
    baseline: Callable[[], Any]
    ocpp: str = OCPP16
    frames: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0

    def boot(self, at: datetime) -> None:
        self.send("boot", Frame("BootNotification", boot_payload(self.ocpp), at), 0, warm_up=True)
        self.send("boot", Frame("Heartbeat", {}, at + timedelta(seconds=30)), 0, warm_up=True)

    def session_201(self, name: str, frames: Sequence[Frame], warm_up: bool) -> None:
        for frame in frames:
            self.send(name, frame, 0, warm_up)
            if frame.action == "StatusNotification":
                self.send(name, Frame("Heartbeat", {}, frame.at + timedelta(seconds=20)), 0, warm_up)

    def session(self, name: str, readings: int, start: datetime, meter_start_wh: int, warm_up: bool) -> None:
        transaction_id = 0
        for frame in session_frames(readings, start, meter_start_wh):
            reply = self.send(name, frame, transaction_id, warm_up)
            if frame.action == "StartTransaction":
                transaction_id = int(reply[2]["transactionId"])
            if frame.action == "StatusNotification":  # a charger's heartbeats come between its frames
                self.send(
                    name, Frame("Heartbeat", {}, frame.at + timedelta(seconds=20)), transaction_id, warm_up
                )

    def send(self, session: str, frame: Frame, transaction_id: int, warm_up: bool) -> Any:
        self.sent += 1
        event = ingest_event(CHARGER_ID, f"m{self.sent}", frame, transaction_id, self.ocpp)
        self.log.take()
        rcu0, wcu0 = dynamodb_units()
        started = time.thread_time_ns()
        result = self.handler(event, lambda_context(self.spec))
        cpu = time.thread_time_ns() - started
        rcu1, wcu1 = dynamodb_units()
        operations, replies = self.log.take()
        started = time.thread_time_ns()
        self.baseline()
        baseline_cpu = time.thread_time_ns() - started
        self.log.take()
        reply = json.loads(replies[-1]) if replies else None
        if reply is None or reply[0] != 3:
            raise RuntimeError(f"{frame.action} not answered with a CALLRESULT: {result} {reply}")
        writes, reads = split_calls(operations)
        self.frames.append(
            {
                "session": session,
                "action": reported_kind(frame, reply[2]),
                "reading": frame.reading,
                "warm_up": warm_up,
                "operations": operations,
                "write_calls": writes,
                "read_calls": reads,
                "wcu": wcu1 - wcu0,
                "rcu": rcu1 - rcu0,
                "iot_publishes": len(replies),
                "cpu_us": cpu / 1000,
                "baseline_cpu_us": baseline_cpu / 1000,
            }
        )
        return reply


@contextlib.contextmanager
def booted_charger(minutes: int, ocpp: str) -> Iterator[tuple[Runner, datetime]]:
    """The handler against a fresh moto, the charger seeded and booted `minutes` before now:
    the runner and when its first session may start."""
    import boto3

    root = checkout_root()
    with moto_server() as endpoint, counting_calls() as log, stdout_to_devnull():
        handler, spec = prepare(root, endpoint)
        first = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)  # ends about now
        seed(root, first, PRICED_EVSE if ocpp == OCPP201 else None)
        table = os.environ["CHARGERS_TABLE"]
        dynamodb = boto3.client("dynamodb")
        key = {"charger_id": {"S": CHARGER_ID}, "sk": {"S": "charger"}}
        runner = Runner(handler, spec, log, lambda: dynamodb.get_item(TableName=table, Key=key), ocpp)
        runner.boot(first)
        yield runner, first + timedelta(minutes=2)


def run(sessions: Sequence[int], cpu_sessions: int, cpu_readings: int) -> dict[str, Any]:
    lengths = [3, *sessions, *([cpu_readings] * cpu_sessions)]  # the first one warms up
    with booted_charger(sum(n + 12 for n in lengths), OCPP16) as (runner, at):
        meter = 10_000
        for index, readings in enumerate(lengths):
            name = session_name(index, readings, len(sessions))
            runner.session(name, readings, at, meter, warm_up=index == 0)
            at += timedelta(minutes=readings + 12)
            meter += 150 * readings + 1000
    counted = [f for f in runner.frames if not f["warm_up"]]
    return {
        "code": str(checkout_root()),
        "per_type": median_per_type(counted),
        "readings": {
            f"{n} readings": readings_at(counted, f"{n} readings", sorted({1, min(45, n), n}))
            for n in sessions
        },
        "cpu": cpu_ratios(runner.frames, ("MeterValues", "StartTransaction")),
        "frames": runner.frames,
    }


def sessions_201(sessions: Sequence[int], cpu_sessions: int, cpu_readings: int) -> list[tuple[str, int, int]]:
    """(name, readings, EVSE) of a 2.0.1 run: the warm-up (long enough for a priced Updated),
    each measured length with the tariff and without, then the CPU samples (priced)."""
    measured = [
        (f"{n} readings, {tariff}", n, evse)
        for n in sessions
        for tariff, evse in (("priced", PRICED_EVSE), ("no tariff", UNPRICED_EVSE))
    ]
    samples = [(f"cpu {k}", cpu_readings, PRICED_EVSE) for k in range(1, cpu_sessions + 1)]
    return [("warm-up", 6, PRICED_EVSE), *measured, *samples]


def run_201(sessions: Sequence[int], cpu_sessions: int, cpu_readings: int) -> dict[str, Any]:
    planned = sessions_201(sessions, cpu_sessions, cpu_readings)
    with booted_charger(sum(n + 12 for _, n, _ in planned), OCPP201) as (runner, at):
        meter = 10_000
        for index, (name, readings, evse) in enumerate(planned):
            frames = session_frames_201(readings, at, meter, evse, f"TX-BENCH-{index}")
            runner.session_201(name, frames, warm_up=index == 0)
            at += timedelta(minutes=readings + 12)
            meter += 150 * readings + 1000
    counted = [f for f in runner.frames if not f["warm_up"]]
    measured_names = [name for name, _, _ in planned[1 : 1 + 2 * len(sessions)]]
    return {
        "code": str(checkout_root()),
        "ocpp": OCPP201,
        "per_type": median_per_type(counted, MESSAGE_TYPES_201),
        "readings": {
            f"{name}: {kind.removeprefix('TransactionEvent ')}": readings_at(
                counted, name, first_45th_and_last(counted, name, kind), kind
            )
            for name in measured_names
            for kind in (UPDATED, PRICED_UPDATED)
            if first_45th_and_last(counted, name, kind)
        },
        "cpu": cpu_ratios(runner.frames, (STARTED, UPDATED, PRICED_UPDATED)),
        "frames": runner.frames,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", default="after", help="the key of this run in the results (before, after)")
    parser.add_argument("--sessions", default="45,600", help="readings per measured session, comma separated")
    parser.add_argument("--cpu-sessions", type=int, default=20, help="more sessions, for CPU samples")
    parser.add_argument("--cpu-readings", type=int, default=5, help="readings in each of those")
    parser.add_argument(
        "--ocpp", choices=list(DEFAULT_OUT), default=OCPP16, help="the stations' OCPP version"
    )
    parser.add_argument("--out", type=Path, help="the results file (default: ingest_calls[_201].json)")
    parser.add_argument("--table", action="store_true", help="print the tables of --out and exit")
    args = parser.parse_args(argv)
    out: Path = args.out or DEFAULT_OUT[args.ocpp]
    previous = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    if args.table:
        print(markdown(previous))
        return 0
    started = time.perf_counter()
    measure = run_201 if args.ocpp == OCPP201 else run
    measured = measure([int(n) for n in args.sessions.split(",")], args.cpu_sessions, args.cpu_readings)
    measured |= {
        "generated_by": "python -m bench.ingest_calls " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "real_seconds": round(time.perf_counter() - started, 1),
    }
    report = {"runs": {**previous["runs"], args.label: measured}}
    write_results(out, report)
    print(markdown({"runs": {args.label: measured}}))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
