"""CloudWatch metrics on the local stack, put into moto: what AWS itself would record.

moto stores metrics but produces none. In the cloud, CloudWatch Logs turns the EMF lines
functions print (Powertools Metrics) into metrics, Lambda records Invocations and Errors
per function, and SQS reports queue depth every minute. Here the Lambda runtime hands each
invocation's EMF documents to `MetricSink`, which adds Lambda's own metrics and writes them
all with PutMetricData on a background thread; `QueueDepthSampler` samples the queues.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("chargenet.local.metrics")

LAMBDA_NAMESPACE = "AWS/Lambda"
SQS_NAMESPACE = "AWS/SQS"
MAX_DATA_PER_CALL = 1000  # PutMetricData's limit

Datum = dict[str, Any]  # one PutMetricData MetricData entry


def canonical_dimensions(dimensions: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """Dimensions in name order, for every write and every query.

    CloudWatch matches a dimension set whatever its order; moto compares the lists after a
    sort whose comparison is broken for some names, so writers and readers agree on one order.
    """
    return sorted(({"Name": d["Name"], "Value": d["Value"]} for d in dimensions), key=lambda d: d["Name"])


# ------------------------------------------------------------------ EMF
def split_emf(output: str) -> tuple[list[dict[str, Any]], str]:
    """A function's stdout: its EMF documents (JSON lines with `_aws`), and everything else."""
    documents, other = [], []
    for line in output.splitlines(keepends=True):
        document = _emf_document(line)
        if document is None:
            other.append(line)
        else:
            documents.append(document)
    return documents, "".join(other)


def _emf_document(line: str) -> dict[str, Any] | None:
    if not line.lstrip().startswith("{") or '"_aws"' not in line:
        return None
    try:
        document = json.loads(line)
    except json.JSONDecodeError:
        return None
    is_emf = isinstance(document, dict) and isinstance(document.get("_aws"), dict)
    return document if is_emf and "CloudWatchMetrics" in document["_aws"] else None


def emf_metric_data(document: dict[str, Any]) -> list[tuple[str, Datum]]:
    """The metrics CloudWatch extracts from one EMF document, as (namespace, datum).

    Every metric is recorded once per dimension set of its directive (an empty or absent
    set list means no dimensions). Raises ValueError for a document CloudWatch would reject.
    """
    try:
        metadata = document["_aws"]
        at = datetime.fromtimestamp(metadata["Timestamp"] / 1000, UTC)
        data = []
        for directive in metadata["CloudWatchMetrics"]:
            dimension_sets = directive.get("Dimensions") or [[]]
            for metric in directive["Metrics"]:
                value = _emf_value(document[metric["Name"]])
                for keys in dimension_sets:
                    datum: Datum = {
                        "MetricName": metric["Name"],
                        "Dimensions": canonical_dimensions(
                            {"Name": k, "Value": str(document[k])} for k in keys
                        ),
                        "Timestamp": at,
                        "Unit": metric.get("Unit") or "None",
                        ("Values" if isinstance(value, list) else "Value"): value,
                    }
                    data.append((directive["Namespace"], datum))
        return data
    except (KeyError, TypeError) as invalid:
        raise ValueError(f"not a valid EMF document ({invalid!r})") from None


def _emf_value(value: Any) -> float | list[float]:
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise TypeError(f"metric value {value!r} is not a number or a list of numbers")
    return [float(v) for v in values] if isinstance(value, list) else float(value)


# ------------------------------------------------------------------ Lambda and SQS metrics
def invocation_data(function: str, failed: bool, at: datetime) -> list[Datum]:
    """Lambda's per-function Invocations and Errors (0 or 1) for one invocation."""
    dimensions = [{"Name": "FunctionName", "Value": function}]
    return [
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": at, "Unit": "Count", "Value": value}
        for name, value in (("Invocations", 1.0), ("Errors", 1.0 if failed else 0.0))
    ]


def queue_depth_datum(queue_name: str, visible: int, at: datetime) -> Datum:
    return {
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
        "Timestamp": at,
        "Unit": "Count",
        "Value": float(visible),
    }


