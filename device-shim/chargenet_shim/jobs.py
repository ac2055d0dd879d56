"""The device side of AWS IoT Jobs: firmware rollouts that the cloud runs as jobs reach the charger here.

`chargenet firmware deploy` creates one IoT job for many chargers; IoT Core (locally, the stack's
responder on mosquitto) hands each charger its execution over the Jobs device MQTT API on the
charger's own connection (thing name == charger id):

    link up ──▶ start-next ──▶ start-next/accepted {execution} ──┐    notify-next {execution} ──┐
                                                                 ▼                              ▼
                    the job document, validated (FirmwareJob): an invalid one ──▶ update REJECTED
                    the charger's own firmware routine (the same download, verification and install
                    as OCPP UpdateFirmware), each FirmwareStatus ──▶ <jobId>/update
                        Downloading/Downloaded/Installing ──▶ IN_PROGRESS
                        Installed ──▶ SUCCEEDED; DownloadFailed, or an install that failed ──▶ FAILED
                        a package refused before installing (signature, downgrade) ──▶ REJECTED
    terminal update accepted (or rejected as already terminal) ──▶ start-next again

Delivery is at least once: notify-next and start-next/accepted both carry the same execution, and
a reconnect delivers it again. One job runs at a time, and a job id already running is ignored;
one already finished gets its terminal update again (IoT answers it InvalidStateTransition when it
has it). An execution whose version the charger already runs is SUCCEEDED without installing:
that is the job's goal, and it is how an install finished before a shim restart, whose terminal
update was lost, ends.

The job document's `force` is not what allows a downgrade: only the operator's signed manifest
can (firmware.py), so a job cannot install what UpdateFirmware could not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Coroutine
from typing import Any, Literal, Protocol

from ocpp.v16.enums import FirmwareStatus
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chargenet_firmware_format import precedence
from chargenet_shim.firmware import INVALID_FIRMWARE_SIGNATURE, Report, core_notifications
from chargenet_shim.link import LinkError, LinkState, OnMessage
from chargenet_shim.redaction import redacted_text

LOG = logging.getLogger(__name__)

FIRMWARE_OPERATION = "chargenet.firmware.update"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "TIMED_OUT", "REMOVED"})
# IoT's limit on a statusDetails value.
STATUS_DETAIL_LENGTH = 1024

_IN_PROGRESS = frozenset({FirmwareStatus.downloading, FirmwareStatus.downloaded, FirmwareStatus.installing})
_FAILED = frozenset({FirmwareStatus.download_failed, FirmwareStatus.installation_failed})
# What the charger subscribes to under $aws/things/<id>/jobs/, and nothing more (ChargerPolicy).
_SUBSCRIBED = (
    "notify-next",
    "start-next/accepted",
    "start-next/rejected",
    "+/update/accepted",
    "+/update/rejected",
)


class FirmwareJob(BaseModel):
    """The job document `chargenet firmware deploy` writes, with `location` pre-signed by IoT."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: Literal["chargenet.firmware.update"]
    version: str
    force: bool = False
    location: str = Field(pattern=r"^https?://", description="the package's pre-signed S3 URL")

    @field_validator("version")
    @classmethod
    def _semantic(cls, version: str) -> str:
        precedence(version)
        return version


class JobsLink(LinkState, Protocol):
    """The charger's MQTT connection, carrying the Jobs API beside OCPP (ChargerLink)."""

    async def subscribe(self, topic_filter: str, on_message: OnMessage) -> None: ...

    async def publish(self, topic: str, payload: bytes) -> None: ...


class FirmwareTarget(Protocol):
    """Whoever installs the firmware: a simulated charger, or the gateway for a real one."""

    @property
    def running_firmware(self) -> str: ...

    async def run_firmware_job(self, location: str, on_status: Report) -> FirmwareStatus: ...


