"""Firmware rollouts as AWS IoT Jobs: one job per deployment, one execution per charger
(OperatorCommandsFunction creates them: chargenet.services.operator_commands).

The job document (chargenet.domain.firmware.job_document) names the release and where its package is, as an IoT pre-signed URL
placeholder that names the package's S3 version id (the `-v2` placeholder, the only one that
takes a versionId, URL-encoded into the object URL): the job installs the object as it was when
the job was made, whatever is written to the key later. IoT swaps in a fresh pre-signed GET URL (signed with FirmwareJobsRole, valid for
DOWNLOAD_URL_EXPIRY_S) each time a charger asks for its execution, so a charger that takes days
to get to it still downloads with a valid URL, and chargers hold no AWS credentials. The device
side (chargenet_shim.jobs) runs the same download, verification and install as for an OCPP
UpdateFirmware and reports each firmware status on the execution. Locally, moto's IoT holds the
jobs and chargenet_local.iot_jobs answers the device MQTT API on the broker.

IoT keeps each execution's state, so the job is the rollout's record: `executions` reads it
back, one page of jobs at a time. The rollout rate, the abort rule and the in-progress timeout are IoT's own
(the local stack records but does not enforce them).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cached_property
from typing import Any

from chargenet.adapters.aws_clients import client_at_first_use
from chargenet.domain.firmware import JOB_PREFIX, Execution

# IoT's bounds for pre-signed URLs are 60..3600 s: the URL is a credential, keep it short.
DOWNLOAD_URL_EXPIRY_S = 3600
# An install waits for the charger's sessions to end: a busy site can take most of a day.
IN_PROGRESS_TIMEOUT_MIN = 24 * 60
# Stop a rollout that breaks chargers: cancel once a fifth of at least ten have failed.
ABORT_FAILED_PERCENT = 20.0
ABORT_MIN_EXECUTED = 10


class FirmwareJobs:
    """The IoT control-plane calls of a rollout (boto3 `iot` client)."""

    def __init__(self, iot: Any = None) -> None:
        self._given_iot = iot

    @cached_property
    def iot(self) -> Any:
        return client_at_first_use("iot", self._given_iot)

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

    def executions(
        self, version: str | None, limit: int, token: str | None
    ) -> tuple[list[Execution], str | None]:
        """The executions of one page of at most `limit` jobs (of `version`, when given), and the
        token of the next page (None: the last)."""
        page = self.iot.list_jobs(maxResults=limit, **({"nextToken": token} if token else {}))
        found: list[Execution] = []
        for job in page.get("jobs", []):
            if not job["jobId"].startswith(JOB_PREFIX):
                continue
            document = json.loads(self.iot.get_job_document(jobId=job["jobId"])["document"])
            if version is None or document.get("version") == version:
                created = job.get("createdAt")
                created_at = created.isoformat() if isinstance(created, dt.datetime) else str(created or "")
                found += self._executions_of(job["jobId"], created_at, document)
        return found, page.get("nextToken") or None

    def _executions_of(self, job: str, created_at: str, document: dict[str, Any]) -> list[Execution]:
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
                        job_created_at=created_at,
                        status=described["status"],
                        details=dict(described.get("statusDetails", {}).get("detailsMap", {})),
                        queued_at=str(described.get("queuedAt", "")),
                    )
                )
        return found
