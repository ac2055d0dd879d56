"""Runs the template's functions on this machine, as Lambda's async invocation would.

Each function gets its own worker processes with exactly its environment from the
template (process-wide os.environ is why they cannot share a process), imports its
handler once (the cold start) and serves invocations. A failed invocation is retried
twice, then goes to the function's dead-letter queue, as Lambda does. Every invocation is
reported to an observer with the EMF documents the function printed (Powertools Metrics),
which CloudWatch would have turned into metrics.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import multiprocessing
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from chargenet_local import fault_injection
from chargenet_local.children import die_with_parent
from chargenet_local.metrics import split_emf
from chargenet_local.template import ACCOUNT_ID, FunctionSpec

ASYNC_RETRIES = 2
RETRY_DELAY_S = 0.5

_handler: Callable[[dict[str, Any], Any], Any] | None = None
_spec: FunctionSpec | None = None


@dataclass
class LambdaContext:
    """The attributes Powertools and handlers read from Lambda's context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _init_worker(spec: FunctionSpec, environment: dict[str, str]) -> None:
    global _handler, _spec
    die_with_parent()
    os.environ.update(environment)
    # Inert unless a chaos run writes a plan: the hooks must be on the clients the import makes.
    fault_injection.install(spec.logical_id)
    sys.path.insert(0, str(spec.code_dir))
    module_name, function_name = spec.handler.rsplit(".", 1)
    _handler = getattr(importlib.import_module(module_name), function_name)
    _spec = spec


@dataclass(frozen=True)
class Invocation:
    """What one invocation left behind, as Lambda's service sees it."""

    result: Any
    error: str | None  # the exception and its traceback, when the handler raised
    emf: tuple[dict[str, Any], ...]  # the EMF documents it printed


# (function, failed, EMF documents) for each finished invocation, retries included.
InvocationObserver = Callable[[str, bool, Sequence[dict[str, Any]]], None]


def _invoke_in_worker(event: dict[str, Any]) -> Invocation:
    assert _handler is not None and _spec is not None
    region = os.environ.get("AWS_REGION", "us-east-1")
    context = LambdaContext(
        function_name=_spec.logical_id,
        memory_limit_in_mb=_spec.memory_mb,
        invoked_function_arn=f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{_spec.logical_id}",
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + fault_injection.timeout_s(_spec.timeout_s),
    )
    result, error = None, None
    # Powertools prints EMF to stdout (its Logger keeps the stream it started with).
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            result = _handler(event, context)
        except fault_injection.SandboxCrash as crash:
            crash.retry_after_s = context.get_remaining_time_in_millis() / 1000
            raise
        except Exception as exc:
            # Carry the traceback text across the process boundary for the stack log.
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    emf, other = split_emf(printed.getvalue())
    sys.stdout.write(other)
    sys.stdout.flush()
    return Invocation(result, error, tuple(emf))


def _noop() -> None:
    pass


@dataclass(frozen=True)
class InvocationFailure:
    function: str
    event: dict[str, Any]
    error: str


class LocalFunction:
    def __init__(
        self,
        spec: FunctionSpec,
        environment: dict[str, str],
        on_failure: Callable[[InvocationFailure], None],
        *,
        on_invocation: InvocationObserver,
        workers: int = 2,
    ) -> None:
        self.spec = spec
        self._on_failure = on_failure
        self._on_invocation = on_invocation
        self._workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(spec, environment),
        )

    def warm(self) -> list[Future[None]]:
        """Start the workers, each importing the handler now rather than on the first event.

        Returns at once: the stack warms every function together and waits on the futures.
        """
        return [self._pool.submit(_noop) for _ in range(self._workers)]

    def invoke(self, event: dict[str, Any]) -> Any:
        """Synchronous (RequestResponse) invocation: the result, or the error raised."""
        future = self._pool.submit(_invoke_in_worker, event)
        future.exception(timeout=self.spec.timeout_s + 30)  # wait; TimeoutError if the worker hangs
        invocation = self._observe(future)
        if invocation.error is not None:
            raise RuntimeError(invocation.error)
        return invocation.result

    def invoke_async(self, event: dict[str, Any], attempt: int = 0) -> None:
        """Event invocation, as IoT rules do: retried twice, then dead-lettered."""
        future = self._pool.submit(_invoke_in_worker, event)
        future.add_done_callback(lambda done: self._settle(done, event, attempt))

    def _observe(self, done: Future[Invocation]) -> Invocation:
        crash = done.exception()  # the worker process died or the result could not come back
        invocation = Invocation(None, f"{type(crash).__name__}: {crash}", ()) if crash else done.result()
        self._on_invocation(self.spec.logical_id, invocation.error is not None, invocation.emf)
        return invocation

    def _settle(self, done: Future[Invocation], event: dict[str, Any], attempt: int) -> None:
        if done.cancelled():
            return  # the stack is stopping
        error = self._observe(done).error
        if error is None:
            return
        if attempt < ASYNC_RETRIES:
            delay = RETRY_DELAY_S * (attempt + 1)
            if isinstance(crash := done.exception(), fault_injection.SandboxCrash):
                # Lambda retries a dead sandbox a minute later at the earliest: never before its
                # deadline, which is when what it left in progress (Powertools idempotency) expires.
                delay = max(delay, crash.retry_after_s + RETRY_DELAY_S)
            # Not a sleep: this callback runs on the pool's management thread.
            threading.Timer(delay, self.invoke_async, (event, attempt + 1)).start()
            return
        self._on_failure(InvocationFailure(self.spec.logical_id, event, error))

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


def dead_letter_body(failure: InvocationFailure) -> str:
    """Lambda sends the event itself as the DLQ message body."""
    return json.dumps(failure.event)
