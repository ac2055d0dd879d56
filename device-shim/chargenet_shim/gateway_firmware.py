"""Signed firmware for a real charger behind the gateway: the backend's UpdateFirmware, verified, then offered.

Drawn for a 1.6 charger; a 2.0.1 charger takes the same path in its own words (the gateway answers
{status: Accepted}, offers a 2.0.1 UpdateFirmware carrying the backend's requestId and the
manufacturer's signingCertificate and signature, and its FirmwareStatusNotifications, the same
words, are told with that requestId): firmware_dialects.py has the table.

    backend                              gateway (FirmwareRelay)                      real charger
    UpdateFirmware{location} ──────────▶ answered {} at once, as a simulated charger does
                                         downloads the package and verifies it exactly as a
                                         simulated charger does (firmware.fetch_verified:
                                         operator signature, hash, size, downgrade rule), and
                                         needs the manufacturer's signature in the signed manifest
    FirmwareStatusNotification ◀──────── Downloading, Downloaded, or the refusal: the charger sees nothing
                                         the image at /firmware/<token> ──▶ SignedUpdateFirmware
    InstallationFailed (+ event) ◀────── unless the answer is Accepted ◀── Accepted | Rejected |
                                                                           InvalidCertificate | RevokedCertificate
    FirmwareStatusNotification ◀──────── in 1.6's words ◀──────────────── SignedFirmwareStatusNotification
                                         (answered once the backend has it, so nothing is lost)

Which chargers: every charger the gateway serves is a real one (simulated chargers have links
of their own, `chargenet-shim simulate`), and every one is offered SignedUpdateFirmware. The
package format is chargenet's own, and the security whitepaper has a charger that implements
it answer a plain UpdateFirmware with NotSupported; a charger without the extension answers
SignedUpdateFirmware with a CALLERROR, which ends the job as InstallationFailed. So an
UpdateFirmware from the backend never reaches a charger as it is: a 2.0.1 one included, since
what the backend names is the operator's package, not an image a charger can take.

The charger's running version, for the downgrade rule, is the one its last BootNotification
through this gateway named; before one is seen it is unknown, and only a release the operator
signed with `force` goes on (a simulated charger's rule for a version it cannot compare). The
vendor and model the signed statement must name are that BootNotification's too (none seen:
every package is refused), and its expiry is checked on the gateway's clock.

Cloud rollouts come as IoT Jobs on the charger's MQTT link (jobs.py): once the charger's
BootNotification has named its version, the relay takes them like a simulated charger, the job's
package going the same verify-and-offer way as UpdateFirmware's and every status the backend is
told (the gateway's and the charger's) also going to the job's execution.

The image is served by the gateway's own listener (firmware paths are answered before the
charger authentication, the unguessable path being the credential), at the host the charger
reached the gateway with: http on profile 1, https on profiles 2 and 3 (on 3 the download too
needs the charger's client certificate). Each offer has its own path and expires.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, validate_payload
from ocpp.v16.enums import Action, FirmwareStatus, UpdateFirmwareStatus
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from chargenet_firmware_format import OperatorKey
from chargenet_shim.firmware import (
    DEFAULT_RETRY_INTERVAL_S,
    Installed,
    Report,
    VerifiedPackage,
    fetch_verified,
    report_end,
)
from chargenet_shim.firmware_dialects import (
    DIALECTS,
    FirmwareDialect,
    StatusReport,
    UpdateRequest,
    job_update,
)
from chargenet_shim.jobs import JobsClient, JobsLink, ends_update
from chargenet_shim.link import LinkError
from chargenet_shim.ocpp_issuer import CertificateRefused
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.own_calls import OwnCalls
from chargenet_shim.redaction import redacted_text

LOG = logging.getLogger(__name__)

FIRMWARE_PATH = "/firmware/"
# As long as the pre-signed URL of the package: enough for a charger that retries its download.
DEFAULT_OFFER_TTL_S = 3600.0
CHARGER_ANSWER_TIMEOUT_S = 30.0
# What a firmware version is before the charger has named one.
UNKNOWN_VERSION = "unknown"
INVALID_SIGNING_CERTIFICATE = "InvalidFirmwareSigningCertificate"

# SignedUpdateFirmware answers that end the update at once, and the security event each raises
# (the whitepaper has the charger send InvalidFirmwareSigningCertificate itself as well; the
# backend folds repeats of a fault into one episode).
_REFUSALS: dict[str, str | None] = {
    UpdateFirmwareStatus.rejected: None,
    UpdateFirmwareStatus.invalid_certificate: INVALID_SIGNING_CERTIFICATE,
    UpdateFirmwareStatus.revoked_certificate: INVALID_SIGNING_CERTIFICATE,
}
_GOING_ON = frozenset({UpdateFirmwareStatus.accepted, UpdateFirmwareStatus.accepted_canceled})

# One of the shim's CALLs to the backend on the charger's link (RelayedCalls.send_call).
SendCall = Callable[[Any], Awaitable[Any]]
# What the backend not answering the shim's CALL looks like (RelayedCalls.send_call).
_NOT_DELIVERED = (CertificateRefused, TimeoutError, LinkError)


@dataclass(frozen=True)
class Refusal:
    """Why the charger's answer to SignedUpdateFirmware ends the update, and the security event it raises."""

    reason: str
    security_event: str | None = None


