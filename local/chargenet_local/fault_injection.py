"""Failures injected into the local functions' DynamoDB calls, for the chaos run (bench/chaos.py).

Local only, and invisible to the product: the Lambda runtime's workers (lambda_runtime.py)
install botocore event hooks on every DynamoDB client a function creates, and the hooks read
a plan the harness writes (`activate`) at every call, so faults start and stop mid-run.

* throttling: `before-send` answers an attempt with DynamoDB's own
  ProvisionedThroughputExceededException (HTTP 400), so botocore's retry logic and the
  product's error handling see exactly what AWS would send;
* crash before a write: `before-call` of a write kills the invocation before the request;
* crash after a write: `after-call` of a successful write kills it once DynamoDB has applied
  it, so the redelivery has to be idempotent.

A crash is `SandboxCrash`, a BaseException: what a Lambda timeout or an out-of-memory kill
does to a handler, which no `except Exception` in the product can swallow. The runtime sees
the invocation fail and retries it as Lambda does (twice, then the dead-letter queue; stream
batches by the mapping's retries).

The plan is keyed by the stack daemon's pid (the workers' parent) because the workers get the
template's environment, not the stack's home. Every injection is appended to a log beside
the plan, which `injected` tallies.

Stripe's webhooks, too (`WebhookPlan`, read by chargenet_local.stripe_webhooks in the stack
daemon itself): each event sent twice, some copies late, as Stripe's at-least-once delivery
does, so the product's webhook handling must not care about repeats or their order.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import tempfile
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
THROTTLE = "throttle"
CRASH_BEFORE_WRITE = "crash_before_write"
CRASH_AFTER_WRITE = "crash_after_write"
_THROTTLE_ERROR = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"


class FaultPlan(BaseModel):
    """What to inject, as probabilities per DynamoDB call (throttling: per attempt)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The stack's moto endpoint: a plan left behind by a killed run never arms a later stack that
    # happens to get the same daemon pid.
    stack: str
    seed: int = 0
    functions: frozenset[str] | None = Field(default=None, description="logical ids; unset: every function")
    throttle: float = Field(default=0.0, ge=0, le=1)
    crash_before_write: float = Field(default=0.0, ge=0, le=1)
    crash_after_write: float = Field(default=0.0, ge=0, le=1)
    # The functions run as if their Timeout were this (never longer than the template's): what a
    # crash left in progress (Powertools idempotency) expires, and so the crash is retried, sooner.
    function_timeout_s: float | None = Field(default=None, gt=0)


class SandboxCrash(BaseException):
    """The function's sandbox died mid-invocation."""

    # Set by the runtime: when what the invocation left in progress expires (its deadline).
    retry_after_s: float = 0.0


class WebhookPlan(BaseModel):
    """Stripe webhook deliveries to break: shares of the events, each drawn per event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The stack's HTTP API front: a plan left behind by a killed run never reaches another stack's.
    api_url: str
    seed: int = 0
    duplicate: float = Field(default=0.0, ge=0, le=1)  # sent twice
    late: float = Field(default=0.0, ge=0, le=1)  # each copy held back, up to late_s
    late_s: float = Field(default=5.0, gt=0)


def control_path(stack_pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"chargenet-faults-{stack_pid}.json"


def _webhook_control_path(stack_pid: int) -> Path:
    return control_path(stack_pid).with_name(f"chargenet-webhook-faults-{stack_pid}.json")


def _log_path(stack_pid: int) -> Path:
    return control_path(stack_pid).with_suffix(".log")


def activate(stack_pid: int, plan: FaultPlan) -> None:
    """Start injecting into the functions of the stack whose daemon is `stack_pid`."""
    _write(control_path(stack_pid), plan)


def activate_webhooks(stack_pid: int, plan: WebhookPlan) -> None:
    """Start duplicating and delaying the Stripe webhooks the stack's daemon sends."""
    _write(_webhook_control_path(stack_pid), plan)


def _write(path: Path, plan: BaseModel) -> None:
    staged = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    staged.write_text(plan.model_dump_json())
    staged.replace(path)  # atomic: a reader never sees half a plan


def deactivate(stack_pid: int) -> None:
    control_path(stack_pid).unlink(missing_ok=True)
    _webhook_control_path(stack_pid).unlink(missing_ok=True)


def injected(stack_pid: int) -> Counter[tuple[str, str]]:
    """(function, kind) -> injections so far."""
    path = _log_path(stack_pid)
    if not path.exists():
        return Counter()
    entries = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return Counter((entry["function"], entry["kind"]) for entry in entries)


def forget(stack_pid: int) -> None:
    """Stop injecting and drop the tally."""
    deactivate(stack_pid)
    _log_path(stack_pid).unlink(missing_ok=True)


def _record(log: Path, function: str, kind: str) -> None:
    with log.open("a") as lines:
        lines.write(json.dumps({"function": function, "kind": kind}) + "\n")


P = TypeVar("P", bound=BaseModel)