class MetricSink:
    """Writes metrics to moto off the callers' threads (invocation callbacks must not wait on HTTP)."""

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self._pending: queue.SimpleQueue[tuple[str, Datum]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metric-sink", daemon=True)

    def put(self, namespace: str, data: Iterable[Datum]) -> None:
        for datum in data:
            self._pending.put((namespace, datum))

    def record_invocation(self, function: str, failed: bool, emf: Iterable[dict[str, Any]]) -> None:
        """One finished invocation: Lambda's metrics for it and the metrics its EMF output declares."""
        self.put(LAMBDA_NAMESPACE, invocation_data(function, failed, datetime.now(UTC)))
        for document in emf:
            try:
                for namespace, datum in emf_metric_data(document):
                    self.put(namespace, [datum])
            except ValueError as invalid:  # CloudWatch keeps such a line as a plain log line
                log.warning("%s printed an EMF document CloudWatch would drop: %s", function, invalid)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop, writing what is still pending."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._write(self._drain())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._pending.get(timeout=0.5)
            except queue.Empty:
                continue
            self._write([first, *self._drain()])

    def _drain(self) -> list[tuple[str, Datum]]:
        items = []
        while True:
            try:
                items.append(self._pending.get_nowait())
            except queue.Empty:
                return items

    def _write(self, items: list[tuple[str, Datum]]) -> None:
        by_namespace: dict[str, list[Datum]] = defaultdict(list)
        for namespace, datum in items:
            by_namespace[namespace].append(datum)
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), MAX_DATA_PER_CALL):
                try:
                    self._cloudwatch.put_metric_data(
                        Namespace=namespace, MetricData=data[start : start + MAX_DATA_PER_CALL]
                    )
                except Exception:  # a lost sample must not stop the sink
                    log.exception("putting %s metrics into moto failed", namespace)


class QueueDepthSampler:
    """SQS's ApproximateNumberOfMessagesVisible per queue, sampled at each call."""

    def __init__(self, sqs: Any, queue_urls: Iterable[str], sink: MetricSink) -> None:
        self._sqs, self._sink = sqs, sink
        self._queue_urls = list(queue_urls)

    def sample(self) -> None:
        at = datetime.now(UTC)
        for url in self._queue_urls:
            # The queue attribute behind the ApproximateNumberOfMessagesVisible metric.
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            visible = int(attributes["ApproximateNumberOfMessages"])
            self._sink.put(SQS_NAMESPACE, [queue_depth_datum(url.rsplit("/", 1)[-1], visible, at)])


class Periodic:
    """Runs `step` every `every_s` seconds on its own thread until stopped; a failing step is logged."""

    def __init__(self, name: str, every_s: float, step: Callable[[], None]) -> None:
        self._name, self._every_s, self._step = name, every_s, step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._step()
            except Exception:  # keep going: moto may be busy or stopping
                log.exception("%s failed", self._name)


# ------------------------------------------------------------------ retention
# CloudWatch keeps metrics for 15 months; the local stack keeps 15 minutes. Only the alarm evaluator
# reads them back (the template's alarms look back 5 minutes at most), moto scans every datum on
# each read, and every datum kept is pickled again in each snapshot (chargenet_local.persistence):
# a fleet's invocations put tens of datapoints a second.
METRICS_KEPT_S = 900
TRIM_EVERY_S = 60.0


def trim_metrics(backend: Any, now: datetime) -> int:
    """Drop moto's datapoints older than METRICS_KEPT_S from a CloudWatch backend; how many went."""
    cutoff = now.timestamp() - METRICS_KEPT_S
    kept = [datum for datum in backend.metric_data if _epoch_s(datum.timestamp) >= cutoff]
    dropped = len(backend.metric_data) - len(kept)
    backend.metric_data = kept
    return dropped


def _epoch_s(moment: datetime) -> float:
    # moto stamps its own datapoints naive UTC; PutMetricData's are aware.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
