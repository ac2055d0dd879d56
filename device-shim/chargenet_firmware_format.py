"""The signed firmware package format: what the operator's CLI writes and the shim verifies.

Why a module of its own. Two sides use this format and nothing else of each other: the cloud
CLI (`chargenet firmware publish/deploy/status`) builds, signs and reads packages, the device
shim (a simulated charger, or the gateway for a real one) verifies them. It imports neither
side, only pydantic and cryptography (no AWS, KMS, awscrt or OCPP), so the CLI depends on the
format rather than on the device package, and a change to the format is one diff both sides
see. It is a top-level module, not `chargenet_shim.firmware_format`, so importing it never runs
the device package; it is installed with the chargenet-shim distribution (device-shim's
pyproject lists it), because every machine that runs either side installs that already. It
can become its own distribution by moving this one file. The charger's rules for *deciding*
on a verified package (downgrades, vendor and model, expiry) and the download are the
device's, in chargenet_shim.firmware.

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

Real chargers. A charger speaking the OCPP 1.6 security extension takes only
SignedUpdateFirmware: the plain image, the manufacturer's signature over it and the
manufacturer's signing certificate, which it checks itself. The operator adds those two at
publish time (VendorSignature); they are part of the signed statement, so nobody on the way
can swap or strip them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_SEMVER = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


class FirmwareRejected(Exception):
    """The package is not an image the operator signed: unsigned, tampered, or signed by another key."""


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


# ------------------------------------------------------------------ package
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