class _Planned(Generic[P]):
    """A plan file re-read only when it changed, with the seeded dice its injections are drawn with
    (each drawn injection appended to the log `injected` tallies)."""

    def __init__(self, control: Path, model: type[P], log: Path, source: str, seed_of: Any) -> None:
        self._control, self._model, self._log, self._source = control, model, log, source
        self._seed_of = seed_of  # the plan -> the rng's seed
        self._plan: P | None = None
        self._version: int | None = None
        self.rng = random.Random()

    def current(self) -> P | None:
        try:
            version = self._control.stat().st_mtime_ns
        except FileNotFoundError:
            self._plan, self._version = None, None
            return None
        if version != self._version:
            self._plan = self._model.model_validate_json(self._control.read_text())
            self.rng.seed(self._seed_of(self._plan))
            self._version = version
        return self._plan

    def draw(self, kind: str, probability: float) -> bool:
        if probability <= 0 or self.rng.random() >= probability:
            return False
        _record(self._log, self._source, kind)
        return True


class WebhookFaults:
    """In the stack daemon: when to deliver each copy of a webhook event, as the plan says."""

    SOURCE = "stripe webhooks"

    def __init__(self, stack_pid: int) -> None:
        self._planned = _Planned(
            _webhook_control_path(stack_pid), WebhookPlan, _log_path(stack_pid), self.SOURCE, lambda p: p.seed
        )
        self._lock = threading.Lock()

    def delays_s(self, endpoint_url: str) -> list[float]:
        """One delay per copy to send (0: now); just [0.0] unless a plan for this endpoint says more."""
        with self._lock:
            plan, dice = self._planned.current(), self._planned
            if plan is None or not endpoint_url.startswith(plan.api_url.rstrip("/") + "/"):
                return [0.0]
            copies = 2 if dice.draw("duplicated", plan.duplicate) else 1
            return [
                dice.rng.uniform(0, plan.late_s) if dice.draw("late", plan.late) else 0.0
                for _ in range(copies)
            ]


class _Body:
    """The raw stream botocore reads a response body from."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Any:
        yield self._content


class _Injector:
    def __init__(self, function: str, stack_pid: int) -> None:
        self._function = function
        # Each worker its own sequence, the same for the same seed and spawn order.
        self._planned = _Planned(
            control_path(stack_pid),
            FaultPlan,
            _log_path(stack_pid),
            function,
            lambda plan: f"{plan.seed}:{function}:{multiprocessing.current_process().name}",
        )
        self._draw = self._planned.draw

    def timeout_s(self, configured: float) -> float:
        plan = self._current()
        if plan is None or plan.function_timeout_s is None:
            return configured
        return min(configured, plan.function_timeout_s)

    def attach(self, events: Any) -> None:
        events.register("before-send.dynamodb", self._before_send)
        events.register("before-call.dynamodb", self._before_call)
        events.register("after-call.dynamodb", self._after_call)

    def _current(self) -> FaultPlan | None:
        plan = self._planned.current()
        if plan is None or plan.stack != os.environ.get("AWS_ENDPOINT_URL"):
            return None
        if plan.functions is not None and self._function not in plan.functions:
            return None
        return plan

    def _before_send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse, HeadersDict

        plan = self._current()
        if plan is None or not self._draw(THROTTLE, plan.throttle):
            return None
        body = {"__type": _THROTTLE_ERROR, "message": "injected: the table's throughput is exceeded"}
        headers = HeadersDict(
            {"x-amzn-RequestId": uuid.uuid4().hex, "Content-Type": "application/x-amz-json-1.0"}
        )
        return AWSResponse(request.url, 400, headers, _Body(json.dumps(body).encode()))

    def _before_call(self, model: Any, **_: Any) -> None:
        plan = self._current()
        if (
            plan
            and model.name in WRITE_OPERATIONS
            and self._draw(CRASH_BEFORE_WRITE, plan.crash_before_write)
        ):
            raise SandboxCrash(f"injected: {self._function} died before {model.name}")

    def _after_call(self, http_response: Any, model: Any, **_: Any) -> None:
        plan = self._current()
        written = model.name in WRITE_OPERATIONS and http_response.status_code < 300
        if plan and written and self._draw(CRASH_AFTER_WRITE, plan.crash_after_write):
            raise SandboxCrash(f"injected: {self._function} died after {model.name}")


_installed: _Injector | None = None


def timeout_s(configured: float) -> float:
    """In a function's worker: the timeout this invocation runs with (a plan may shorten it)."""
    return _installed.timeout_s(configured) if _installed else configured


def install(function: str) -> None:
    """In a function's worker, before its handler is imported: hook every DynamoDB client it makes."""
    import botocore.session

    global _installed
    injector = _installed = _Injector(function, os.getppid())
    create_client = botocore.session.Session.create_client

    def hooked(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = create_client(session, service_name, *args, **kwargs)
        if service_name == "dynamodb":
            injector.attach(client.meta.events)
        return client

    botocore.session.Session.create_client = hooked  # type: ignore[method-assign]
