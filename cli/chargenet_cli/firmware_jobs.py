"""Firmware rollouts as AWS IoT Jobs: one job per deployment, one execution per charger.

The job document names the release and where its package is, as an IoT pre-signed URL
placeholder that names the package's S3 version id (the `-v2` placeholder, the only one that
takes a versionId, URL-encoded into the object URL): the job installs the object as it was when
the job was made, whatever is written to the key later. IoT swaps in a fresh pre-signed GET URL (signed with FirmwareJobsRole, valid for
DOWNLOAD_URL_EXPIRY_S) each time a charger asks for its execution, so a charger that takes days
to get to it still downloads with a valid URL, and chargers hold no AWS credentials. The device
side (chargenet_shim.jobs) runs the same download, verification and install as for an OCPP
UpdateFirmware and reports each firmware status on the execution. Locally, moto's IoT holds the
jobs and chargenet_local.iot_jobs answers the device MQTT API on the broker.

IoT keeps each execution's state, so the job is the rollout's record: `executions` reads it
back per charger. The rollout rate, the abort rule and the in-progress timeout are IoT's own
(the local stack records but does not enforce them).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

OPERATION = "chargenet.firmware.update"
JOB_PREFIX = "firmware-"
# IoT's bounds for pre-signed URLs are 60..3600 s: the URL is a credential, keep it short.
DOWNLOAD_URL_EXPIRY_S = 3600
# An install waits for the charger's sessions to end: a busy site can take most of a day.
IN_PROGRESS_TIMEOUT_MIN = 24 * 60
# Stop a rollout that breaks chargers: cancel once a fifth of at least ten have failed.
ABORT_FAILED_PERCENT = 20.0
ABORT_MIN_EXECUTED = 10
DEFAULT_MAX_PER_MINUTE = 50

_STATES = {
    "QUEUED": "queued",
    "SUCCEEDED": "installed",
    "FAILED": "failed",
    "REJECTED": "refused",
    "CANCELED": "canceled",
    "TIMED_OUT": "timed out",
    "REMOVED": "removed",
}
_IN_PROGRESS_STATES = {"Downloading": "downloading", "Downloaded": "downloading", "Installing": "installing"}


@dataclass(frozen=True)
class Execution:
    """One charger's part of a rollout, as IoT Jobs keeps it."""

    charger_id: str
    version: str
    job_id: str
    force: bool
    status: str  # IoT's: QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, REJECTED, ...
    details: dict[str, str]  # what the charger reported (firmwareStatus, reason, runningVersion)
    queued_at: str

    @property
    def state(self) -> str:
        return job_state(self.status, self.details)


def job_state(status: str, details: dict[str, str]) -> str:
    """queued, started, downloading, installing, installed, failed, refused, canceled, timed out, removed.

    The device turns an execution SUCCEEDED only once the charger has booted the release and
    reported Installed; FAILED when the download failed or the new firmware did not come up (and
    was rolled back); REJECTED when it refused the job: an invalid document, or a package refused
    before installing (signature, downgrade), the reason in its details.
    """
    if status == "IN_PROGRESS":
        return _IN_PROGRESS_STATES.get(details.get("firmwareStatus", ""), "started")
    return _STATES.get(status, status.lower())


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


class FirmwareJobs:
    """The IoT control-plane calls of a rollout (boto3 `iot` client)."""

    def __init__(self, iot: Any) -> None:
        self.iot = iot

    def thing_arns(self, charger_ids: list[str]) -> list[str]:
        """A charger's thing is named by its id; raises LookupError naming the ones with no thing."""
        arns, missing = [], []
        for charger_id in charger_ids:
            try:
                arns.append(self.iot.describe_thing(thingName=charger_id)["thingArn"])
            except self.iot.exceptions.ResourceNotFoundException:
                missing.append(charger_id)
        if missing:
            raise LookupError(", ".join(missing))
        return arns

    def create(
        self, job: str, document: dict[str, Any], targets: list[str], role_arn: str, max_per_minute: int
    ) -> None:
        self.iot.create_job(
            jobId=job,
            targets=targets,
            document=json.dumps(document),
            description=f"firmware {document['version']}" + (" (forced)" if document["force"] else ""),
            targetSelection="SNAPSHOT",
            presignedUrlConfig={"roleArn": role_arn, "expiresInSec": DOWNLOAD_URL_EXPIRY_S},
            jobExecutionsRolloutConfig={"maximumPerMinute": max_per_minute},
            abortConfig={
                "criteriaList": [
                    {
                        "failureType": "FAILED",
                        "action": "CANCEL",
                        "thresholdPercentage": ABORT_FAILED_PERCENT,
                        "minNumberOfExecutedThings": ABORT_MIN_EXECUTED,
                    }
                ]
            },
            timeoutConfig={"inProgressTimeoutInMinutes": IN_PROGRESS_TIMEOUT_MIN},
        )

    def executions(self, version: str | None = None) -> list[Execution]:
        """Per charger, its execution in the latest firmware job (of `version`, when given)."""
        latest: dict[str, Execution] = {}
        for job in sorted(self._firmware_jobs(), key=lambda j: (j["createdAt"], j["jobId"])):
            document = json.loads(self.iot.get_job_document(jobId=job["jobId"])["document"])
            if version is not None and document.get("version") != version:
                continue
            for execution in self._executions_of(job["jobId"], document):
                latest[execution.charger_id] = execution
        return sorted(latest.values(), key=lambda e: e.charger_id)

    def _firmware_jobs(self) -> list[dict[str, Any]]:
        pages = self.iot.get_paginator("list_jobs").paginate()
        return [job for page in pages for job in page.get("jobs", []) if job["jobId"].startswith(JOB_PREFIX)]

    def _executions_of(self, job: str, document: dict[str, Any]) -> list[Execution]:
        pages = self.iot.get_paginator("list_job_executions_for_job").paginate(jobId=job)
        found = []
        for page in pages:
            for summary in page.get("executionSummaries", []):
                charger_id = summary["thingArn"].rsplit("/", 1)[-1]
                described = self.iot.describe_job_execution(jobId=job, thingName=charger_id)["execution"]
                found.append(
                    Execution(
                        charger_id=charger_id,
                        version=str(document.get("version")),
                        force=bool(document.get("force")),
                        job_id=job,
                        status=described["status"],
                        details=dict(described.get("statusDetails", {}).get("detailsMap", {})),
                        queued_at=str(described.get("queuedAt", "")),
                    )
                )
        return found
