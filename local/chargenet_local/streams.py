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
# After a poll that found records, the next comes soon (what arrived meanwhile is one batch); after
# empty ones the wait doubles up to IDLE_POLL_S: an idle stack's pollers cost moto little, and a
# record after a quiet spell waits at most IDLE_POLL_S (Lambda polls each shard about 4 times a second).
BUSY_POLL_S = 0.3
IDLE_POLL_S = 0.8

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
        positions: dict[str, str] | None = None,
    ) -> None:
        """`positions`: the last sequence number handled in each shard, from a stack that stopped
        (`positions()`): polling goes on after it instead of from the stream's start."""
        self.spec = spec
        self._streams = streams
        self._stream_arn = stream_arn
        self._invoke = invoke
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._iterators: dict[str, str] = {}
        self._positions: dict[str, str] = dict(positions or {})
        self._positions_lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"stream-{self.spec.name}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def positions(self) -> dict[str, str]:
        """The last sequence number whose batch was handled (delivered or sent to on-failure), by shard."""
        with self._positions_lock:
            return dict(self._positions)

    def _run(self) -> None:
        shard_ids: list[str] = []
        wait_s = BUSY_POLL_S
        while not self._stop.wait(wait_s):
            try:
                # A table's stream keeps its shards while it lives: described once, again after an error.
                shard_ids = shard_ids or self._shard_ids()
                found = sum(self._poll_shard(shard_id) for shard_id in shard_ids)
            except Exception:  # keep polling: a transient moto error must not end billing
                log.exception("stream %s: poll failed", self.spec.name)
                shard_ids, found = [], 0
            wait_s = BUSY_POLL_S if found else min(wait_s * 2, IDLE_POLL_S)

    def _shard_ids(self) -> list[str]:
        description = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description["Shards"]]

    def _poll_shard(self, shard_id: str) -> int:
        """Handles what the shard has after the last position; how many records there were."""
        response = self._streams.get_records(ShardIterator=self._iterator(shard_id), Limit=1000)
        self._iterators[shard_id] = response["NextShardIterator"]
        if not response["Records"]:
            return 0
        records = [self._with_source(r) for r in response["Records"] if self._wanted(r)]
        for start in range(0, len(records), self.spec.batch_size):
            self._deliver(records[start : start + self.spec.batch_size])
        # Only now: a snapshot taken meanwhile keeps the old position, and a restart redelivers
        # (at least once, as Lambda); the filtered-out records are passed too.
        with self._positions_lock:
            self._positions[shard_id] = response["Records"][-1]["dynamodb"]["SequenceNumber"]
        return len(response["Records"])

    def _iterator(self, shard_id: str) -> str:
        if shard_id not in self._iterators:
            position = self._positions.get(shard_id)
            where = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": position}
                if position
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            self._iterators[shard_id] = self._streams.get_shard_iterator(
                StreamArn=self._stream_arn, ShardId=shard_id, **where
            )["ShardIterator"]
        return self._iterators[shard_id]

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


def trim_handled(table: Any, handled_up_to: int) -> int:
    """Drop a moto table's stream records up to `handled_up_to` (a sequence number every mapping of
    the table has handled); how many went. moto keeps every record for as long as the table lives
    (DynamoDB keeps 24 hours), so the stack's memory and each snapshot would grow with every write.
    moto numbers a record by its index after the shard's starting number: the start moves on by as
    many records as are dropped, so every sequence number and iterator stays what it was."""
    shard = table.stream_shard
    if shard is None:
        return 0
    count = max(0, min(handled_up_to - shard.starting_sequence_number + 1, len(shard.items)))
    del shard.items[:count]
    shard.starting_sequence_number += count
    return count
