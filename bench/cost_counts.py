"""AWS operation counts from a real run of the local stack, for `chargenet cost`.

Starts a fresh local stack whose daemon is instrumented (this module, `_serve`), runs a small
simulated fleet on it as `chargenet demo` does (provisioning, tariff, tags, then
chargenet_shim.sim.fleet.run_sessions over mTLS), waits until every session is billed, stops the
stack and writes bench/results/cost_counts.json: the raw counts and the unit profiles
`chargenet cost` prices (cli/chargenet_cli/cost_model.py).

How each count is taken, all inside the stack's daemon:

* frames: every publish that reaches the rules engine (`LocalStack.dispatch`), by OCPP action
  (presence events by kind), with its size and 5 KB units;
* rules: every `Rule.evaluate` (a rule triggered) and each event it produced (an action);
* Lambda: each function's workers time every invocation (wall clock, as Lambda bills it,
  rounded up to the ms) and label it with what caused it (the OCPP action of the frame, the
  presence event, a stream batch, a schedule, an API request); GB-s use the template's
  MemorySize;
* AWS calls made by functions: the workers tag every botocore request with a header naming
  the function and the label, and count the calls per service operation (SNS Publish, IoT
  Data Publish with its payload size, Secrets Manager, ...). Calls without the header are the
  benchmark's own (provisioning, polling for the CDRs) and are left out;
* DynamoDB units: moto returns a fixed ConsumedCapacity (1 or 0.5 whatever the size), so the
  daemon wraps moto's DynamoDB handler and computes the units as DynamoDB documents them:
  writes ceil(item KB) per item (the larger of the item before and after the write; failed
  conditional writes too), reads ceil(size / 4 KB) per item for GetItem and per response for
  Query/Scan, halved when eventually consistent, transactions twice that;
* index writes: for each global secondary index, the entry before and after every write,
  projected as the template projects it: a new or removed entry is one write of its size, a
  changed key two, a changed projected attribute one, an untouched entry none;
* Query and Scan reads on what DynamoDB evaluates, not what it returns (a filter does not
  lower the bill): the items returned plus, for each one scanned and filtered out, the
  table's mean item size;
* time-based writes: the registry's `last_seen_at` update (at most one per
  services.ingest.SEEN_WRITE_INTERVAL of IoT's receive time) is tallied apart from the frame
  that caused it, because the run compresses charger time 600x but not wall time: the run
  shows the write's units, `chargenet cost` scales their number from the real cadence;
* logs: the bytes and lines each invocation writes to stdout/stderr (the functions' log lines
  at the template's LogLevel, EMF documents, warnings), as CloudWatch Logs would ingest them;
* storage: each table's items and bytes at the end of the run (DynamoDB's 100 bytes of
  overhead per item and per index entry included);
* metrics: the distinct (namespace, name, dimensions) the functions emitted as EMF.

Usage: .venv/bin/python -m bench.cost_counts [--chargers 6] [--sessions 2] [--speed 600]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import math
import os
import random
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, TEMPLATE, Daemon, running_stack, stack_home, stepper, write_results

DEFAULT_OUT = RESULTS / "cost_counts.json"
MONTH_S = 30 * 86400
IOT_UNIT_BYTES = 5 * 1024
BENCH_HEADER = "x-chargenet-bench"
OPERATOR = "operator"
SETTLE_TIMEOUT_S = 180
# DynamoDB stores each item and each index entry with this much overhead (its storage pricing).
ITEM_OVERHEAD_BYTES = 100
LAST_SEEN = "time:last_seen"
KMS_TABLE_KEY_CACHE_S = 300  # DynamoDB keeps a table key this long per principal (its docs)


# ------------------------------------------------------------------ pure helpers
def iot_units(size: int) -> int:
    """IoT Core meters messages in 5 KB units: a 0-byte message is one unit too."""
    return max(1, math.ceil(size / IOT_UNIT_BYTES))


def frame_label(payload: bytes) -> str:
    """What a charger's MQTT payload is: `ocpp:<Action>` for a CALL, the message type otherwise."""
    try:
        frame = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return "ocpp:invalid"
    if isinstance(frame, list) and frame and frame[0] == 2 and len(frame) >= 3 and isinstance(frame[2], str):
        return f"ocpp:{frame[2]}"
    if isinstance(frame, list) and frame and frame[0] in (3, 4):
        return "ocpp:CALLRESULT" if frame[0] == 3 else "ocpp:CALLERROR"
    return "ocpp:invalid"


def event_label(event: Any) -> str:
    """What caused a Lambda invocation, from its event."""
    if not isinstance(event, dict):
        return "other"
    if "payload" in event and "charger_id" in event:
        try:
            return frame_label(base64.b64decode(event["payload"]))
        except ValueError:
            return "ocpp:invalid"
    if "eventType" in event:
        return f"presence:{event['eventType']}"
    if "Records" in event:
        return "stream"
    if event.get("source") == "aws.events":
        return "schedule"
    if "requestContext" in event:
        return "api"
    return "other"


def attribute_size(value: Any) -> int:
    """Size of a DynamoDB attribute value in wire format, as DynamoDB counts it (approximately for N)."""
    if not isinstance(value, dict) or len(value) != 1:
        return 0
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(attribute_size({"N": v}) for v in inner)
    if kind == "BS":
        return sum(attribute_size({"B": v}) for v in inner)
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    return 0


