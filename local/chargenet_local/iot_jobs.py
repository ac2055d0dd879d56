"""AWS IoT Jobs' device MQTT API (StartNextPendingJobExecution, UpdateJobExecution, notify-next)
on mosquitto, over the jobs and executions moto's IoT backend holds in this (the stack's) process.

The stack's backend connection listens on `$aws/things/+/jobs/start-next` and
`$aws/things/+/jobs/+/update` and answers on `.../accepted` or `.../rejected` with IoT's payloads
and error codes, echoing the request's clientToken. `attach()` wraps moto's CreateJob, CancelJob
and CancelJobExecution so the control plane's ordinary boto3 calls (the CLI's) publish
`$aws/things/<thing>/jobs/notify-next` when a thing's next pending execution changes, as IoT does;
an execution turning terminal publishes it too, with the thing's next execution or none.

What moto lacks and this keeps: a real versionNumber (1 at creation, +1 on each accepted change;
moto says 123), executionNumber 1, startedAt set when the execution starts, an existing job id
refused (moto would overwrite its executions), CancelJob cancelling the job's QUEUED executions
(and IN_PROGRESS ones with force), and a terminal execution refused by CancelJobExecution.

At least once, for the device side (chargenet_shim.jobs): a repeated start-next returns the same
IN_PROGRESS execution, unchanged; a repeated terminal update is rejected InvalidStateTransition with
the execution's state in `executionState`: a device that sees its own terminal status there must
treat the update as done.

Local differences:
- `${aws:iot:s3-presigned-url:URL}` and `${aws:iot:s3-presigned-url-v2:URL}` placeholders are
  replaced with a URL pre-signed by the stack's local credentials against moto's S3 (for v2, at the
  object version its URL-encoded `%3FversionId%3D` names): the job's presignedUrlConfig roleArn is
  not assumed, only its expiresInSec is used (default 3600).
- mosquitto delivers a reply to every subscriber of its topic; the broker's ACL keeps each
  charger to its own `$aws/things/<id>/jobs/...` topics, so only the charger reads its replies.
- Targets must be things (no thing groups); documentSource is refused (the document is inline);
  rollout rates, abort rules and timeouts are recorded by moto but not enforced.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("chargenet.local.iot_jobs")

START_NEXT_TOPIC = "$aws/things/+/jobs/start-next"
UPDATE_TOPIC = "$aws/things/+/jobs/+/update"
_START_NEXT = re.compile(r"^\$aws/things/([^/]+)/jobs/start-next$")
_UPDATE = re.compile(r"^\$aws/things/([^/]+)/jobs/([^/]+)/update$")
_PLACEHOLDER = re.compile(r"\$\{aws:iot:s3-presigned-url(?:-v2)?:([^}]+)\}")
# v2's object URL carries the version as a URL-encoded query (`?versionId=` would end the URL).
_VERSION_QUERY = re.compile(r"%3FversionId%3D(.+)$")
_S3_HOST = re.compile(r"^s3(\.[a-z0-9-]+)?\.amazonaws\.com$")

QUEUED, IN_PROGRESS, CANCELED = "QUEUED", "IN_PROGRESS", "CANCELED"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", CANCELED, "TIMED_OUT", "REMOVED"})
DEVICE_STATUSES = frozenset({IN_PROGRESS, "SUCCEEDED", "FAILED", "REJECTED"})
DEFAULT_URL_EXPIRY_S = 3600
URL_EXPIRY_RANGE_S = (60, 3600)


class Rejected(Exception):
    """A Jobs API error: `{code, message, clientToken, timestamp[, executionState]}` on `/rejected`."""

    def __init__(self, code: str, message: str, execution_state: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.execution_state = execution_state


class IotJobs:
    def __init__(
        self,
        *,
        backend: Callable[[], Any],
        s3: Any,
        publish: Callable[[str, bytes], None],
    ) -> None:
        """`backend` returns moto's IoTBackend of the stack's account and region; `s3` is a boto3 S3
        client of the stack (SigV4) that pre-signs package URLs."""
        self._backend = backend
        self._s3 = s3
        self._publish = publish
        # moto serves on several threads and awscrt delivers on its own: one lock over executions.
        self._lock = threading.Lock()
        # One worker: replies and notifications leave in the order they were decided, and never
        # on awscrt's thread (a QoS 1 publish waits for the broker's PUBACK on that thread).
        self._workers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iot-jobs")
        self._detach: Callable[[], None] | None = None

    @property
    def request_topics(self) -> list[str]:
        return [START_NEXT_TOPIC, UPDATE_TOPIC]

    def on_message(self, topic: str, payload: bytes) -> None:
        self._workers.submit(self.answer, topic, payload)

    def stop(self) -> None:
        if self._detach is not None:
            self._detach()
        self._workers.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------ the control plane
    def attach(self) -> None:
        """Wrap moto's IoTBackend job methods in this process (undone by `stop`)."""
        from moto.iot.exceptions import (
            InvalidRequestException,
            InvalidStateTransitionException,
            ResourceAlreadyExistsException,
            ResourceNotFoundException,
        )
        from moto.iot.models import IoTBackend

        originals = {
            name: getattr(IoTBackend, name) for name in ("create_job", "cancel_job", "cancel_job_execution")
        }

        def create_job(backend: Any, job_id: str, targets: list[str], **kwargs: Any) -> Any:
            if job_id in backend.jobs:
                job = backend.jobs[job_id]
                raise ResourceAlreadyExistsException(f"job {job_id} already exists", job_id, job.job_arn)
            try:
                _check_job(
                    kwargs.get("document_source"), kwargs.get("document"), kwargs.get("presigned_url_config")
                )
            except ValueError as invalid:
                raise InvalidRequestException(str(invalid)) from invalid
            things = [_thing_name(arn) for arn in targets]
            with self._changing(backend, things):
                created = originals["create_job"](backend, job_id=job_id, targets=targets, **kwargs)
                for thing in things:
                    execution = backend.job_executions[(job_id, thing)]
                    execution.version_number = execution.execution_number = 1
            return created

        def cancel_job(backend: Any, job_id: str, reason_code: str, comment: str, force: bool) -> Any:
            executions = [(key, e) for key, e in backend.job_executions.items() if key[0] == job_id]
            with self._changing(backend, [thing for (_, thing), _ in executions]):
                job = originals["cancel_job"](backend, job_id, reason_code, comment, force)
                for _, execution in executions:
                    if execution.status == QUEUED or (execution.status == IN_PROGRESS and force):
                        _change(execution, CANCELED)
            return job

        def cancel_job_execution(backend: Any, job_id: str, thing_name: str, force: bool) -> None:
            with self._changing(backend, [thing_name]):
                execution = backend.job_executions.get((job_id, thing_name))
                if execution is None:
                    raise ResourceNotFoundException(f"no execution of job {job_id} for {thing_name}")
                if execution.status in TERMINAL:
                    raise InvalidStateTransitionException(f"the execution is already {execution.status}")
                originals["cancel_job_execution"](backend, job_id, thing_name, force)
                execution.version_number += 1
                execution.last_updated_at = _utcnow()

        IoTBackend.create_job = create_job  # type: ignore[method-assign]
        IoTBackend.cancel_job = cancel_job  # type: ignore[method-assign]
        IoTBackend.cancel_job_execution = cancel_job_execution  # type: ignore[method-assign]

        def detach() -> None:
            for name, original in originals.items():
                setattr(IoTBackend, name, original)

        self._detach = detach

    @contextmanager
    def _changing(self, backend: Any, things: list[str]) -> Iterator[None]:
        """Around a control-plane change: notify-next to each thing whose next pending execution
        it changed (nothing when the change fails)."""
        things = list(dict.fromkeys(things))
        with self._lock:
            before = {thing: _pending_id(backend, thing) for thing in things}
            yield
            changes = [
                (thing, self._notify_next(backend, thing))
                for thing in things
                if _pending_id(backend, thing) != before[thing]
            ]
        rendered = [self._render_notify(backend, thing, view) for thing, view in changes]
        for topic, payload in rendered:
            self._workers.submit(self._publish, topic, payload)

    # ------------------------------------------------------------------ requests
    def answer(self, topic: str, payload: bytes) -> None:
        """Answer one device request (on the worker; tests call it directly)."""
        client_token: Any = None
        outcome_topic, reply = topic, {}
        try:
            request = _parse(payload)
            client_token = request.get("clientToken")
            if client_token is not None and not isinstance(client_token, str):
                client_token = None
                raise Rejected("InvalidRequest", "clientToken must be a string")
            if match := _START_NEXT.match(topic):
                reply, notify = self._start_next(match.group(1), request)
            elif match := _UPDATE.match(topic):
                reply, notify = self._update(match.group(1), match.group(2), request)
            else:
                raise Rejected("InvalidTopic", f"{topic} is not a Jobs API topic")
            outcome_topic += "/accepted"
        except Rejected as rejected:
            notify = []
            reply = {"code": rejected.code, "message": str(rejected)}
            if rejected.execution_state is not None:
                reply["executionState"] = rejected.execution_state
            outcome_topic += "/rejected"
        except Exception as exc:  # the device gets an answer; the stack log gets the cause
            log.exception("jobs request on %s failed", topic)
            notify = []
            reply = {"code": "InternalError", "message": type(exc).__name__}
            outcome_topic += "/rejected"
        reply["timestamp"] = int(time.time())
        if client_token is not None:
            reply["clientToken"] = client_token
        self._publish(outcome_topic, json.dumps(reply).encode())
        for notify_topic, notify_payload in notify:
            self._publish(notify_topic, notify_payload)

    def _start_next(
        self, thing: str, request: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
        details = _status_details(request.get("statusDetails"))
        backend = self._backend()
        with self._lock:
            if not any(t.thing_name == thing for t in list(backend.things.values())):
                raise Rejected("ResourceNotFound", f"thing {thing} does not exist")
            execution = _next_pending(backend, thing)
            if execution is None:
                return {}, []
            if execution.status == QUEUED:
                _change(execution, IN_PROGRESS, details)
            view = self._execution_view(backend, execution, thing)
        return {"execution": self._with_urls(backend, view)}, []

    def _update(
        self, thing: str, job_id: str, request: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
        status = request.get("status")
        if status not in DEVICE_STATUSES:
            raise Rejected("InvalidRequest", f"status must be one of {', '.join(sorted(DEVICE_STATUSES))}")
        details = _status_details(request.get("statusDetails"))
        expected = request.get("expectedVersion")
        if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
            raise Rejected("InvalidRequest", "expectedVersion must be an integer")
        backend = self._backend()
        with self._lock:
            execution = backend.job_executions.get((job_id, thing))
            if execution is None:
                raise Rejected("ResourceNotFound", f"no execution of job {job_id} for {thing}")
            if expected is not None and expected != execution.version_number:
                raise Rejected("VersionMismatch", "expectedVersion is not current", _state(execution))
            if execution.status in TERMINAL:
                raise Rejected(
                    "InvalidStateTransition",
                    f"the execution is already {execution.status}",
                    _state(execution),
                )
            _change(execution, status, details)
            reply: dict[str, Any] = {"executionState": _state(execution)}
            if request.get("includeJobDocument") is True:
                reply["jobDocument"] = json.loads(backend.jobs[job_id].document)
            # After a terminal update IoT names the thing's next execution, or says none is left.
            next_view = self._notify_next(backend, thing) if status in TERMINAL else None
        if "jobDocument" in reply:
            reply["jobDocument"] = self._substitute(backend.jobs[job_id], reply["jobDocument"])
        notify = [self._render_notify(backend, thing, next_view)] if status in TERMINAL else []
        return reply, notify

    # ------------------------------------------------------------------ notify-next
    def _notify_next(self, backend: Any, thing: str) -> dict[str, Any] | None:
        """The thing's next pending execution as notify-next shows it (under the lock)."""
        execution = _next_pending(backend, thing)
        return None if execution is None else self._execution_view(backend, execution, thing)

    def _render_notify(self, backend: Any, thing: str, view: dict[str, Any] | None) -> tuple[str, bytes]:
        message: dict[str, Any] = {"timestamp": int(time.time())}
        if view is not None:
            message["execution"] = self._with_urls(backend, view)
        return f"$aws/things/{thing}/jobs/notify-next", json.dumps(message).encode()

    # ------------------------------------------------------------------ views
    @staticmethod
    def _execution_view(backend: Any, execution: Any, thing: str) -> dict[str, Any]:
        view = {
            "jobId": execution.job_id,
            "thingName": thing,
            "status": execution.status,
            "jobDocument": json.loads(backend.jobs[execution.job_id].document),
            "queuedAt": _epoch(execution.queued_at),
            "lastUpdatedAt": _epoch(execution.last_updated_at),
            "versionNumber": execution.version_number,
            "executionNumber": execution.execution_number,
        }
        if execution.status != QUEUED:
            view["startedAt"] = _epoch(execution.started_at)
        if execution.status_details_map:
            view["statusDetails"] = dict(execution.status_details_map)
        return view

    def _with_urls(self, backend: Any, view: dict[str, Any]) -> dict[str, Any]:
        job = backend.jobs[view["jobId"]]
        return {**view, "jobDocument": self._substitute(job, view["jobDocument"])}

    def _substitute(self, job: Any, document: Any) -> Any:
        expiry = (job.presigned_url_config or {}).get("expiresInSec") or DEFAULT_URL_EXPIRY_S

        def presign(match: re.Match[str]) -> str:
            return str(
                self._s3.generate_presigned_url(
                    "get_object", Params=_object_params(match.group(1)), ExpiresIn=int(expiry)
                )
            )

        return _map_strings(document, lambda text: _PLACEHOLDER.sub(presign, text))


# ---------------------------------------------------------------------- helpers
def _parse(payload: bytes) -> dict[str, Any]:
    try:
        request = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Rejected("InvalidJson", "the request is not UTF-8 JSON") from exc
    if not isinstance(request, dict):
        raise Rejected("InvalidRequest", "the request must be a JSON object")
    return request


def _status_details(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
    ):
        raise Rejected("InvalidRequest", "statusDetails must map non-empty strings to non-empty strings")
    return value


def _change(execution: Any, status: str, details: dict[str, str] | None = None) -> None:
    now = _utcnow()
    if execution.status == QUEUED and status != QUEUED:
        execution.started_at = now
    execution.status = status
    if details is not None:
        execution.status_details_map = dict(details)
    execution.version_number += 1
    execution.last_updated_at = now


def _state(execution: Any) -> dict[str, Any]:
    return {
        "status": execution.status,
        "statusDetails": dict(execution.status_details_map),
        "versionNumber": execution.version_number,
    }


def _executions_of(backend: Any, thing: str) -> Iterator[Any]:
    # A snapshot: moto's DeleteJobExecution changes the dict on its own thread, outside the lock.
    # moto's DeleteJob leaves the job's executions behind; IoT deletes them with it.
    return (
        e
        for (job_id, name), e in list(backend.job_executions.items())
        if name == thing and job_id in backend.jobs
    )


def _next_pending(backend: Any, thing: str) -> Any | None:
    """The oldest IN_PROGRESS execution, else the oldest QUEUED (creation order breaks ties)."""
    executions = list(_executions_of(backend, thing))
    for status in (IN_PROGRESS, QUEUED):
        candidates = [e for e in executions if e.status == status]
        if candidates:
            return min(candidates, key=lambda e: e.queued_at)
    return None


def _pending_id(backend: Any, thing: str) -> str | None:
    execution = _next_pending(backend, thing)
    return None if execution is None else execution.job_id


def _check_job(document_source: str | None, document: str | None, presigned: dict[str, Any] | None) -> None:
    if document_source:
        raise ValueError("documentSource is not supported on the local stack: pass the document inline")
    try:
        parsed = json.loads(document or "")
    except json.JSONDecodeError as exc:
        raise ValueError("the job document must be JSON") from exc
    expiry = (presigned or {}).get("expiresInSec")
    if expiry is not None and not URL_EXPIRY_RANGE_S[0] <= int(expiry) <= URL_EXPIRY_RANGE_S[1]:
        raise ValueError(
            f"presignedUrlConfig.expiresInSec must be {URL_EXPIRY_RANGE_S[0]}..{URL_EXPIRY_RANGE_S[1]}"
        )
    texts: list[str] = []
    _map_strings(parsed, texts.append)
    for url in (url for text in texts for url in _PLACEHOLDER.findall(text)):
        _object_params(url)


def _object_params(url: str) -> dict[str, str]:
    """GetObject's Bucket, Key and, when the URL names one, VersionId."""
    version = _VERSION_QUERY.search(url)
    bucket, key = _bucket_and_key(url[: version.start()] if version else url)
    params = {"Bucket": bucket, "Key": key}
    if version:
        params["VersionId"] = unquote(version.group(1))
    return params


def _bucket_and_key(url: str) -> tuple[str, str]:
    """`https://s3[.region].amazonaws.com/<bucket>/<key>` (path style, as IoT takes it)."""
    parts = urlsplit(url)
    bucket, _, key = parts.path.lstrip("/").partition("/")
    if parts.scheme != "https" or not _S3_HOST.match(parts.hostname or "") or not bucket or not key:
        raise ValueError(f"not a path-style S3 URL: {url}")
    return bucket, unquote(key)


def _map_strings(value: Any, change: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    return value


def _thing_name(target_arn: str) -> str:
    return target_arn.rsplit("/", 1)[-1]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # moto's timestamps are naive UTC


def _epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())
