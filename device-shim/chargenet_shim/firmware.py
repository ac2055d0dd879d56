"""Signed firmware on the device: download a package, verify it, decide whether this charger takes it.

The package format and its signature (manifest, statement, pack/unpack, verify) are
chargenet_firmware_format's, shared with the operator's CLI. This module is what a charger
does with a package: fetch_verified downloads it, verifies size, hash and signature against
the pinned operator key, checks it is for this charger (vendor, model, expiry on the charger's
own clock) and refuses a downgrade unless the signed manifest forces it. The gateway runs it for
a real charger (gateway_firmware.py), and a simulated charger before its A/B install
(sim/firmware_install.py). Every step is reported with an OCPP FirmwareStatus through a callback.

Both report to the backend in 1.6's words (core_notifications): it knows
FirmwareStatusNotification's seven statuses, not the security extension's, and learns of a bad
signature from a SecurityEventNotification.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import logging
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import call
from ocpp.v16.enums import FirmwareStatus

from chargenet_firmware_format import (
    FirmwareManifest,
    FirmwareRejected,
    OperatorKey,
    precedence,
    unpack,
    verify,
)
from chargenet_shim.redaction import failure, redacted_location

LOG = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60.0
# Charger firmware is tens of MB; a bigger download is refused before it fills memory.
MAX_PACKAGE_BYTES = 256 * 1024 * 1024
# UpdateFirmware's retryInterval when the backend leaves it out.
DEFAULT_RETRY_INTERVAL_S = 30


class DowngradeRefused(Exception):
    """The image is older than the running firmware (or either version is not comparable)."""


class DownloadError(Exception):
    """The package could not be fetched from its location."""


class NotForThisCharger(Exception):
    """A package the operator signed, but for another vendor or model, or past its expiry."""


# ------------------------------------------------------------------ versions
def check_version(running: str, candidate: str, *, force: bool = False) -> None:
    """Raises DowngradeRefused for an older candidate, or a running version that cannot be compared."""
    if force:
        return
    try:
        older = precedence(candidate) < precedence(running)
    except ValueError as exc:
        # Without an order there is no telling a downgrade: only the operator can decide.
        raise DowngradeRefused(f"cannot compare {candidate!r} with the running {running!r}: {exc}") from exc
    if older:
        raise DowngradeRefused(f"{candidate} is older than the running {running}")


@dataclass(frozen=True)
class Installed:
    """The charger a package is checked against: what its BootNotification says it is and runs."""

    charge_point_vendor: str
    charge_point_model: str
    version: str


def check_applicable(manifest: FirmwareManifest, charger: Installed, now: dt.datetime) -> None:
    """Raises NotForThisCharger unless the signed statement names this charger's vendor and model
    and `now`, the charger's own clock, is before its expiry."""
    meant = (manifest.charge_point_vendor, manifest.charge_point_model)
    if meant != (charger.charge_point_vendor, charger.charge_point_model):
        raise NotForThisCharger(
            f"signed for {meant[0]} {meant[1]}, this charger is "
            f"{charger.charge_point_vendor} {charger.charge_point_model}"
        )
    if manifest.expires_at is not None and now >= manifest.expires_at:
        raise NotForThisCharger(f"the package expired at {manifest.expires_at.isoformat()}")