def item_size(item: Any) -> int:
    """Size of an item: wire format ({"name": {"S": ...}}) or moto's attrs (DynamoType values)."""
    if item is None:
        return 0
    if hasattr(item, "size") and callable(item.size):
        return int(item.size())
    total = 0
    for name, value in item.items():
        total += len(name.encode()) + (int(value.size()) if hasattr(value, "size") else attribute_size(value))
    return total


def write_units(size: int, transactional: bool = False) -> int:
    return max(1, math.ceil(size / 1024)) * (2 if transactional else 1)


def read_units(size: int, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / 4096))
    if transactional:
        return units * 2.0
    return float(units) if consistent else units / 2


def evaluated_read_units(
    returned_sizes: Sequence[int], scanned_count: int, mean_item_size: float, consistent: bool
) -> float:
    """A Query or Scan is billed on the items it evaluates: those a filter dropped count too."""
    filtered_out = max(0, scanned_count - len(returned_sizes))
    return read_units(int(sum(returned_sizes) + filtered_out * mean_item_size), consistent)


# An item as the index arithmetic sees it: attribute name -> (its size with the name, a fingerprint).
Attributes = Mapping[str, tuple[int, str]]


@dataclass(frozen=True)
class IndexEntry:
    key: tuple[str, ...]
    size: int
    content: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class IndexShape:
    """A global secondary index: its key, the table's key and what it projects."""

    key_attributes: tuple[str, ...]
    table_keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    included: tuple[str, ...] = ()

    def entry(self, item: Attributes | None) -> IndexEntry | None:
        """The item's entry in the index; None when the item lacks the index key (a sparse index)."""
        if item is None or any(name not in item for name in self.key_attributes):
            return None
        if self.projection == "ALL":
            names = set(item)
        else:
            names = {*self.table_keys, *self.key_attributes}
            if self.projection == "INCLUDE":
                names |= set(self.included)
        projected = {name: item[name] for name in names if name in item}
        return IndexEntry(
            key=tuple(item[name][1] for name in self.key_attributes),
            size=sum(size for size, _ in projected.values()),
            content=tuple(sorted((name, fingerprint) for name, (_, fingerprint) in projected.items())),
        )


def index_write_units(before: IndexEntry | None, after: IndexEntry | None) -> int:
    """Write units one table write costs in one index, as DynamoDB documents them."""
    if before is None and after is None:
        return 0
    if before is None or after is None:  # an entry added or removed
        return write_units((after or before).size)  # type: ignore[union-attr]
    if before.key != after.key:  # a delete of the old entry and a put of the new
        return write_units(before.size) + write_units(after.size)
    if before.content == after.content:  # no projected attribute changed: the index is not written
        return 0
    return write_units(max(before.size, after.size))


def is_last_seen_write(operation: str, body: Mapping[str, Any]) -> bool:
    """The registry's time-based `last_seen_at` update (adapters.dynamodb: record_seen) and nothing else."""
    if operation != "update_item":
        return False
    # The names the update sets, not those its condition reads (pynamodb shares one placeholder map).
    placeholders = re.findall(r"#\w+", body.get("UpdateExpression") or "")
    aliases = body.get("ExpressionAttributeNames") or {}
    return {aliases.get(p, p) for p in placeholders} == {"last_seen_at"}


# ------------------------------------------------------------------ the instrumented daemon
class Tally:
    """Counters shared by the daemon's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "bytes": 0, "units": 0})
        self.rules: dict[str, dict[str, int]] = defaultdict(lambda: {"triggered": 0, "actions": 0})
        self.invocations: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.dynamodb: dict[str, dict[str, float]] = defaultdict(lambda: {"calls": 0, "rcu": 0.0, "wcu": 0.0})
        self.metrics: set[str] = set()
        self.storage: dict[str, dict[str, int]] = {}
        self.local = threading.local()

    def as_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "frames": dict(self.frames),
                "rules": dict(self.rules),
                "invocations": {k: dict(v) for k, v in self.invocations.items()},
                "dynamodb": dict(self.dynamodb),
                "metrics": sorted(self.metrics),
                "storage": dict(self.storage),
            }


TALLY = Tally()


def _bench_context(headers: Any) -> str:
    try:
        return headers.get(BENCH_HEADER) or OPERATOR
    except AttributeError:
        return OPERATOR


def _attributes(item: Any) -> dict[str, tuple[int, str]] | None:
    """A moto item as `Attributes` (sizes and fingerprints), copied before moto changes it in place."""
    if item is None:
        return None
    attributes = {}
    for name, value in item.attrs.items():
        wire = json.dumps(value.to_json(), sort_keys=True, default=_plain)
        # Sized from the wire format: moto's own size() undercounts maps and lists.
        attributes[name] = (len(name.encode()) + attribute_size(json.loads(wire)), wire)
    return attributes


def _plain(value: Any) -> Any:
    """Nested moto values (maps and lists hold DynamoType) in wire format, for a fingerprint."""
    return value.to_json() if hasattr(value, "to_json") else str(value)


def _index_shapes(table: Any) -> list[IndexShape]:
    return [
        IndexShape(
            key_attributes=tuple(index.schema_key_attrs),
            table_keys=tuple(table.table_key_attrs),
            projection=(index.projection or {}).get("ProjectionType", "ALL"),
            included=tuple((index.projection or {}).get("NonKeyAttributes", [])),
        )
        for index in table.global_indexes
    ]


def _mean_item_size(table: Any) -> float:
    items = table.all_items()
    return sum(item_size(item) for item in items) / len(items) if items else 0.0


def table_storage(table: Any) -> dict[str, int]:
    """Items and stored bytes of a moto table and its index entries, with DynamoDB's per-item overhead."""
    items = [_attributes(item) for item in table.all_items()]
    shapes = _index_shapes(table)
    entries = [e for item in items for shape in shapes if (e := shape.entry(item)) is not None]
    return {
        "items": len(items),
        "bytes": sum(sum(size for size, _ in item.values()) + ITEM_OVERHEAD_BYTES for item in items if item),
        "index_bytes": sum(entry.size + ITEM_OVERHEAD_BYTES for entry in entries),
    }