class JobsClient:
    def __init__(self, link: JobsLink, thing_name: str, target: FirmwareTarget) -> None:
        self._link = link
        self._prefix = f"$aws/things/{thing_name}/jobs/"
        self._target = target
        self._running: str | None = None
        # job id -> the execution number last taken (a job's retry is a new execution of the same id).
        self._executions: dict[str, object] = {}
        # job id -> its execution number and terminal update, sent again if that execution comes back.
        self._finished: dict[str, tuple[object, str, dict[str, str]]] = {}
        self._terminal_tokens: set[str] = set()
        self._installing: set[str] = set()  # jobs whose package passed verification and is installing
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Until cancelled: subscribe, then ask for the next execution every time the link comes up."""
        try:
            for suffix in _SUBSCRIBED:
                await self._link.subscribe(self._prefix + suffix, self._on_message)
            while True:
                await self._link.wait_online()
                await self._ask_next()
                await self._link.wait_offline()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ----------------------------------------------------------- messages
    def _on_message(self, topic: str, payload: bytes) -> None:
        if not topic.startswith(self._prefix):
            # The Jobs API's rule: a device acts only on its own thing's topics.
            LOG.warning("ignoring a jobs message for another thing on %s", topic)
            return
        try:
            message = json.loads(payload)
        except ValueError:
            LOG.warning("ignoring a jobs message that is not JSON on %s", topic)
            return
        if not isinstance(message, dict):
            LOG.warning("ignoring a jobs message that is not an object on %s", topic)
            return
        self._dispatch(topic.removeprefix(self._prefix), message)

    def _dispatch(self, suffix: str, message: dict[str, Any]) -> None:
        if suffix in ("notify-next", "start-next/accepted"):
            if isinstance(execution := message.get("execution"), dict):
                self._take(execution)
        elif suffix == "start-next/rejected":
            LOG.warning("start-next rejected: %s %s", message.get("code"), message.get("message"))
        elif suffix.endswith("/update/accepted"):
            state = message.get("executionState")
            if isinstance(state, dict) and state.get("status") in TERMINAL:
                self._spawn(self._ask_next())
        elif suffix.endswith("/update/rejected"):
            self._rejected(suffix.removesuffix("/update/rejected"), message)

    def _rejected(self, job_id: str, message: dict[str, Any]) -> None:
        terminal = message.get("clientToken") in self._terminal_tokens
        if terminal and message.get("code") == "InvalidStateTransition":
            # Already terminal: a duplicate of an update IoT has.
            self._spawn(self._ask_next())
            return
        LOG.warning("job %s: update rejected: %s %s", job_id, message.get("code"), message.get("message"))

    def _take(self, execution: dict[str, Any]) -> None:
        job_id = execution.get("jobId")
        if not isinstance(job_id, str) or not job_id:
            LOG.warning("ignoring an execution without a job id")
            return
        if job_id == self._running:
            return  # delivered again while it runs: one install only
        number = execution.get("executionNumber")
        finished = self._finished.get(job_id)
        if finished is not None and finished[0] == number:
            self._spawn(self._update(job_id, finished[1], finished[2]))
            return
        if self._running is not None:
            # start-next brings it once the running job is terminal.
            return
        self._running = job_id
        self._executions[job_id] = number
        self._finished.pop(job_id, None)
        self._installing.discard(job_id)
        self._spawn(self._execute(job_id, execution.get("jobDocument")))

    # ---------------------------------------------------------- executing
    async def _execute(self, job_id: str, document: Any) -> None:
        try:
            job = _firmware_job(document)
        except ValueError as exc:
            await self._finish(job_id, "REJECTED", {"reason": _detail(str(exc))})
            return
        try:
            running = self._target.running_firmware
            if job.version == running:
                await self._finish(job_id, "SUCCEEDED", {"runningVersion": running})
                return
            LOG.info("job %s: firmware %s", job_id, job.version)

            async def on_status(status: FirmwareStatus, detail: str) -> None:
                await self._on_firmware_status(job_id, status, detail)

            ended = await self._target.run_firmware_job(job.location, on_status)
            if job_id not in self._finished:
                await self._finish(job_id, "FAILED", {"reason": f"the update ended with {ended}"})
        finally:
            if self._running == job_id:
                self._running = None

    async def _on_firmware_status(self, job_id: str, status: FirmwareStatus, detail: str) -> None:
        word = core_status(status)
        details = {"firmwareStatus": str(word.value)}
        if word is FirmwareStatus.installing:
            self._installing.add(job_id)
        if word in _IN_PROGRESS:
            await self._update(job_id, "IN_PROGRESS", details)
        elif word is FirmwareStatus.installed:
            await self._finish(job_id, "SUCCEEDED", details)
        elif word in _FAILED:
            reason = INVALID_FIRMWARE_SIGNATURE if status is FirmwareStatus.invalid_signature else detail
            # A package refused before installing (signature, downgrade) is the job refused; a
            # download or an install that failed (rolled back) is the job failed.
            refused = word is FirmwareStatus.installation_failed and job_id not in self._installing
            outcome = "REJECTED" if refused else "FAILED"
            await self._finish(job_id, outcome, details | {"reason": _detail(reason or str(word.value))})

    async def _finish(self, job_id: str, status: str, details: dict[str, str]) -> None:
        details = details | {"runningVersion": self._target.running_firmware}
        # Kept before it is sent: a re-delivery after a lost update sends it again.
        self._finished[job_id] = (self._executions.get(job_id), status, details)
        if self._running == job_id:
            self._running = None
        await self._update(job_id, status, details)

    async def _update(self, job_id: str, status: str, details: dict[str, str]) -> None:
        token = uuid.uuid4().hex
        if status in TERMINAL:
            self._terminal_tokens.add(token)
        update = {"status": status, "statusDetails": details, "clientToken": token}
        await self._publish(f"{job_id}/update", update)

    async def _ask_next(self) -> None:
        await self._publish("start-next", {"clientToken": uuid.uuid4().hex})

    async def _publish(self, suffix: str, message: dict[str, Any]) -> None:
        try:
            await self._link.publish(self._prefix + suffix, json.dumps(message).encode())
        except LinkError as exc:
            # IoT delivers the execution again once the link is back (start-next on link up).
            LOG.warning("jobs: %s not sent: %s", suffix, exc)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            LOG.error("jobs: handling an execution failed", exc_info=error)


def core_status(status: FirmwareStatus) -> FirmwareStatus:
    """The status in the backend's words (1.6's seven, as core_notifications): InvalidSignature is InstallationFailed."""
    return FirmwareStatus(core_notifications(status, "", "")[-1].status)


def ends_update(status: FirmwareStatus) -> bool:
    """Whether the charger's update is over with `status` (the execution turns terminal)."""
    return core_status(status) in _FAILED | {FirmwareStatus.installed}


def _firmware_job(document: Any) -> FirmwareJob:
    """The document as a FirmwareJob; ValueError saying what is wrong (the REJECTED reason)."""
    if not isinstance(document, dict):
        raise ValueError("invalid job document: not a JSON object")
    operation = document.get("operation")
    if operation != FIRMWARE_OPERATION:
        raise ValueError(f"unknown operation {operation!r}")
    try:
        return FirmwareJob.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid job document: {problems}") from exc


def _detail(text: str) -> str:
    # A URL's user name, password or pre-signed query is a credential: never in what goes to the cloud.
    return redacted_text(text)[:STATUS_DETAIL_LENGTH]
