"""The operator API's remote commands, diagnostics and firmware rollouts.

Commands go the way the backend calls a charger (chargenet.services.commands: in the charger's
OCPP version, schema check, pending call, IoT Data publish); the charger's answer lands on the
pending call, which the client reads back (or records as timed out). Diagnostics: a pre-signed PUT
URL in the charger's version's request (1.6 GetDiagnostics, 2.0.1 GetLog), the charger's files
listed one ListObjectsV2 page at a time, and a short-lived pre-signed GET URL per file (big files
never pass through the function). Firmware: the releases operators signed and stored (the
function never signs: docs/firmware.md), and rollouts as IoT jobs.

Permissions, the audit trail and listings' cursors: chargenet.services.operator_access.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from chargenet.domain.firmware import (
    DEFAULT_MAX_PER_MINUTE,
    Execution,
    PackageObject,
    Release,
    diagnostics_key,
    diagnostics_prefix,
    is_semantic_version,
    job_document,
    job_id,
    oversized_diagnostics,
    package_key,
    select_targets,
)
from chargenet.domain.models import PendingCall
from chargenet.domain.operators import Operator, Permission
from chargenet.ports.audit import Page
from chargenet.ports.firmware import DiagnosticsFiles, FirmwarePackages, FirmwareRollouts, StoredRelease
from chargenet.ports.messaging import CommandHistory
from chargenet.services.commands import ChargerCommands, CommandRefused, request_id
from chargenet.services.operator_access import (
    BadRequest,
    Conflict,
    NotFound,
    OperatorAccess,
    RequestInfo,
    charger_target,
    checked_charger_id,
    require,
)

MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
ACTION = re.compile(r"[A-Za-z]{1,40}")
# A name within the charger's prefix: no "/", so no way out of it.
FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
# One deployment names its chargers; IoT's CreateJob takes them as one list of thing ARNs.
MAX_TARGETS = 500
MAX_PER_MINUTE = 1000  # IoT's own bound for maximumPerMinute


@dataclass(frozen=True)
class FirmwareSettings:
    """Where the stack keeps firmware: IoT pre-signs a job's package URL as `jobs_role_arn`."""

    bucket: str
    region: str
    jobs_role_arn: str