def _instrument_moto_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler

    def table_keys(handler: Any, table_name: str, item: dict[str, Any]) -> dict[str, Any]:
        table = handler.dynamodb_backend.get_table(table_name)
        keys = {table.hash_key_attr: item[table.hash_key_attr]}
        if table.range_key_attr:
            keys[table.range_key_attr] = item[table.range_key_attr]
        return keys

    def stored(handler: Any, table_name: str, key: dict[str, Any]) -> dict[str, tuple[int, str]] | None:
        try:
            return _attributes(handler.dynamodb_backend.get_item(table_name, key))
        except Exception:
            return None

    def stored_size(handler: Any, table_name: str, key: dict[str, Any]) -> int:
        attributes = stored(handler, table_name, key)
        return sum(size for size, _ in attributes.values()) if attributes else 0

    def writes(handler: Any, op: str) -> list[tuple[str, dict[str, Any], int, bool]]:
        """(table, key, size known from the request, transactional) per item the call writes."""
        body = handler.body
        if op == "put_item":
            return [
                (
                    body["TableName"],
                    table_keys(handler, body["TableName"], body["Item"]),
                    item_size(body["Item"]),
                    False,
                )
            ]
        if op in ("update_item", "delete_item"):
            return [(body["TableName"], body["Key"], 0, False)]
        if op == "batch_write_item":
            out = []
            for table, requests in body.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        out.append((table, table_keys(handler, table, item), item_size(item), False))
                    elif "DeleteRequest" in request:
                        out.append((table, request["DeleteRequest"]["Key"], 0, False))
            return out
        if op == "transact_write_items":
            out = []
            for entry in body.get("TransactItems", []):
                ((kind, spec),) = entry.items()
                if kind == "Put":
                    out.append(
                        (
                            spec["TableName"],
                            table_keys(handler, spec["TableName"], spec["Item"]),
                            item_size(spec["Item"]),
                            True,
                        )
                    )
                else:  # Update, Delete, ConditionCheck: each consumes transactional write units
                    out.append((spec["TableName"], spec["Key"], 0, True))
            return out
        return []

    def evaluated(handler: Any, op: str, result: Any) -> float:
        body = handler.body
        answer = (getattr(result, "result", None) or {}) if result is not None else {}
        items = answer.get("Items", [])
        table = handler.dynamodb_backend.get_table(body["TableName"])
        returned = [item_size(i) for i in items]
        if body.get("ProjectionExpression") and not body.get("IndexName"):
            # Billed on whole items whatever the projection: their stored size by key.
            keys = [{k: i[k] for k in table.table_key_attrs if k in i} for i in items]
            returned = [stored_size(handler, body["TableName"], k) for k in keys]
        scanned = int(answer.get("ScannedCount", len(items)))
        mean = _mean_item_size(table) if scanned > len(items) else 0.0
        return evaluated_read_units(returned, scanned, mean, bool(body.get("ConsistentRead")))

    def reads(handler: Any, op: str, result: Any) -> float:
        body = handler.body
        consistent = bool(body.get("ConsistentRead"))
        if op == "get_item":
            return read_units(stored_size(handler, body["TableName"], body["Key"]), consistent)
        if op in ("query", "scan"):
            return evaluated(handler, op, result)
        if op == "batch_get_item":
            total = 0.0
            for table, spec in body.get("RequestItems", {}).items():
                for key in spec.get("Keys", []):
                    total += read_units(stored_size(handler, table, key), bool(spec.get("ConsistentRead")))
            return total
        if op == "transact_get_items":
            return sum(
                read_units(stored_size(handler, e["Get"]["TableName"], e["Get"]["Key"]), True, True)
                for e in body.get("TransactItems", [])
            )
        return 0.0

    def units_written(
        handler: Any,
        planned: list[tuple[str, dict[str, Any], int, bool]],
        before: list[dict[str, tuple[int, str]] | None],
    ) -> tuple[float, float]:
        """(table write units, index write units) of the planned writes, now that they ran."""
        wcu, index_wcu = 0.0, 0.0
        for (table_name, key, requested, transactional), old in zip(planned, before, strict=True):
            new = stored(handler, table_name, key)
            sizes = [sum(s for s, _ in a.values()) for a in (old, new) if a]
            # A failed conditional write consumes its units all the same.
            wcu += write_units(max([*sizes, requested]), transactional)
            for shape in _index_shapes(handler.dynamodb_backend.get_table(table_name)):
                index_wcu += index_write_units(shape.entry(old), shape.entry(new))
        return wcu, index_wcu

    def wrap(op: str) -> None:
        original = getattr(DynamoHandler, op)

        def counted(self: Any) -> Any:
            context = _bench_context(getattr(self, "headers", None))
            try:
                planned = writes(self, op)
                before = [stored(self, table, key) for table, key, _, _ in planned]
                if is_last_seen_write(op, self.body):
                    context = f"{context.split('|')[0]}|{LAST_SEEN}"
            except Exception:
                planned, before = [], []
            result = None
            try:
                result = original(self)
                return result
            finally:
                try:
                    wcu, index_wcu = units_written(self, planned, before)
                except Exception:
                    wcu, index_wcu = 0.0, 0.0
                try:
                    rcu = reads(self, op, result)
                except Exception:
                    rcu = 0.0
                with TALLY.lock:
                    entry = TALLY.dynamodb[context]
                    entry["calls"] += 1
                    entry["rcu"] += rcu
                    entry["wcu"] += wcu
                    entry["index_wcu"] = entry.get("index_wcu", 0.0) + index_wcu

        counted.__name__ = op
        setattr(DynamoHandler, op, counted)

    for op in (
        "put_item", "get_item", "update_item", "delete_item", "query", "scan",
        "batch_get_item", "batch_write_item", "transact_get_items", "transact_write_items",
    ):  # fmt: skip
        wrap(op)


