"""Signed firmware: the operator signs an image, the charger verifies it before anything else, installs A/B.

Format. What the charger downloads is one file, a *package*: a FirmwareManifest as one line
of JSON, a newline, then the image, so a single URL (UpdateFirmware's `location`, often a
pre-signed one) carries both. The operator signs the manifest's *statement*: the canonical
JSON (sorted keys, no spaces) of the format tag, version, image SHA-256, size, `force`, the
charger vendor and model the release is for and, when it has one, its expiry, with ECDSA P-256 over SHA-256 of those bytes (what `openssl dgst -sha256 -sign` makes of the
statement, or KMS Sign with ECDSA_SHA_256 in the cloud). The statement holds the
image's hash, so one signature covers the image and everything the charger decides on.

Trust. The charger pins the operator's public key (OperatorKey); nothing in the download
chooses the key. Because the version is signed, an attacker who can swap the download cannot
relabel an older signed image as newer, and because `force` is signed, only the operator can
allow a downgrade. Replaying a package the operator signed, as it is, is bounded by what else
is signed: the charger installs it only if it is the vendor and model the statement names (its
own BootNotification's) and its own clock is before the statement's expiry. A forced package
must carry an expiry, so an old downgrade cannot be installed at will years later.

Installing. FirmwareInstaller downloads, verifies size, hash and signature, refuses a
downgrade unless the signed manifest forces it (fetch_verified, which the gateway shares),
writes the image into the inactive slot of FirmwareSlots, reboots into it and keeps it only if
it boots; otherwise it rolls back to the slot it came from. Every step is reported with an
OCPP FirmwareStatus through a callback.

Real chargers. A charger speaking the OCPP 1.6 security extension takes only
SignedUpdateFirmware: the plain image, the manufacturer's signature over it and the
manufacturer's signing certificate, which it checks itself. The operator adds those two at
publish time (VendorSignature); they are part of the signed statement, so nobody on the way
can swap or strip them. The gateway verifies the package like a simulated charger, then
offers the image to the charger (gateway_firmware.py). Both report to the backend in 1.6's
words (core_notifications): it knows FirmwareStatusNotification's seven statuses, not the
extension's, and learns of a bad signature from a SecurityEventNotification.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import http.client
import json
import logging
import re
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.v16 import call
from ocpp.v16.enums import FirmwareStatus
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LOG = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60.0
# Charger firmware is tens of MB; a bigger download is refused before it fills memory.
MAX_PACKAGE_BYTES = 256 * 1024 * 1024

_SEMVER = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


class FirmwareRejected(Exception):
    """The package is not an image the operator signed: unsigned, tampered, or signed by another key."""


class DowngradeRefused(Exception):
    """The image is older than the running firmware (or either version is not comparable)."""


class DownloadError(Exception):
    """The package could not be fetched from its location."""


class NotForThisCharger(Exception):
    """A package the operator signed, but for another vendor or model, or past its expiry."""


# ------------------------------------------------------------------ versions
def precedence(version: str) -> tuple[object, ...]:
    """A sort key giving semantic versions (semver.org 2.0.0) their order; ValueError for anything else.

    Build metadata does not count, as semver says; a release ranks above its pre-releases,
    and numeric pre-release identifiers below alphanumeric ones.
    """
    match = _SEMVER.fullmatch(version)
    if match is None:
        raise ValueError(f"not a semantic version (MAJOR.MINOR.PATCH[-pre][+build]): {version!r}")
    pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in (match["pre"] or "").split(".") if p)
    return (int(match["major"]), int(match["minor"]), int(match["patch"]), not pre, pre)


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


# ---------------------------------------------------------- signing format
# Names what a signature is for, so a signature the key makes for anything else never passes.
# /2 binds the charger vendor and model and the expiry: a /1 statement (without them) is refused.
STATEMENT_FORMAT = "chargenet-firmware/2"


class VendorSignature(BaseModel):
    """The manufacturer's signature over the image and its certificate, as SignedUpdateFirmware carries them.

    The charger checks them itself (the security whitepaper: RSA-PSS or ECSchnorr over the
    image's SHA-256); here they are only checked to be well formed and within the schema's sizes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    signature: str = Field(max_length=800, description="base64, as SignedUpdateFirmware's firmware.signature")
    signing_certificate: str = Field(max_length=5500, description="PEM X.509 firmware signing certificate")

    @field_validator("signature")
    @classmethod
    def _base64(cls, signature: str) -> str:
        try:
            if not base64.b64decode(signature, validate=True):
                raise ValueError("the manufacturer's signature is empty")
        except binascii.Error as exc:
            raise ValueError("the manufacturer's signature is not base64") from exc
        return signature

    @field_validator("signing_certificate")
    @classmethod
    def _certificate(cls, pem: str) -> str:
        try:
            x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            raise ValueError("the signing certificate is not a PEM X.509 certificate") from exc
        return pem


class FirmwareManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the image")
    size: int = Field(ge=0, description="bytes in the image")
    force: bool = Field(default=False, description="the operator allows installing it over a newer version")
    # OCPP 1.6 CiString20Type, as BootNotification's chargePointVendor and chargePointModel.
    charge_point_vendor: str = Field(min_length=1, max_length=20, description="the chargers it is for")
    charge_point_model: str = Field(min_length=1, max_length=20, description="the chargers it is for")
    expires_at: dt.datetime | None = Field(
        default=None, description="UTC; no charger installs it from then on (required with force)"
    )
    signature: str | None = Field(
        default=None, description="base64 DER ECDSA P-256 (SHA-256) signature over statement()"
    )
    signer_key_id: str | None = Field(default=None, description="key_id() of the signing key")
    vendor: VendorSignature | None = Field(
        default=None, description="for chargers behind the gateway: without it a release reaches none"
    )

    @field_validator("version")
    @classmethod
    def _semantic(cls, version: str) -> str:
        precedence(version)
        return version

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, expires_at: dt.datetime | None) -> dt.datetime | None:
        # One spelling of the moment, so the statement's bytes are the same for signer and charger.
        if expires_at is not None and expires_at.utcoffset() is None:
            raise ValueError("the expiry must name its time zone (UTC)")
        return None if expires_at is None else expires_at.astimezone(dt.UTC).replace(microsecond=0)

    @model_validator(mode="after")
    def _forced_expires(self) -> FirmwareManifest:
        # A downgrade that never expires could be installed by whoever kept the package.
        if self.force and self.expires_at is None:
            raise ValueError("a forced package must carry an expiry")
        return self

    def statement(self) -> bytes:
        """The signed bytes: every field the charger acts on, in one canonical JSON form."""
        fields = {
            "format": STATEMENT_FORMAT,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "force": self.force,
            "charge_point_vendor": self.charge_point_vendor,
            "charge_point_model": self.charge_point_model,
            "expires_at": None if self.expires_at is None else self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        # Only when present, so releases signed before vendor signatures existed still verify;
        # adding or dropping it changes the statement all the same.
        if self.vendor is not None:
            fields["vendor"] = self.vendor.model_dump()
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key's fingerprint: SHA-256 of its SubjectPublicKeyInfo, the same for whoever holds the key."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class OperatorKey:
    """The operator's firmware signing public key, as pinned in the charger's configuration."""

    public_key: ec.EllipticCurvePublicKey
    key_id: str

    @classmethod
    def from_pem(cls, pem: bytes) -> OperatorKey:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the firmware signing key must be an ECDSA P-256 public key")
        return cls(key, key_id(key))


@dataclass(frozen=True)
class Target:
    """The chargers a release is for, in BootNotification's words, and until when it may be installed."""

    charge_point_vendor: str
    charge_point_model: str
    expires_at: dt.datetime | None = None


def unsigned_manifest(
    image: bytes, version: str, target: Target, *, force: bool, vendor: VendorSignature | None
) -> FirmwareManifest:
    """The manifest of `image` before its signature (ValidationError for a target it cannot carry)."""
    return FirmwareManifest(
        version=version,
        sha256=hashlib.sha256(image).hexdigest(),
        size=len(image),
        force=force,
        charge_point_vendor=target.charge_point_vendor,
        charge_point_model=target.charge_point_model,
        expires_at=target.expires_at,
        vendor=vendor,
    )


def sign(
    image: bytes,
    version: str,
    private_key_pem: bytes,
    password: bytes | None = None,
    *,
    target: Target,
    force: bool = False,
    vendor: VendorSignature | None = None,
) -> FirmwareManifest:
    """The operator's side: the manifest of `image`, signed with the operator's P-256 private key."""
    key = serialization.load_pem_private_key(private_key_pem, password=password)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("firmware is signed with an ECDSA P-256 private key")
    unsigned = unsigned_manifest(image, version, target, force=force, vendor=vendor)
    signature = key.sign(unsigned.statement(), ec.ECDSA(hashes.SHA256()))
    return unsigned.model_copy(
        update={"signature": base64.b64encode(signature).decode(), "signer_key_id": key_id(key.public_key())}
    )


def verify(manifest: FirmwareManifest, image: bytes, key: OperatorKey) -> None:
    """Raises FirmwareRejected unless `image` is what the manifest says and `key` signed the manifest."""
    if len(image) != manifest.size:
        raise FirmwareRejected(f"image is {len(image)} bytes, the manifest says {manifest.size}")
    if hashlib.sha256(image).hexdigest() != manifest.sha256:
        raise FirmwareRejected("image SHA-256 differs from the manifest's")
    if not manifest.signature:
        raise FirmwareRejected("the manifest is not signed")
    if manifest.signer_key_id != key.key_id:
        raise FirmwareRejected(
            f"signed by key {manifest.signer_key_id}, not the pinned operator key {key.key_id}"
        )
    try:
        signature = base64.b64decode(manifest.signature, validate=True)
        key.public_key.verify(signature, manifest.statement(), ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, InvalidSignature) as exc:
        raise FirmwareRejected("signature does not verify with the pinned operator key") from exc


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


def pack(manifest: FirmwareManifest, image: bytes) -> bytes:
    """The package a charger downloads: the manifest's JSON line, then the image."""
    return manifest.model_dump_json().encode() + b"\n" + image


def unpack(package: bytes) -> tuple[FirmwareManifest, bytes]:
    head, newline, image = package.partition(b"\n")
    if not newline:
        raise FirmwareRejected("not a firmware package: no manifest line")
    try:
        return FirmwareManifest.model_validate_json(head), image
    except ValidationError as exc:
        raise FirmwareRejected(f"not a firmware package: bad manifest ({exc.error_count()} errors)") from exc


# ----------------------------------------------------------------- download
async def download(location: str, attempts: int = 1, retry_interval_s: float = 0.0) -> bytes:
    """GET the package at `location`, up to `attempts` times."""
    # The query of a pre-signed URL is a credential: it stays out of logs and errors.
    shown = location.split("?")[0]
    if urllib.parse.urlsplit(location).scheme not in ("http", "https"):
        raise DownloadError(f"{shown}: only http(s) locations are supported")
    for attempt in range(1, attempts + 1):
        try:
            return await asyncio.to_thread(_get, location)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            LOG.warning("firmware download from %s, attempt %d/%d failed: %s", shown, attempt, attempts, exc)
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
# Restart the charger into firmware `version`; whether that firmware came up.
Boot = Callable[[str], Awaitable[bool]]


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


# ------------------------------------------------------------ A/B install
Slot = Literal["A", "B"]


class FirmwareSlots:
    """Two firmware slots: the charger boots the active one; an update goes into the other.

    A freshly written slot boots on trial: `confirm` keeps it, `roll_back` returns to the
    slot that last booted for good, which an update never touches.
    """

    def __init__(self, running_version: str) -> None:
        self._versions: dict[Slot, str | None] = {"A": running_version, "B": None}
        self.active: Slot = "A"
        self._confirmed: Slot = "A"

    @property
    def running_version(self) -> str:
        version = self._versions[self.active]
        assert version is not None, "the active slot always holds firmware"
        return version

    @property
    def inactive(self) -> Slot:
        return "B" if self.active == "A" else "A"

    def install(self, version: str) -> None:
        self._versions[self.inactive] = version

    def boot_inactive(self) -> None:
        self.active = self.inactive

    def confirm(self) -> None:
        self._confirmed = self.active

    def roll_back(self) -> None:
        self.active = self._confirmed


class FirmwareInstaller:
    def __init__(
        self,
        slots: FirmwareSlots,
        key: OperatorKey | None,
        report: Report,
        boot: Boot,
        *,
        identity: tuple[str, str],
        now: Callable[[], dt.datetime],
    ) -> None:
        """`identity` is the charger's (vendor, model) as its BootNotification says; `now` its clock."""
        self.slots = slots
        self._key = key
        self._report = report
        self._boot = boot
        self._identity = identity
        self._now = now

    async def update(
        self, location: str, *, attempts: int = 1, retry_interval_s: float = 0.0
    ) -> FirmwareStatus:
        """Download, verify, install and boot the package at `location`; the last status reported."""
        vendor, model = self._identity
        fetched = await fetch_verified(
            location,
            self._key,
            Installed(vendor, model, self.slots.running_version),
            self._report,
            now=self._now,
            attempts=attempts,
            retry_interval_s=retry_interval_s,
        )
        if isinstance(fetched, FirmwareStatus):
            return fetched
        await self._report(FirmwareStatus.installing, "")
        return await self._install(fetched.manifest.version)

    async def _install(self, version: str) -> FirmwareStatus:
        previous = self.slots.running_version
        self.slots.install(version)
        self.slots.boot_inactive()
        if await self._boot(version):
            self.slots.confirm()
            return await report_end(self._report, FirmwareStatus.installed, "")
        self.slots.roll_back()
        if not await self._boot(previous):
            LOG.error("firmware %s did not boot after the rollback either", previous)
        return await report_end(
            self._report,
            FirmwareStatus.installation_failed,
            f"{version} did not boot: rolled back to {previous}",
        )