def refusal(answer: list[Any], offered: str = Action.signed_update_firmware.value) -> Refusal | None:
    """None when the charger took the update (its own statuses follow); the refusal otherwise.

    `offered`: the CALL it answers, 1.6's SignedUpdateFirmware or 2.0.1's UpdateFirmware (same statuses).
    """
    if answer[0] == 4:
        description = answer[3] if len(answer) > 3 else ""
        return Refusal(f"the charger answered {offered} with {answer[2]}: {description}")
    status = answer[2].get("status") if len(answer) > 2 and isinstance(answer[2], dict) else None
    if status in _GOING_ON:
        return None
    return Refusal(f"the charger answered {offered} {status}", _REFUSALS.get(str(status)))


@dataclass(frozen=True)
class _Offer:
    charger_id: str
    image: bytes
    expires_at: float


class FirmwareImages:
    """Verified images the gateway serves to its chargers: one unguessable path per offer, expiring."""

    def __init__(
        self, ttl_s: float = DEFAULT_OFFER_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._offers: dict[str, _Offer] = {}

    def offer(self, charger_id: str, image: bytes) -> str:
        """A new path that serves `image` until the offer expires."""
        self._drop_expired()
        token = secrets.token_urlsafe(32)
        self._offers[token] = _Offer(charger_id, image, self._clock() + self._ttl_s)
        return FIRMWARE_PATH + token

    def respond(self, connection: ServerConnection, request: Request) -> Response | None:
        """As websockets' process_request: the image of a firmware path (404 when unknown or expired), None otherwise."""
        path = urlsplit(request.path).path
        if not path.startswith(FIRMWARE_PATH):
            return None
        self._drop_expired()
        offer = self._offers.get(path.removeprefix(FIRMWARE_PATH))
        if offer is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "no such firmware image\n")
        LOG.info("%s: serving its firmware image (%d bytes)", offer.charger_id, len(offer.image))
        headers = Headers(
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(len(offer.image))),
                ("Connection", "close"),
            ]
        )
        return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, offer.image)

    def _drop_expired(self) -> None:
        now = self._clock()
        for token in [token for token, offer in self._offers.items() if offer.expires_at <= now]:
            del self._offers[token]


class ChargerCalls(OwnCalls):
    """The gateway's own CALLs to one charger over its WebSocket; `take` keeps the answers out of the relay."""

    def __init__(
        self, send: Callable[[str], Awaitable[None]], *, timeout_s: float = CHARGER_ANSWER_TIMEOUT_S
    ) -> None:
        super().__init__(send, prefix="gw", timeout_s=timeout_s)


class SiteFirmware:
    """What the gateway's firmware relays share: the pinned operator key, served images, running versions."""

    def __init__(self, key: OperatorKey | None, images: FirmwareImages) -> None:
        self.key = key
        self.images = images
        # charger id -> the version its last BootNotification through this gateway named.
        self.versions: dict[str, str] = {}
        # charger id -> the (vendor, model) of that BootNotification: what a package must be for.
        self.identities: dict[str, tuple[str, str]] = {}

    def relay(
        self,
        charger_id: str,
        base_url: str,
        to_cloud: SendCall,
        to_charger: ChargerCalls,
        version: OcppVersion = OcppVersion.V16,
    ) -> FirmwareRelay:
        return FirmwareRelay(charger_id, self, base_url, to_cloud, to_charger, DIALECTS[version])


