"""The diagnostics and firmware buckets as the operator API reads them (boto3 S3, SigV4).

Pre-signed URLs are signed with the function's own credentials: S3 requires SigV4 for objects
encrypted with a KMS key, and a URL stops working when those credentials expire (a Lambda role's
session lasts hours, longer than any URL here is valid).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.firmware import PACKAGE_PREFIX, Release, package_key
from chargenet.ports.audit import Key, Page
from chargenet.ports.firmware import DiagnosticsFiles, FirmwarePackages, StoredFile, StoredRelease

UPLOAD_URL_EXPIRY_S = 3600  # a charger may take a while to gather its logs
DOWNLOAD_URL_EXPIRY_S = 300  # the operator's CLI fetches it at once


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4"))


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _page_options(limit: int, start: Key | None) -> dict[str, Any]:
    token = (start or {}).get("token")
    return {"MaxKeys": limit, **({"ContinuationToken": token} if isinstance(token, str) else {})}


def _next(answer: dict[str, Any]) -> Key | None:
    token = answer.get("NextContinuationToken")
    return {"token": token} if answer.get("IsTruncated") and token else None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


@raises_store_unavailable
class S3DiagnosticsFiles(DiagnosticsFiles):
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @cached_property
    def _s3(self) -> Any:
        return s3_client()

    def upload_url(self, key: str) -> str:
        return str(
            self._s3.generate_presigned_url(
                "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=UPLOAD_URL_EXPIRY_S
            )
        )

    def files(self, prefix: str, limit: int, start: Key | None) -> Page[StoredFile]:
        answer = self._s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, **_page_options(limit, start))
        files = [
            StoredFile(obj["Key"], int(obj["Size"]), _iso(obj["LastModified"]))
            for obj in answer.get("Contents", [])
        ]
        return Page(files, _next(answer))

    def file(self, key: str) -> StoredFile | None:
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in ("404", "NoSuchKey"):
                return None
            raise
        return StoredFile(key, int(head["ContentLength"]), _iso(head["LastModified"]))

    def download_url(self, key: str) -> str:
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=DOWNLOAD_URL_EXPIRY_S
            )
        )


@raises_store_unavailable
class S3FirmwarePackages(FirmwarePackages):
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @cached_property
    def _s3(self) -> Any:
        return s3_client()

    def release(self, version: str) -> StoredRelease | None:
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=package_key(version))
        except ClientError as error:
            if _error_code(error) in ("404", "NoSuchKey"):
                return None
            raise
        version_id = head.get("VersionId")
        return StoredRelease(
            Release.from_metadata(head["Metadata"]),
            "" if not version_id or version_id == "null" else str(version_id),
        )

    def releases(self, limit: int, start: Key | None) -> Page[Release]:
        answer = self._s3.list_objects_v2(
            Bucket=self.bucket, Prefix=PACKAGE_PREFIX, **_page_options(limit, start)
        )
        releases = []
        for obj in answer.get("Contents", []):
            version = obj["Key"][len(PACKAGE_PREFIX) :].split("/", 1)[0]
            if obj["Key"] == package_key(version):  # forced packages are rollouts' copies, not releases
                stored = self.release(version)
                if stored is not None:
                    releases.append(stored.release)
        return Page(releases, _next(answer))

    def has_version(self, key: str, version_id: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        except ClientError as error:
            # 400: a version id S3 never issued; 404: no such key or version.
            if _error_code(error) in ("400", "404", "NoSuchKey", "NoSuchVersion", "InvalidArgument"):
                return False
            raise
        return True