@dataclass(frozen=True)
class OperatorCommands:
    access: OperatorAccess
    commands: ChargerCommands
    history: CommandHistory
    diagnostics: DiagnosticsFiles
    packages: FirmwarePackages
    rollouts: FirmwareRollouts
    firmware: FirmwareSettings
    clock: Callable[[], datetime]

    # ------------------------------------------------------------------ commands
    def send_command(
        self,
        operator: Operator,
        request: RequestInfo,
        charger_id: str,
        read_body: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """The call as sent (outcome null); a GetDiagnostics without a location, or a GetLog
        without a log, uploads to the diagnostics bucket, its key in `upload_key`."""
        require(operator, Permission.COMMANDS_SEND)
        targets = {"charger_id": charger_target(charger_id), "action": "(not read)"}
        with self.access.audited(operator, request, targets, ok_status=201):
            checked_charger_id(charger_id)
            action, payload = _command(read_body())
            targets["action"] = action
            upload_key = None
            if action == "GetDiagnostics" and "location" not in payload:
                upload_key, payload["location"] = self._upload_location(charger_id)
            if action == "GetLog" and "log" not in payload:
                upload_key, location = self._upload_location(charger_id)
                payload["log"] = {"remoteLocation": location}
            call = self._send(charger_id, lambda: self.commands.send(charger_id, action, payload))
            targets["message_id"] = call.message_id
            return {**_call_record(call), "upload_key": upload_key}
        raise AssertionError("unreachable")  # pragma: no cover

    def command(self, operator: Operator, charger_id: str, message_id: str) -> dict[str, Any]:
        require(operator, Permission.CHARGERS_READ)
        call = self.commands.pending.get(checked_charger_id(charger_id), _message_id(message_id))
        if call is None:
            raise NotFound(f"no command {message_id} to {charger_id}")
        return _call_record(call)

    def time_out_command(
        self, operator: Operator, request: RequestInfo, charger_id: str, message_id: str
    ) -> dict[str, Any]:
        """The client waited long enough: no answer is recorded as a timeout (a later one is not
        applied); an answered call stays as it was."""
        require(operator, Permission.COMMANDS_SEND)
        targets = {"charger_id": charger_target(charger_id), "message_id": _message_target(message_id)}
        with self.access.audited(operator, request, targets):
            call = self.commands.time_out(checked_charger_id(charger_id), _message_id(message_id))
            if call is None:
                raise NotFound(f"no command {message_id} to {charger_id}")
            return _call_record(call)
        raise AssertionError("unreachable")  # pragma: no cover

    def command_history(
        self, operator: Operator, charger_id: str, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        require(operator, Permission.CHARGERS_READ)
        scope = f"commands?charger={checked_charger_id(charger_id)}"
        calls, next_key = self.history.page_of_charger(charger_id, limit, self.access.start(cursor, scope))
        items = [_call_record(c) for c in sorted(calls, key=lambda c: c.sent_at)]
        return self.access.listing(items, Page(calls, next_key), scope)

    # ------------------------------------------------------------------ diagnostics
    def request_diagnostics(
        self, operator: Operator, request: RequestInfo, charger_id: str
    ) -> dict[str, Any]:
        """GetDiagnostics (1.6) or GetLog (2.0.1) with a pre-signed PUT URL: the charger uploads
        without AWS credentials."""
        require(operator, Permission.DIAGNOSTICS)
        targets = {"charger_id": charger_target(charger_id), "action": "(not sent)"}
        with self.access.audited(operator, request, targets, ok_status=201):
            upload_key, location = self._upload_location(checked_charger_id(charger_id))
            call = self._send(
                charger_id, lambda: self.commands.request_log(charger_id, location, request_id(upload_key))
            )
            targets["action"] = call.action
            targets["message_id"] = call.message_id
            return {**_call_record(call), "upload_key": upload_key}
        raise AssertionError("unreachable")  # pragma: no cover

    def diagnostics_files(
        self, operator: Operator, charger_id: str, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """A page of the charger's uploads, oldest first (their keys hold the request time)."""
        require(operator, Permission.DIAGNOSTICS)
        scope = f"diagnostics?charger={checked_charger_id(charger_id)}"
        page = self.diagnostics.files(diagnostics_prefix(charger_id), limit, self.access.start(cursor, scope))
        items = [
            {"name": f.key.rsplit("/", 1)[1], "key": f.key, "bytes": f.size, "uploaded_at": f.uploaded_at}
            for f in page.items
        ]
        return self.access.listing(items, page, scope)

    def diagnostics_file(self, operator: Operator, charger_id: str, name: str) -> dict[str, Any]:
        """The file with a short-lived GET URL; one over the size limit is refused (409), unread."""
        require(operator, Permission.DIAGNOSTICS)
        if not FILE_NAME.fullmatch(name):
            raise BadRequest("give the file name as `diagnostics list` shows it, e.g. 20261207T101500Z.log")
        key = diagnostics_prefix(checked_charger_id(charger_id)) + name
        found = self.diagnostics.file(key)
        if found is None:
            raise NotFound(
                f"no diagnostics file {name} for {charger_id} (see chargenet diagnostics list {charger_id})"
            )
        too_big = oversized_diagnostics(key, found.size)
        if too_big:
            raise Conflict(too_big)
        return {
            "name": name,
            "key": key,
            "bytes": found.size,
            "uploaded_at": found.uploaded_at,
            "url": self.diagnostics.download_url(key),
        }

    # ------------------------------------------------------------------ firmware
    def releases(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.FIRMWARE_READ)
        scope = "firmware/releases"
        page = self.packages.releases(limit, self.access.start(cursor, scope))
        return self.access.listing([release_record(r) for r in page.items], page, scope)

    def release(self, operator: Operator, version: str) -> dict[str, Any]:
        require(operator, Permission.FIRMWARE_READ)
        return release_record(self._stored(_version(version)).release)

    def register_release(self, operator: Operator, request: RequestInfo, version: str) -> dict[str, Any]:
        """The operator signed and stored the package (with the signing role): the API checks it is
        there and records who published it."""
        require(operator, Permission.FIRMWARE_WRITE)
        with self.access.audited(operator, request, {"version": _version_target(version)}):
            return release_record(self._stored(_version(version)).release)
        raise AssertionError("unreachable")  # pragma: no cover

    def deploy(
        self, operator: Operator, request: RequestInfo, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """201: one IoT job for the chosen chargers that are in the rollout's share."""
        require(operator, Permission.FIRMWARE_WRITE)
        targets: dict[str, str] = {"version": "(not read)"}
        with self.access.audited(operator, request, targets, ok_status=201):
            order = _deployment(read_body())
            targets["version"] = order.version
            if order.force:
                targets["force"] = "true"
            stored = self._stored(order.version)
            if stored.release.expired(self.clock()):
                raise Conflict(
                    f"firmware {order.version} expired at {stored.release.expires_at}: chargers refuse it "
                    "(publish the image again as a new version)"
                )
            chosen = self._targets(order)
            targets["chargers"] = " ".join(chosen)
            package_version = self._package_version(order, stored.version_id)
            try:
                things = self.rollouts.thing_arns(chosen)
            except LookupError as missing:
                raise BadRequest(f"no IoT thing for charger {missing}: provision it first") from None
            job = job_id(order.version, order.force, self.clock())
            package = PackageObject(
                self.firmware.bucket,
                package_key(order.version, force=order.force),
                package_version,
                self.firmware.region,
            )
            document = job_document(order.version, order.force, package)
            self.rollouts.create(job, document, things, self.firmware.jobs_role_arn, order.max_per_minute)
            targets["job_id"] = job
            return {"job_id": job, "version": order.version, "force": order.force, "chargers": chosen}
        raise AssertionError("unreachable")  # pragma: no cover

    def rollout_status(
        self, operator: Operator, version: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """A page of jobs' executions, each with what its charger last told the backend; the
        client keeps, per charger, the execution of the latest job (`job_created_at`)."""
        require(operator, Permission.FIRMWARE_READ)
        if version is not None:
            _version(version)
        scope = f"firmware/status?version={version or ''}"
        start = self.access.start(cursor, scope)
        token = start.get("token") if start else None
        executions, next_token = self.rollouts.executions(
            version, limit, token if isinstance(token, str) else None
        )
        items = [self._status_record(e) for e in executions]
        return self.access.listing(items, Page(items, {"token": next_token} if next_token else None), scope)

    # ------------------------------------------------------------------ helpers
    def _send(self, charger_id: str, send: Callable[[], PendingCall]) -> PendingCall:
        if self.commands.registry.get(charger_id) is None:
            raise NotFound(f"no charger {charger_id}")
        try:
            return send()
        except CommandRefused as refused:
            raise BadRequest(str(refused)) from None

    def _upload_location(self, charger_id: str) -> tuple[str, str]:
        key = diagnostics_key(charger_id, self.clock())
        return key, self.diagnostics.upload_url(key)

    def _stored(self, version: str) -> StoredRelease:
        stored = self.packages.release(version)
        if stored is None:
            raise NotFound(f"no firmware {version} (chargenet firmware publish FILE --version {version})")
        return stored

    def _targets(self, order: Deployment) -> list[str]:
        missing = sorted(cid for cid in set(order.chargers) if self.commands.registry.get(cid) is None)
        if missing:
            raise BadRequest(f"no charger {', '.join(missing)}")
        chosen = select_targets(order.chargers, order.version, order.rollout_percent)
        if not chosen:
            raise BadRequest("no charger matches (or the rollout percentage leaves none)")
        return chosen

    def _package_version(self, order: Deployment, release_version_id: str) -> str:
        """The S3 version id the job pins: the release's, or the forced package the operator signed."""
        if order.force:
            forced = order.forced_package_version or ""
            if not forced or not self.packages.has_version(package_key(order.version, force=True), forced):
                raise BadRequest(
                    "forced_package_version names no stored forced package of this release "
                    "(chargenet firmware deploy --force signs and stores one)"
                )
            return forced
        if not release_version_id:
            raise Conflict(
                "the firmware bucket is not versioned: a job could not pin its package (enable versioning)"
            )
        return release_version_id

    def _status_record(self, execution: Execution) -> dict[str, Any]:
        charger = self.commands.registry.get(execution.charger_id)
        return {
            "charger_id": execution.charger_id,
            "version": execution.version,
            "force": execution.force,
            "job_id": execution.job_id,
            "job_created_at": execution.job_created_at,
            "state": execution.state,
            "execution_status": execution.status,
            "firmware_status": execution.details.get("firmwareStatus"),
            "reason": execution.details.get("reason"),
            "running_version": None if charger is None else charger.firmware_version,
            # Its own last FirmwareStatusNotification, in its version's words (2.0.1 has fourteen).
            "charger_firmware_status": None if charger is None else charger.firmware_status,
            "queued_at": execution.queued_at,
        }


@dataclass(frozen=True)
class Deployment:
    """A deploy request's body, checked."""

    version: str
    chargers: list[str]
    rollout_percent: int
    force: bool
    forced_package_version: str | None
    max_per_minute: int


def _deployment(body: dict[str, Any]) -> Deployment:
    unknown = set(body) - {
        "version",
        "chargers",
        "rollout_percent",
        "force",
        "forced_package_version",
        "max_per_minute",
    }
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    chargers = body.get("chargers")
    if not isinstance(chargers, list) or not chargers or not all(isinstance(c, str) for c in chargers):
        raise BadRequest("chargers is a list of charger ids")
    if len(chargers) > MAX_TARGETS:
        raise BadRequest(f"a deployment names at most {MAX_TARGETS} chargers")
    forced_version = body.get("forced_package_version")
    if forced_version is not None and not isinstance(forced_version, str):
        raise BadRequest("forced_package_version is the S3 version id of the forced package")
    return Deployment(
        version=_version(body.get("version")),
        chargers=[checked_charger_id(c) for c in chargers],
        rollout_percent=_whole(body.get("rollout_percent", 100), "rollout_percent", 1, 100),
        force=_boolean(body.get("force", False), "force"),
        forced_package_version=forced_version,
        max_per_minute=_whole(
            body.get("max_per_minute", DEFAULT_MAX_PER_MINUTE), "max_per_minute", 1, MAX_PER_MINUTE
        ),
    )


def _command(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if set(body) - {"action", "payload"}:
        raise BadRequest('the body is JSON: {"action": "Reset", "payload": {...}}')
    action, payload = body.get("action"), body.get("payload", {})
    if not isinstance(action, str) or not ACTION.fullmatch(action):
        raise BadRequest("action is an OCPP action name, e.g. Reset")
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object")
    return action, dict(payload)


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} is a whole number from {low} to {high}")
    return value


def _boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{name} is true or false")
    return value


def _version(value: object) -> str:
    if not isinstance(value, str) or not is_semantic_version(value):
        raise BadRequest("version is a semantic version, e.g. 1.4.0")
    return value


def _version_target(version: str) -> str:
    return version if is_semantic_version(version) else "(not a version)"


def _message_id(message_id: str) -> str:
    if not MESSAGE_ID.fullmatch(message_id):
        raise BadRequest("not a command's message id")
    return message_id


def _message_target(message_id: str) -> str:
    return message_id if MESSAGE_ID.fullmatch(message_id) else "(not a message id)"


def _call_record(call: PendingCall) -> dict[str, Any]:
    return call.model_dump(mode="json")


def release_record(release: Release) -> dict[str, Any]:
    """As `chargenet firmware publish --json` prints it."""
    return asdict(release)
