"""Lambda's event source mapping for DynamoDB streams, over moto's stream API.

moto stores stream records but nothing reads them; this polls each mapped table's
stream, applies the mapping's filter patterns, invokes the function with batches,
retries failures (only the failed items when the function reports them), and sends
what still fails to the on-failure destination, as Lambda does. Hand-written: no
library runs event source mappings outside AWS.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chargenet_local.template import StreamMappingSpec

log = logging.getLogger("chargenet.local.streams")
POLL_INTERVAL_S = 0.3

Invoke = Callable[[dict[str, Any]], Any]


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style content filtering, the subset Lambda filter criteria use: nested
    objects, lists of allowed values, and {"exists": bool}."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(_field_matches(rule, key in value, value.get(key)) for key, rule in pattern.items())
    return value in pattern if isinstance(pattern, list) else value == pattern


def _field_matches(rule: Any, present: bool, value: Any) -> bool:
    if isinstance(rule, list) and rule and isinstance(rule[0], dict) and "exists" in rule[0]:
        return present == rule[0]["exists"]
    return present and matches(rule, value)


class StreamPoller:
    def __init__(
        self,
        spec: StreamMappingSpec,
        *,
        streams: Any,
        stream_arn: str,
        invoke: Invoke,
        on_failure: Callable[[dict[str, Any]], None],
    ) -> None:
        self.spec = spec
        self._streams = streams
        self._stream_arn = stream_arn
        self._invoke = invoke
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._iterators: dict[str, str] = {}

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"stream-{self.spec.name}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for records in self._poll():
                    self._deliver(records)
            except Exception:  # keep polling: a transient moto error must not end billing
                log.exception("stream %s: poll failed", self.spec.name)
            self._stop.wait(POLL_INTERVAL_S)

    def _poll(self) -> list[list[dict[str, Any]]]:
        shards = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
        batches = []
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self._stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            response = self._streams.get_records(ShardIterator=self._iterators[shard_id], Limit=1000)
            self._iterators[shard_id] = response["NextShardIterator"]
            records = [self._with_source(r) for r in response["Records"] if self._wanted(r)]
            batches += [
                records[i : i + self.spec.batch_size] for i in range(0, len(records), self.spec.batch_size)
            ]
        return batches

    def _wanted(self, record: dict[str, Any]) -> bool:
        patterns = self.spec.filter_patterns
        return not patterns or any(matches(p, record) for p in patterns)

    def _with_source(self, record: dict[str, Any]) -> dict[str, Any]:
        # moto leaves the source out, and boto3 turns the creation time into a datetime;
        # Lambda sends the ARN and epoch seconds.
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": dynamodb, "eventSourceARN": self._stream_arn}

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        pending = records
        for attempt in range(self.spec.max_retries + 1):
            failed = self._invoke_batch(pending)
            if not failed:
                return
            pending = failed
            time.sleep(min(2.0, 0.2 * 2**attempt))
        self._on_failure(
            {
                "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": self.spec.function},
                "DDBStreamBatchInfo": {
                    "streamArn": self._stream_arn,
                    "batchSize": len(pending),
                    "startSequenceNumber": pending[0]["dynamodb"]["SequenceNumber"],
                    "endSequenceNumber": pending[-1]["dynamodb"]["SequenceNumber"],
                },
                "records": pending,
            }
        )

    def _invoke_batch(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            response = self._invoke({"Records": records})
        except Exception as exc:
            log.warning(
                "stream %s: %s failed on %d records: %s",
                self.spec.name,
                self.spec.function,
                len(records),
                exc,
            )
            return records
        if not self.spec.reports_item_failures or not isinstance(response, dict):
            return []
        failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        # Lambda retries from the first failed record on.
        first = next(
            (i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] in failed_ids), None
        )
        return [] if first is None else records[first:]


def failure_message(batch: dict[str, Any]) -> str:
    return json.dumps(batch, default=str)