class FirmwareRelay:
    """One charger connection's firmware traffic, taken out of the verbatim relay, in the charger's version."""

    def __init__(
        self,
        charger_id: str,
        site: SiteFirmware,
        base_url: str,
        to_cloud: SendCall,
        to_charger: ChargerCalls,
        dialect: FirmwareDialect,
    ) -> None:
        self._charger_id = charger_id
        self._site = site
        self._base_url = base_url
        self._to_cloud = to_cloud
        self._to_charger = to_charger
        self._dialect = dialect
        # The update under way's request id: what the gateway's own statuses carry.
        self._request_id: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._update: asyncio.Task[None] | None = None
        self._booted = asyncio.Event()
        # The running IoT job's status hook (run_firmware_job).
        self._job_status: Report | None = None

    async def from_cloud(self, text: str) -> str | None:
        """The answer to send back for the backend's UpdateFirmware; None for frames to relay."""
        frame = _call_of(text, Action.update_firmware)
        if frame is None:
            return None
        try:
            await validate_payload(Call(frame[1], frame[2], frame[3]), self._dialect.version.schemas)
            update = self._dialect.update_request(frame[3])
        except OCPPError as exc:
            return call_error(self._dialect.version, frame[1], exc)
        if self._update is not None and not self._update.done():
            LOG.warning("%s: UpdateFirmware not taken, an update is under way", self._charger_id)
            return json.dumps([3, frame[1], self._dialect.busy()])
        self._update = self._spawn(self._run_update(update))
        return json.dumps([3, frame[1], self._dialect.accepted()])

    async def from_charger(self, text: str) -> bool:
        """Whether the charger's frame was the gateway's to handle (and is not to be relayed)."""
        try:
            frame = json.loads(text)
        except ValueError:
            return False
        if not _is_frame(frame):
            return False
        if self._to_charger.take(frame):
            return True
        if _is_call(frame, Action.boot_notification.value):
            charger = self._dialect.identity(frame[3])
            if charger.firmware_version is not None:
                self._site.versions[self._charger_id] = charger.firmware_version
            if charger.vendor is not None and charger.model is not None:
                self._site.identities[self._charger_id] = (charger.vendor, charger.model)
            self._booted.set()
            return False
        if _is_call(frame, self._dialect.status_action):
            self._spawn(self._relay_status(frame))
            return True
        return False

    async def run_jobs(self, link: JobsLink) -> None:
        """Take IoT Jobs firmware rollouts on the charger's link once it has booted (its version known)."""
        await self._booted.wait()
        await JobsClient(link, self._charger_id, self).run()

    @property
    def running_firmware(self) -> str:
        return self._site.versions.get(self._charger_id, UNKNOWN_VERSION)

    async def run_firmware_job(self, location: str, on_status: Report) -> FirmwareStatus:
        """An IoT job's update the UpdateFirmware way; every status also to `on_status`; the one it ends with."""
        while self._update is not None and not self._update.done():
            await asyncio.wait({self._update})
        ended: asyncio.Future[FirmwareStatus] = asyncio.get_running_loop().create_future()

        async def hook(status: FirmwareStatus, detail: str) -> None:
            await on_status(status, detail)
            if ends_update(status) and not ended.done():
                ended.set_result(status)

        self._job_status = hook
        try:
            self._update = self._spawn(self._run_update(job_update(location)))
            # The charger's own statuses end it, after the gateway's offer.
            return await ended
        finally:
            self._job_status = None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run_update(self, update: UpdateRequest) -> None:
        self._request_id = update.request_id
        await asyncio.sleep(max(0.0, (update.retrieve_at - dt.datetime.now(dt.UTC)).total_seconds()))
        # Unknown until a BootNotification names them: no package names an empty vendor or model.
        vendor, model = self._site.identities.get(self._charger_id, ("", ""))
        fetched = await fetch_verified(
            update.location,
            self._site.key,
            Installed(vendor, model, self._site.versions.get(self._charger_id, UNKNOWN_VERSION)),
            self._report,
            attempts=1 if update.retries is None else max(update.retries, 1),
            retry_interval_s=DEFAULT_RETRY_INTERVAL_S
            if update.retry_interval is None
            else update.retry_interval,
        )
        if not isinstance(fetched, FirmwareStatus):
            await self._offer(update, fetched)

    async def _offer(self, update: UpdateRequest, fetched: VerifiedPackage) -> None:
        """The verified image to the charger, with the manufacturer's signature it checks itself."""
        manufacturer = fetched.manifest.vendor
        if manufacturer is None:
            reason = (
                f"firmware {fetched.manifest.version} has no manufacturer signature, and a charger behind "
                "the gateway is offered only signed updates: publish it with --vendor-signature "
                "and --signing-certificate"
            )
            await report_end(self._report, FirmwareStatus.installation_failed, reason)
            return
        location = self._base_url + self._site.images.offer(self._charger_id, fetched.image)
        request = self._dialect.offer(update, location, manufacturer)
        offered = type(request).__name__
        try:
            answer = await self._to_charger.call(request)
        except (TimeoutError, ConnectionClosed):
            refused: Refusal | None = Refusal(f"the charger did not answer {offered}")
        else:
            refused = refusal(answer, offered)
        if refused is None:
            LOG.info("%s: firmware %s offered with %s", self._charger_id, fetched.manifest.version, offered)
            return
        LOG.warning(
            "%s: firmware %s not installed: %s", self._charger_id, fetched.manifest.version, refused.reason
        )
        await self._report(FirmwareStatus.installation_failed, refused.reason, refused.security_event)

    async def _relay_status(self, frame: list[Any]) -> None:
        """The charger's firmware status notification to the backend, answered once the backend has it."""
        try:
            await validate_payload(Call(frame[1], frame[2], frame[3]), self._dialect.version.schemas)
        except OCPPError as exc:
            await self._answer_charger(call_error(self._dialect.version, frame[1], exc))
            return
        status = FirmwareStatus(frame[3]["status"])
        try:
            await self._report(
                status,
                f"the charger reported {status}",
                from_charger=True,
                request_id=frame[3].get("requestId"),
            )
        except _NOT_DELIVERED as exc:
            # The charger keeps the notification and sends it again (at-least-once, as with any CALL).
            LOG.warning(
                "%s: firmware status %s not delivered to the backend: %s", self._charger_id, status, exc
            )
            await self._answer_charger(
                json.dumps([4, frame[1], "InternalError", "not delivered, send again", {}])
            )
            return
        await self._answer_charger(json.dumps([3, frame[1], {}]))

    async def _answer_charger(self, frame: str) -> None:
        try:
            await self._to_charger.send(frame)
        except ConnectionClosed:
            # Unanswered, the charger sends its CALL again once it is back.
            LOG.info("%s: gone before its firmware status was answered", self._charger_id)

    async def _report(
        self,
        status: FirmwareStatus,
        detail: str,
        security_event: str | None = None,
        *,
        from_charger: bool = False,
        request_id: int | None = None,
    ) -> None:
        """Tell the backend (and the running job) of `status`: the gateway's own, or the charger's."""
        report = StatusReport(
            status,
            detail,
            ocpp_timestamp(dt.datetime.now(dt.UTC)),
            # The charger's own statuses name their update themselves (or none: Idle).
            request_id if from_charger else self._request_id,
            security_event,
            from_charger,
        )
        notifications = self._dialect.notifications(report)
        try:
            for notification in notifications:
                await self._to_cloud(notification)
        finally:
            if self._job_status is not None:
                await self._job_status(status, detail)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            LOG.error("%s: firmware relay failed", self._charger_id, exc_info=error)


def _is_frame(frame: Any) -> bool:
    return isinstance(frame, list) and len(frame) >= 3


def _is_call(frame: list[Any], action: str) -> bool:
    return frame[0] == 2 and len(frame) == 4 and frame[2] == action and isinstance(frame[3], dict)


def call_error(version: OcppVersion, message_id: str, error: OCPPError) -> str:
    """The CALLERROR for `error`, its code spelt as `version` spells it.

    Only the cause goes into the details, its locations redacted: ocpp also puts the whole message
    there, which is no JSON, and its causes quote the payload, a location's credentials included.
    """
    cause = error.details.get("cause") if isinstance(error.details, dict) else None
    details = {"cause": redacted_text(cause)} if isinstance(cause, str) else {}
    return json.dumps([4, message_id, version.error_code(error.code), str(error.description), details])


def _call_of(text: str, action: Action) -> list[Any] | None:
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    return frame if _is_frame(frame) and _is_call(frame, action.value) else None
