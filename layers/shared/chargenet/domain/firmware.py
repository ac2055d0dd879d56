"""Firmware releases and rollouts: what a release is, where its package lives, which chargers a
rollout reaches, and how big a charger's diagnostics file may be to be read.

A release's metadata is its package's S3 object metadata (docs/firmware.md): it describes one
immutable object and is written in the same PUT, so the two can never disagree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

PACKAGE_PREFIX = "firmware/"
# Semantic Versioning 2.0.0 (semver.org's own expression), what chargers compare releases by.
SEMANTIC_VERSION = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)
MAX_VERSION_CHARS = 64

DIAGNOSTICS_PREFIX = "diagnostics/"
# The bucket's expire-oversized-diagnostics lifecycle rule uses the same number (a test holds them equal).
MAX_DIAGNOSTICS_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Release:
    version: str
    sha256: str
    size: int
    key_id: str
    published_at: str
    charge_point_vendor: str = ""
    charge_point_model: str = ""
    expires_at: str = ""  # ISO 8601 UTC; empty: no expiry

    def metadata(self) -> dict[str, str]:
        """As S3 user metadata: string values, lowercase names."""
        return {
            "version": self.version,
            "sha256": self.sha256,
            "size": str(self.size),
            "key-id": self.key_id,
            "published-at": self.published_at,
            "charge-point-vendor": self.charge_point_vendor,
            "charge-point-model": self.charge_point_model,
            "expires-at": self.expires_at,
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> Release:
        return cls(
            version=metadata["version"],
            sha256=metadata["sha256"],
            size=int(metadata["size"]),
            key_id=metadata["key-id"],
            published_at=metadata["published-at"],
            # Releases stored before the statement named them: chargers refuse those packages.
            charge_point_vendor=metadata.get("charge-point-vendor", ""),
            charge_point_model=metadata.get("charge-point-model", ""),
            expires_at=metadata.get("expires-at", ""),
        )

    def expired(self, now: dt.datetime) -> bool:
        return bool(self.expires_at) and dt.datetime.fromisoformat(self.expires_at) <= now


def is_semantic_version(version: str) -> bool:
    return len(version) <= MAX_VERSION_CHARS and SEMANTIC_VERSION.fullmatch(version) is not None


def package_key(version: str, *, force: bool = False) -> str:
    return f"{PACKAGE_PREFIX}{version}/{'forced-package' if force else 'package'}"


def in_rollout(charger_id: str, version: str, percent: int) -> bool:
    """Whether the charger is in the first `percent` % of this release's rollout.

    The hash includes the version: raising the percentage of one release only adds chargers
    (the early ones stay in), while each release starts on a different group of chargers.
    """
    bucket = int.from_bytes(hashlib.sha256(f"{version}\n{charger_id}".encode()).digest()[:8], "big") % 100
    return bucket < percent


def select_targets(charger_ids: Iterable[str], version: str, percent: int) -> list[str]:
    """The chargers, each once and in order, that are in the release's first `percent` %."""
    return [cid for cid in sorted(set(charger_ids)) if in_rollout(cid, version, percent)]


def diagnostics_key(charger_id: str, at: dt.datetime) -> str:
    return f"{diagnostics_prefix(charger_id)}{at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.log"


def diagnostics_prefix(charger_id: str) -> str:
    return f"{DIAGNOSTICS_PREFIX}{charger_id}/"


def oversized_diagnostics(key: str, size: int, limit: int = MAX_DIAGNOSTICS_BYTES) -> str | None:
    """Why a diagnostics file is not read (a charger's upload is untrusted), or None."""
    if size <= limit:
        return None
    return (
        f"{key} is {size} bytes, over the {limit}-byte limit for diagnostics files: "
        "not read (the bucket deletes such files after a day)"
    )


# ------------------------------------------------------------ rollout states
_STATES = {
    "QUEUED": "queued",
    "SUCCEEDED": "installed",
    "FAILED": "failed",
    "REJECTED": "refused",
    "CANCELED": "canceled",
    "TIMED_OUT": "timed out",
    "REMOVED": "removed",
}


class FirmwareProgress(StrEnum):
    """What a charger's firmware status says of its update, whichever version's word it is."""

    IDLE = "idle"
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    INSTALLED = "installed"
    FAILED = "failed"