class CountingStream(io.TextIOBase):
    """A text stream that passes writes on and reports each one's bytes and lines."""

    def __init__(self, inner: Any, report: Callable[[str], None]) -> None:
        self._inner, self._report = inner, report

    def write(self, text: str) -> int:
        self._report(text)
        return int(self._inner.write(text))

    def flush(self) -> None:
        self._inner.flush()

    def fileno(self) -> int:
        return int(self._inner.fileno())


def _bench_init_worker(spec: Any, environment: dict[str, str]) -> None:
    """Runs in each function worker: the runtime's initialiser, then the timing and tagging."""
    import botocore.endpoint

    from chargenet_local import lambda_runtime

    current: dict[str, Any] = {"context": "", "requests": defaultdict(int), "iot_bytes": [], "log": [0, 0]}

    def count_log(text: str) -> None:
        if current["context"]:
            current["log"][0] += len(text.encode())
            current["log"][1] += text.count("\n")

    # Before the function's module is imported: its Logger keeps the stream it starts with.
    sys.stdout = CountingStream(sys.stdout, count_log)
    sys.stderr = CountingStream(sys.stderr, count_log)
    original_init = lambda_runtime.__dict__.get("_original_init_worker", lambda_runtime._init_worker)
    original_init(spec, environment)
    original_invoke = lambda_runtime._invoke_in_worker
    send = botocore.endpoint.Endpoint._send

    def tagged_send(self: Any, request: Any) -> Any:
        if current["context"]:
            request.headers[BENCH_HEADER] = current["context"]
            current["requests"][_operation(request)] += 1
            if "/topics/" in request.url:
                body = request.body
                size = len(body) if isinstance(body, bytes | str) else 0
                current["iot_bytes"].append(size)
        return send(self, request)

    botocore.endpoint.Endpoint._send = tagged_send

    def timed(event: dict[str, Any]) -> Any:
        label = event_label(event)
        current.update(
            context=f"{spec.logical_id}|{label}", requests=defaultdict(int), iot_bytes=[], log=[0, 0]
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            invocation = original_invoke(event)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            cpu_ms = (time.process_time() - cpu_started) * 1000
            context, current["context"] = current["context"], ""
        # EMF documents are log lines too (the runtime takes them out of the function's output).
        emf_bytes = sum(len(json.dumps(document, separators=(",", ":"))) + 1 for document in invocation.emf)
        record = {
            "_chargenet_bench": {
                "label": label,
                "context": context,
                "duration_ms": elapsed_ms,
                "cpu_ms": cpu_ms,
                "requests": dict(current["requests"]),
                "iot_publish_bytes": list(current["iot_bytes"]),
                "log_bytes": current["log"][0] + emf_bytes,
                "log_lines": current["log"][1] + len(invocation.emf),
            }
        }
        return lambda_runtime.Invocation(invocation.result, invocation.error, (*invocation.emf, record))

    lambda_runtime._invoke_in_worker = timed


def _operation(request: Any) -> str:
    target = request.headers.get("X-Amz-Target")
    if target:
        return target.decode() if isinstance(target, bytes) else str(target)
    if "/topics/" in request.url:
        return "iot-data.Publish"
    body = request.body
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    for part in text.split("&"):
        if part.startswith("Action="):
            return f"query.{part[len('Action=') :]}"
    return f"{request.method} {request.url.split('?')[0]}"


def _record_invocation(function: str, failed: bool, emf: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Take the benchmark's record out of an invocation's EMF documents; tally it and the metrics."""
    kept = []
    for document in emf:
        record = document.get("_chargenet_bench") if isinstance(document, dict) else None
        if record is None:
            kept.append(document)
            continue
        with TALLY.lock:
            entry = TALLY.invocations[function].setdefault(
                record["label"],
                {
                    "count": 0,
                    "failed": 0,
                    "duration_ms": [],
                    "cpu_ms": [],
                    "requests": defaultdict(int),
                    "iot_publish_bytes": [],
                    "log_bytes": 0,
                    "log_lines": 0,
                },
            )
            entry["count"] += 1
            entry["failed"] += int(failed)
            entry["duration_ms"].append(round(record["duration_ms"], 3))
            entry["cpu_ms"].append(round(record["cpu_ms"], 3))
            for operation, n in record["requests"].items():
                entry["requests"][operation] += n
            entry["iot_publish_bytes"].extend(record["iot_publish_bytes"])
            entry["log_bytes"] += record["log_bytes"]
            entry["log_lines"] += record["log_lines"]
    for document in kept:
        try:
            from chargenet_local.metrics import emf_metric_data

            for namespace, datum in emf_metric_data(document):
                dims = ",".join(f"{d['Name']}={d['Value']}" for d in datum["Dimensions"])
                with TALLY.lock:
                    TALLY.metrics.add(f"{namespace}|{datum['MetricName']}|{dims}")
        except ValueError:
            pass
    return kept


def serve(home: Path, template: Path, counts_out: Path) -> None:
    """The stack's daemon (`python -m chargenet_local serve`), with the counters installed."""
    import logging

    from chargenet_local import lambda_runtime, metrics, rules, stack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _instrument_moto_dynamodb()
    lambda_runtime._original_init_worker = lambda_runtime._init_worker  # type: ignore[attr-defined]
    lambda_runtime._init_worker = _bench_init_worker  # LocalFunction passes it to each pool

    original_record = metrics.MetricSink.record_invocation

    def record_invocation(self: Any, function: str, failed: bool, emf: Any) -> None:
        try:
            kept = _record_invocation(function, failed, list(emf))
        except Exception:  # a counting bug must not stop the stack's own bookkeeping
            logging.getLogger("bench.cost_counts").exception("tallying an invocation of %s failed", function)
            kept = [d for d in emf if not (isinstance(d, dict) and "_chargenet_bench" in d)]
        original_record(self, function, failed, kept)

    metrics.MetricSink.record_invocation = record_invocation  # type: ignore[method-assign]

    original_evaluate = rules.Rule.evaluate

    def evaluate(self: Any, message: Any) -> Any:
        result = original_evaluate(self, message)
        label = getattr(TALLY.local, "label", "other")
        with TALLY.lock:
            TALLY.rules[label]["triggered"] += 1
            TALLY.rules[label]["actions"] += int(result is not None)
        return result

    rules.Rule.evaluate = evaluate  # type: ignore[method-assign]

    original_dispatch = stack.LocalStack.dispatch

    def dispatch(self: Any, topic: str, payload: bytes, *args: Any, **kwargs: Any) -> None:
        if topic.startswith("$aws/events/presence/"):
            label = f"presence:{topic.split('/')[3]}"
        elif topic.startswith("$aws/events/"):
            label = "aws-event"
        else:
            label = frame_label(payload)
        with TALLY.lock:
            entry = TALLY.frames[label]
            entry["count"] += 1
            entry["bytes"] += len(payload)
            entry["units"] += iot_units(len(payload))
        TALLY.local.label = label
        try:
            original_dispatch(self, topic, payload, *args, **kwargs)  # client_id, principal
        finally:
            TALLY.local.label = "other"

    stack.LocalStack.dispatch = dispatch  # type: ignore[method-assign]

    def dump() -> None:
        try:
            storage = _all_table_storage()
        except RuntimeError:  # a table changed while it was read: the next dump has it
            storage = None
        except Exception:  # a counting bug must not stop the other counts' dumps
            logging.getLogger("bench.cost_counts").exception("measuring the tables' storage failed")
            storage = None
        if storage is not None:
            with TALLY.lock:
                TALLY.storage = storage
        tmp = counts_out.with_suffix(".tmp")
        tmp.write_text(json.dumps(TALLY.as_json(), default=_jsonable) + "\n")
        tmp.replace(counts_out)

    def keep_dumping() -> None:  # the driver reads the last dump, whatever happens at shutdown
        while True:
            time.sleep(2)
            dump()

    threading.Thread(target=keep_dumping, name="tally-dump", daemon=True).start()
    try:
        stack.LocalStack(home, template).serve()
    finally:
        dump()


def _all_table_storage() -> dict[str, dict[str, int]]:
    from moto.dynamodb.models import dynamodb_backends

    return {
        name: table_storage(table)
        for account in list(dynamodb_backends.values())
        for backend in list(account.values())
        for name, table in list(backend.tables.items())
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    return dict(value)


# ------------------------------------------------------------------ the driver
def _daemon(counts_out: Path) -> Daemon:
    """The stack's daemon command: this module's `_serve`, the counters installed before it serves."""

    def command(home: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.cost_counts",
            "_serve",
            str(home),
            str(TEMPLATE),
            str(counts_out),
        ]

    return command


def _drive(state: Any, args: argparse.Namespace, say: Any) -> dict[str, Any]:
    from chargenet_local.commands import demo_cmd
    from chargenet_shim.sim.fleet import run_sessions
    from chargenet_shim.sim.simclock import SimClock

    ids = [f"CP-{n:03d}" for n in range(1, args.chargers + 1)]
    say(f"provisioning {len(ids)} chargers, tariff and tags (the benchmark's own calls: not counted)")
    credentials = demo_cmd._provision(state, ids)
    demo_cmd._price_list(say)
    plans = [
        [p.model_copy(update={"meter_interval_s": args.meter_interval_s}) for p in charger_plans]
        for charger_plans in demo_cmd._plans(ids, args.sessions, random.Random(args.seed))
    ]
    say(
        f"running {len(ids) * args.sessions} sessions at {args.speed:g}x, MeterValues every {args.meter_interval_s} s"
    )
    started = time.monotonic()
    outcomes = asyncio.run(run_sessions(credentials, plans, SimClock(speed=args.speed)))
    truths = [o for o in outcomes if hasattr(o, "transaction_id")]
    say(f"{len(truths)}/{len(outcomes)} sessions ran; waiting for their CDRs")
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore

    cdrs = DynamoCdrStore()
    wanted = {str(t.transaction_id) for t in truths}
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    billed: set[str] = set()
    while time.monotonic() < deadline and billed != wanted:
        billed = {sid for sid in wanted if cdrs.get(sid)}
        time.sleep(1)
    time.sleep(3)  # the last invocations' records reach the tally
    return {
        "chargers": len(ids),
        "sessions_planned": len(outcomes),
        "sessions_run": len(truths),
        "sessions_billed": len(billed),
        "real_seconds": round(time.monotonic() - started, 1),
        "simulated_session_minutes": round(
            statistics.fmean([(t.stopped_at - t.started_at).total_seconds() / 60 for t in truths] or [0.0]),
            1,
        ),
    }


# ------------------------------------------------------------------ profiles for the cost model
def profiles(
    raw: dict[str, Any],
    run: dict[str, Any],
    functions: dict[str, dict[str, Any]],
    duration: str = "duration_ms",
) -> dict[str, Any]:
    """Unit profiles (cost_model.Counts) from the raw tally of one run.

    Lambda GB-s from each invocation's wall time (`duration_ms`, what Lambda bills; on the
    local stack it includes moto's latency on a loaded machine) or its CPU time (`cpu_ms`).
    """
    invocations, dynamodb = raw["invocations"], raw["dynamodb"]

    def ops_for(label: str, divisor: float, per_charger: int = 1) -> dict[str, float]:
        ops = defaultdict(float)
        for function, by_label in invocations.items():
            entry = by_label.get(label)
            if not entry:
                continue
            memory_gb = functions[function]["memory_mb"] / 1024
            ops["lambda_requests"] += entry["count"]
            ops["lambda_gb_seconds"] += sum(math.ceil(d) for d in entry.get(duration, [])) / 1000 * memory_gb
            for operation, n in entry["requests"].items():
                if operation.endswith("Publish") and operation.startswith("query"):
                    ops["sns_publishes"] += n / per_charger
                if operation.startswith("secretsmanager."):
                    ops["secrets_calls"] += n / per_charger
            # A reply is a message into IoT (Data API publish) and one delivered to the charger.
            ops["iot_messages"] += 2 * sum(iot_units(b) for b in entry["iot_publish_bytes"]) / per_charger
            ops["log_bytes"] += entry.get("log_bytes", 0)
            ops["log_lines"] += entry.get("log_lines", 0)
            units = dynamodb.get(f"{function}|{label}")
            if units:
                ops["dynamodb_read_units"] += units["rcu"] / per_charger
                ops["dynamodb_write_units"] += units["wcu"] / per_charger
                ops["dynamodb_index_write_units"] += units.get("index_wcu", 0.0) / per_charger
        if label.startswith(("ocpp:", "presence:")):
            ops["rules_triggered"] += raw["rules"].get(label, {}).get("triggered", 0)
            ops["rule_actions"] += raw["rules"].get(label, {}).get("actions", 0)
        if label == "api":
            ops["http_api_requests"] += sum(v.get("api", {}).get("count", 0) for v in invocations.values())
        return {k: round(v / divisor, 9) for k, v in sorted(ops.items()) if divisor}

    frames = raw["frames"]
    per_frame = {
        label.split(":", 1)[1]: ops_for(label, frames[label]["count"])
        for label in frames
        if label.startswith("ocpp:") and frames[label]["count"]
    }
    sessions = max(1, run["sessions_billed"] or run["sessions_run"])
    per_session_actions = ("Authorize", "StartTransaction", "StopTransaction", "StatusNotification")
    session_frames = {
        action: round(frames.get(f"ocpp:{action}", {"count": 0})["count"] / sessions, 3)
        for action in per_session_actions
    }
    # StatusNotifications a boot sends (each connector Available) are not the session's.
    boots = frames.get("ocpp:BootNotification", {"count": 0})["count"]
    statuses_at_boot = boots * 3  # connector 0 and two connectors
    session_frames["StatusNotification"] = round(
        max(0, frames.get("ocpp:StatusNotification", {"count": 0})["count"] - statuses_at_boot) / sessions, 3
    )
    presence = [label for label in frames if label.startswith("presence:")]
    presence_events = sum(frames[label]["count"] for label in presence) or 1
    per_presence: dict[str, float] = defaultdict(float)
    for label in presence:
        for k, v in ops_for(label, presence_events).items():
            per_presence[k] += v
    scheduled = {}
    for function, by_label in invocations.items():
        entry = by_label.get("schedule")
        every_s = functions[function].get("schedule_every_s")
        if not entry or not every_s:
            continue
        memory_gb = functions[function]["memory_mb"] / 1024
        units = dynamodb.get(f"{function}|schedule", {"rcu": 0, "wcu": 0})
        per_run = {
            "lambda_requests": 1.0,
            "log_bytes": round(entry.get("log_bytes", 0) / entry["count"], 3),
            "log_lines": round(entry.get("log_lines", 0) / entry["count"], 3),
            "lambda_gb_seconds": round(
                sum(math.ceil(d) for d in entry.get(duration, [])) / 1000 * memory_gb / entry["count"], 9
            ),
            "dynamodb_read_units": round(units["rcu"] / entry["count"] / run["chargers"], 9),
            "dynamodb_write_units": round(units["wcu"] / entry["count"] / run["chargers"], 9),
            "dynamodb_index_write_units": round(
                units.get("index_wcu", 0) / entry["count"] / run["chargers"], 9
            ),
        }
        scheduled[function] = {"runs_per_month": round(MONTH_S / every_s, 3), "per_run": per_run}
    custom = [m for m in raw["metrics"] if not m.startswith("AWS/")]
    template = functions["__template__"]
    return {
        "per_frame": per_frame,
        "session_frames": session_frames,
        "per_session": ops_for("stream", sessions),
        "per_presence_event": dict(per_presence),
        "scheduled": scheduled,
        "custom_metrics": len(custom),
        "alarms": template["alarms"],
        "secrets": template["secrets"],
        "timed_writes": {"last_seen": last_seen_profile(dynamodb)},
        "storage": storage_profile(raw.get("storage", {}), frames, run, template.get("tables", {})),
        "deployment": {
            **{
                k: v
                for k, v in template.items()
                if k not in ("alarms", "secrets", "tables", "table_principals")
            },
            "kms_requests_per_month": kms_requests_per_month(
                template.get("table_principals", {}), scheduled, set(invocations)
            ),
        },
    }


def last_seen_profile(dynamodb: dict[str, dict[str, float]]) -> dict[str, float]:
    """One `last_seen_at` write's units as measured; how many there are is the model's (real cadence)."""
    from chargenet.services.ingest import SEEN_WRITE_INTERVAL

    measured = [v for k, v in dynamodb.items() if k.endswith(f"|{LAST_SEEN}")]
    calls = sum(v["calls"] for v in measured)
    return {
        "every_s": int(SEEN_WRITE_INTERVAL.total_seconds()),
        # None seen (a very short run): the registry item is under 1 KB, one unit.
        "write_units": round(sum(v["wcu"] for v in measured) / calls, 6) if calls else 1.0,
        "index_write_units": round(sum(v.get("index_wcu", 0.0) for v in measured) / calls, 6)
        if calls
        else 0.0,
    }


# What makes a table grow (anything else grows with the chargers), for its steady-state size.
TABLE_GROWTH = {
    "SessionEventsTable": "MeterValues",  # an event per reading, the session's few others beside
    "HistoryTable": "StatusNotification",
    "SessionsTable": "session",
    "CdrsTable": "session",
    "TransactionKeysTable": "session",
    "PaymentsTable": "session",
}


def storage_profile(
    storage: dict[str, dict[str, int]],
    frames: dict[str, dict[str, int]],
    run: dict[str, Any],
    tables: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Bytes per growth unit of each table the run left data in. Tables whose TTL is not the
    session data retention (idempotency records, pending calls, ...) hold hours of items: left out."""
    sessions = max(1, run["sessions_billed"] or run["sessions_run"])
    out: dict[str, dict[str, Any]] = {}
    for name, stored in sorted(storage.items()):
        facts = tables.get(name, {})
        if facts.get("ttl") and not facts.get("session_data_ttl"):
            continue
        driver = TABLE_GROWTH.get(name, "charger")
        units = {
            "session": sessions,
            "charger": run["chargers"],
        }.get(driver) or frames.get(f"ocpp:{driver}", {}).get("count", 0)
        if not units:
            continue
        out[name] = {
            "bytes_per_unit": round((stored["bytes"] + stored["index_bytes"]) / units, 3),
            "driver": driver,
            "retention": "session_data" if facts.get("session_data_ttl") else "kept",
        }
    return out


def kms_requests_per_month(
    table_principals: dict[str, int], scheduled: dict[str, dict[str, Any]], invoked: set[str]
) -> float:
    """DynamoDB's requests for its table keys: one per (function, table) each cache period while in
    use; a function scheduled less often asks once per run. Fleet-wide, whatever its size: the
    functions the run invoked are in use all month (operator functions, used by people, are not)."""
    busy = MONTH_S / KMS_TABLE_KEY_CACHE_S
    return float(
        sum(
            tables * min(busy, scheduled.get(function, {}).get("runs_per_month", busy))
            for function, tables in table_principals.items()
            if function in invoked
        )
    )


def summarise_invocations(raw: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for function, by_label in raw["invocations"].items():
        for label, entry in by_label.items():
            durations = entry["duration_ms"]
            out[f"{function} {label}"] = {
                "count": entry["count"],
                "failed": entry["failed"],
                "duration_ms_median": round(statistics.median(durations), 2) if durations else None,
                "duration_ms_p90": round(sorted(durations)[int(0.9 * (len(durations) - 1))], 2)
                if durations
                else None,
                "cpu_ms_median": round(statistics.median(entry.get("cpu_ms") or [0]), 2),
                "requests": dict(entry["requests"]),
            }
    return out


def _template_facts(template_path: Path) -> dict[str, dict[str, Any]]:
    from chargenet_local.template import load

    template = load(template_path, region="us-east-1", overrides={"IotDataEndpoint": "http://127.0.0.1:9"})
    facts: dict[str, dict[str, Any]] = {
        name: {"memory_mb": spec.memory_mb} for name, spec in template.functions().items()
    }
    for schedule in template.schedules():
        facts[schedule.function]["schedule_every_s"] = schedule.every_s
    facts["__template__"] = {
        "alarms": len(template.of_type("AWS::CloudWatch::Alarm")),
        "secrets": len(template.of_type("AWS::SecretsManager::Secret")),
        **_deployment_facts(template),
    }
    return facts


def _deployment_facts(template: Any) -> dict[str, Any]:
    """The template's fleet-wide cost levers and fixtures, as the defaults resolve them."""
    functions = template.of_type("AWS::Lambda::Function")
    tables = template.of_type("AWS::DynamoDB::Table")
    tracing = {
        template.resolve(f["Properties"].get("TracingConfig", {}).get("Mode")) for f in functions.values()
    }
    retention = {
        template.resolve(g["Properties"].get("RetentionInDays"))
        for g in template.of_type("AWS::Logs::LogGroup").values()
    }
    session_data_days = template.resolve({"Ref": "SessionDataRetentionDays"})

    def customer_key(table: dict[str, Any]) -> bool:
        return bool(table["Properties"].get("SSESpecification", {}).get("KMSMasterKeyId"))

    table_facts = {
        name: {
            "ttl": bool(table["Properties"].get("TimeToLiveSpecification")),
            # The session data tables: their items carry the SessionDataRetentionDays expiry.
            "session_data_ttl": name in ("SessionEventsTable", "HistoryTable")
            and bool(table["Properties"].get("TimeToLiveSpecification")),
        }
        for name, table in tables.items()
    }
    principals = {}
    for name, spec in template.functions().items():
        named = {v for k, v in spec.environment.items() if k.endswith("_TABLE")}
        principals[name] = sum(1 for t in named if t in tables and customer_key(tables[t]))
    return {
        "tracing_mode": "Active" if "Active" in tracing else "PassThrough",
        "log_retention_days": max(int(r) for r in retention) if retention else 0,
        "session_data_retention_days": int(session_data_days),
        "dashboards": len(template.of_type("AWS::CloudWatch::Dashboard")),
        "kms_customer_keys": len(template.of_type("AWS::KMS::Key")),
        "tables": table_facts,
        "table_principals": principals,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_serve"]:
        serve(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chargers", type=int, default=6)
    parser.add_argument("--sessions", type=int, default=1, help="sessions per charger")
    parser.add_argument("--speed", type=float, default=600)
    parser.add_argument("--meter-interval-s", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep-home", action="store_true")
    parser.add_argument(
        "--reprocess", action="store_true", help="recompute summary and profile from the raw tally in --out"
    )
    args = parser.parse_args(argv)
    if args.reprocess:
        result = json.loads(args.out.read_text())
        result["invocations"] = summarise_invocations(result["raw"])
        facts = _template_facts(TEMPLATE)
        result["profile"] = profiles(result["raw"], result["run"], facts)
        result["profile_cpu"] = profiles(result["raw"], result["run"], facts, duration="cpu_ms")
        write_results(args.out, result, default=_jsonable)
        print(json.dumps(result["profile"], indent=2))
        return 0
    say = stepper(sys.stderr)
    facts = _template_facts(TEMPLATE)
    os.environ.setdefault("CHARGENET_PARAMETERS", "HeartbeatIntervalSeconds=300")
    os.environ["CHARGENET_SCHEDULE_EVERY_S"] = "10"  # scheduled functions sampled every 10 s
    with stack_home("chargenet-cost-", keep=args.keep_home) as home:
        counts_file = home / "tally.json"
        with running_stack(home, say=say, detail="instrumented", daemon=_daemon(counts_file)) as state:
            run = _drive(state, args, say)
        raw = json.loads(counts_file.read_text())
    result = {
        "generated_by": "python -m bench.cost_counts " + " ".join(argv),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "run": {**run, "meter_interval_s": args.meter_interval_s, "speed": args.speed},
        "invocations": summarise_invocations(raw),
        "raw": raw,
        "profile": profiles(raw, run, facts),
        # Lambda GB-s from the handlers' CPU time alone: what billing would be with no I/O wait.
        "profile_cpu": profiles(raw, run, facts, duration="cpu_ms"),
    }
    write_results(args.out, result, default=_jsonable)
    say(f"written to {args.out}")
    print(json.dumps(result["profile"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
