"""What the commands, diagnostics and firmware use cases need beyond the charger registry and the
pending calls: the diagnostics bucket, the firmware bucket and IoT Jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chargenet.domain.firmware import Execution, Release
from chargenet.ports.audit import Key, Page


@dataclass(frozen=True)
class StoredFile:
    """One object: a charger's diagnostics upload."""

    key: str
    size: int
    uploaded_at: str  # ISO 8601 UTC


@dataclass(frozen=True)
class StoredRelease:
    release: Release
    version_id: str  # the package's S3 version id, what a job pins ("": the bucket keeps none)


class DiagnosticsFiles(Protocol):
    def upload_url(self, key: str) -> str:
        """A pre-signed PUT URL the charger uploads its file to (it holds no AWS credentials)."""
        ...

    def files(self, prefix: str, limit: int, start: Key | None) -> Page[StoredFile]:
        """One page (one ListObjectsV2) of the objects under `prefix`, in key order."""
        ...

    def file(self, key: str) -> StoredFile | None: ...

    def download_url(self, key: str) -> str:
        """A short-lived pre-signed GET URL of the object as it is now (its version)."""
        ...


class FirmwarePackages(Protocol):
    def release(self, version: str) -> StoredRelease | None: ...

    def releases(self, limit: int, start: Key | None) -> Page[Release]:
        """One page (one ListObjectsV2 under firmware/, then a HEAD per release on it)."""
        ...

    def has_version(self, key: str, version_id: str) -> bool:
        """Whether that version of the object is stored (a forced package the operator signed)."""
        ...


class FirmwareRollouts(Protocol):
    """IoT Jobs (chargenet.adapters.iot_jobs.FirmwareJobs)."""

    def thing_arns(self, charger_ids: list[str]) -> list[str]: ...

    def create(
        self, job: str, document: dict[str, Any], targets: list[str], role_arn: str, max_per_minute: int
    ) -> None: ...

    def executions(
        self, version: str | None, limit: int, token: str | None
    ) -> tuple[list[Execution], str | None]: ...