# ------------------------------------------------------------ UpdateFirmware
def retrieve_moment(value: str) -> dt.datetime:
    """UpdateFirmware's retrieveDate (UTC when it names no zone); a CALLERROR for anything else."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise PropertyConstraintViolationError(details={"cause": f"not a date and time: {value}"}) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# ----------------------------------------------------------------- download
async def download(location: str, attempts: int = 1, retry_interval_s: float = 0.0) -> bytes:
    """GET the package at `location`, up to `attempts` times."""
    # A user name, password or pre-signed URL's query is a credential: it stays out of logs and
    # errors (which become status details), and so does a failure's message, which quotes them.
    shown = redacted_location(location)
    if urllib.parse.urlsplit(location).scheme not in ("http", "https"):
        raise DownloadError(f"{shown}: only http(s) locations are supported")
    for attempt in range(1, attempts + 1):
        try:
            return await asyncio.to_thread(_get, location)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            LOG.warning(
                "firmware download from %s, attempt %d/%d failed: %s", shown, attempt, attempts, failure(exc)
            )
        if attempt < attempts:
            await asyncio.sleep(retry_interval_s)
    raise DownloadError(f"{shown}: {attempts} download attempt(s) failed")


def _get(location: str) -> bytes:
    # urlopen raises HTTPError (an OSError) for any answer but 2xx.
    with urllib.request.urlopen(location, timeout=DOWNLOAD_TIMEOUT_S) as response:
        package = response.read(MAX_PACKAGE_BYTES + 1)
    if len(package) > MAX_PACKAGE_BYTES:
        raise DownloadError(f"package larger than {MAX_PACKAGE_BYTES} bytes")
    return package


# ------------------------------------------------------------ verification
# A status and, for refusals and failures, why (no secrets: it may go to the backend).
Report = Callable[[FirmwareStatus, str], Awaitable[None]]


@dataclass(frozen=True)
class VerifiedPackage:
    manifest: FirmwareManifest
    image: bytes


async def fetch_verified(
    location: str,
    key: OperatorKey | None,
    charger: Installed,
    report: Report,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    attempts: int = 1,
    retry_interval_s: float = 0.0,
) -> VerifiedPackage | FirmwareStatus:
    """Download, verify, check it is for this charger and not expired (on `now`, the charger's clock)
    and apply the version rule: the package, or the status that ended it (reported)."""
    await report(FirmwareStatus.downloading, "")
    try:
        package = await download(location, attempts, retry_interval_s)
    except DownloadError as exc:
        return await report_end(report, FirmwareStatus.download_failed, str(exc))
    await report(FirmwareStatus.downloaded, "")
    try:
        verified = _verified(package, key)
    except FirmwareRejected as exc:
        return await report_end(report, FirmwareStatus.invalid_signature, str(exc))
    try:
        check_applicable(verified.manifest, charger, now())
        # Only the operator's signature can allow a downgrade: `force` is part of the statement.
        check_version(charger.version, verified.manifest.version, force=verified.manifest.force)
    except (NotForThisCharger, DowngradeRefused) as exc:
        return await report_end(report, FirmwareStatus.installation_failed, str(exc))
    return verified


def _verified(package: bytes, key: OperatorKey | None) -> VerifiedPackage:
    if key is None:
        raise FirmwareRejected("no operator signing key is pinned: every image is refused")
    manifest, image = unpack(package)
    verify(manifest, image, key)
    return VerifiedPackage(manifest, image)


async def report_end(report: Report, status: FirmwareStatus, detail: str) -> FirmwareStatus:
    """Report the status an update ends with, logging why; returns it."""
    if detail:
        LOG.warning("firmware update %s: %s", status, detail)
    await report(status, detail)
    return status


# ------------------------------------------------------ telling the backend
INVALID_FIRMWARE_SIGNATURE = "InvalidFirmwareSignature"
# The security whitepaper's tech info is at most 255 characters.
TECH_INFO_LENGTH = 255
# The security extension's statuses that 1.6's FirmwareStatusNotification lacks, as the nearest
# of its seven; the others are the same word in both.
_CORE_STATUS: dict[FirmwareStatus, FirmwareStatus] = {
    FirmwareStatus.download_scheduled: FirmwareStatus.downloading,
    FirmwareStatus.download_paused: FirmwareStatus.downloading,
    FirmwareStatus.signature_verified: FirmwareStatus.downloaded,
    FirmwareStatus.install_scheduled: FirmwareStatus.installing,
    FirmwareStatus.install_rebooting: FirmwareStatus.installing,
    FirmwareStatus.install_verification_failed: FirmwareStatus.installation_failed,
    FirmwareStatus.invalid_signature: FirmwareStatus.installation_failed,
}

CoreNotification = call.SecurityEventNotification | call.FirmwareStatusNotification


def core_notifications(
    status: FirmwareStatus, detail: str, timestamp: str, *, security_event: str | None = None
) -> list[CoreNotification]:
    """The CALLs that tell the backend of `status` in OCPP 1.6's words, in the order to send them.

    An invalid signature is InstallationFailed after a SecurityEventNotification
    InvalidFirmwareSignature (which the backend pages on); `security_event` names another event
    to send first. `detail` goes into the event's tech info only: the status has no room for it.
    """
    event = INVALID_FIRMWARE_SIGNATURE if status is FirmwareStatus.invalid_signature else security_event
    notifications: list[CoreNotification] = []
    if event is not None:
        notifications.append(
            call.SecurityEventNotification(
                type=event, timestamp=timestamp, tech_info=detail[:TECH_INFO_LENGTH] or None
            )
        )
    notifications.append(call.FirmwareStatusNotification(_CORE_STATUS.get(status, status)))
    return notifications