# Every FirmwareStatusNotification word: OCPP 1.6's seven and the fourteen of 2.0.1 (and of 1.6's
# security extension, the same words). A verified signature is still on the way to installing;
# a bad signature or an install that did not verify is a failure like InstallationFailed.
FIRMWARE_STATUS_PROGRESS: dict[str, FirmwareProgress] = {
    "Idle": FirmwareProgress.IDLE,
    "DownloadScheduled": FirmwareProgress.DOWNLOADING,
    "Downloading": FirmwareProgress.DOWNLOADING,
    "DownloadPaused": FirmwareProgress.DOWNLOADING,
    "Downloaded": FirmwareProgress.DOWNLOADING,
    "SignatureVerified": FirmwareProgress.DOWNLOADING,
    "InstallScheduled": FirmwareProgress.INSTALLING,
    "Installing": FirmwareProgress.INSTALLING,
    "InstallRebooting": FirmwareProgress.INSTALLING,
    "Installed": FirmwareProgress.INSTALLED,
    "DownloadFailed": FirmwareProgress.FAILED,
    "InstallationFailed": FirmwareProgress.FAILED,
    "InstallVerificationFailed": FirmwareProgress.FAILED,
    "InvalidSignature": FirmwareProgress.FAILED,
}


def firmware_progress(status: str | None) -> FirmwareProgress | None:
    """What the charger's status word says of its update; None for no word or one not in OCPP."""
    return FIRMWARE_STATUS_PROGRESS.get(status or "")


@dataclass(frozen=True)
class Execution:
    """One charger's part of a rollout, as IoT Jobs keeps it."""

    charger_id: str
    version: str
    job_id: str
    job_created_at: str  # orders one charger's executions: the latest job's is its rollout state
    force: bool
    status: str  # IoT's: QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, REJECTED, ...
    details: dict[str, str]  # what the charger reported (firmwareStatus, reason, runningVersion)
    queued_at: str

    @property
    def state(self) -> str:
        return job_state(self.status, self.details)


def job_state(status: str, details: dict[str, str]) -> str:
    """queued, started, downloading, installing, installed, failed, refused, canceled, timed out, removed.

    While IN_PROGRESS, the firmware status the charger last reported decides (FIRMWARE_STATUS_PROGRESS).

    The device turns an execution SUCCEEDED only once the charger has booted the release and
    reported Installed; FAILED when the download failed or the new firmware did not come up (and
    was rolled back); REJECTED when it refused the job: an invalid document, or a package refused
    before installing (signature, downgrade), the reason in its details.
    """
    if status == "IN_PROGRESS":
        # The charger's word, in either version's vocabulary: a failure it reported counts as one
        # before the execution turns terminal.
        progress = firmware_progress(details.get("firmwareStatus"))
        return "started" if progress in (None, FirmwareProgress.IDLE) else str(progress)
    return _STATES.get(status, status.lower())


# ---------------------------------------------------------------- IoT job document
OPERATION = "chargenet.firmware.update"
JOB_PREFIX = "firmware-"
DEFAULT_MAX_PER_MINUTE = 50


@dataclass(frozen=True)
class PackageObject:
    """One stored version of a package: what a job pins."""

    bucket: str
    key: str
    version_id: str
    region: str


def job_document(version: str, force: bool, package: PackageObject) -> dict[str, Any]:
    return {
        "operation": OPERATION,
        "version": version,
        "force": force,
        "location": presigned_url_placeholder(package),
    }


def presigned_url_placeholder(package: PackageObject) -> str:
    """IoT's placeholder for a GET of exactly this object version: path style, the query URL-encoded."""
    if not package.version_id:
        raise ValueError("a job's package names its S3 version id")
    url = f"https://s3.{package.region}.amazonaws.com/{package.bucket}/{quote(package.key)}"
    return f"${{aws:iot:s3-presigned-url-v2:{url}%3FversionId%3D{quote(package.version_id, safe='')}}}"


def job_id(version: str, force: bool, now: dt.datetime) -> str:
    """Unique per deployment and readable; IoT allows only letters, digits, - and _ (64 at most)."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", version)[:20]
    return f"{JOB_PREFIX}{readable}{'-forced' if force else ''}-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
