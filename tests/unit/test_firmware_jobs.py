"""Firmware rollouts as IoT Jobs (chargenet.domain.firmware, chargenet.adapters.iot_jobs): the
document, the job IoT is asked for, and each charger's execution read back, against moto's IoT in
process."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from ocpp.v16.enums import FirmwareStatus
from ocpp.v201.enums import FirmwareStatusEnumType

from chargenet.adapters.iot_jobs import FirmwareJobs
from chargenet.domain.firmware import (
    FIRMWARE_STATUS_PROGRESS,
    OPERATION,
    Execution,
    FirmwareProgress,
    PackageObject,
    job_document,
    job_id,
    job_state,
)

ROLE = "arn:aws:iam::123456789012:role/FirmwareJobsRole"
REGION = "us-east-1"
NOW = dt.datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=dt.UTC)


@pytest.fixture
def iot() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("iot", region_name="us-east-1")
        for charger_id in ("CP-1", "CP-2", "CP-3"):
            client.create_thing(thingName=charger_id)
        yield client


def _deploy(jobs: FirmwareJobs, version: str, chargers: list[str], now: dt.datetime = NOW) -> str:
    job = job_id(version, False, now)
    document = job_document(
        version, False, PackageObject("fw-bucket", f"firmware/{version}/package", "v1", REGION)
    )
    jobs.create(job, document, jobs.thing_arns(chargers), ROLE, 10)
    return job


# ------------------------------------------------------------------ pure parts
@pytest.mark.parametrize(
    ("status", "details", "state"),
    [
        ("QUEUED", {}, "queued"),
        ("IN_PROGRESS", {}, "started"),
        ("IN_PROGRESS", {"firmwareStatus": "Downloading"}, "downloading"),
        ("IN_PROGRESS", {"firmwareStatus": "Downloaded"}, "downloading"),
        ("IN_PROGRESS", {"firmwareStatus": "Installing"}, "installing"),
        ("SUCCEEDED", {"firmwareStatus": "Installed"}, "installed"),
        ("FAILED", {"firmwareStatus": "InstallationFailed", "reason": "InvalidFirmwareSignature"}, "failed"),
        ("REJECTED", {"reason": "unknown operation"}, "refused"),
        # OCPP 2.0.1's words (and the 1.6 security extension's): steps on the way, and failures.
        ("IN_PROGRESS", {"firmwareStatus": "DownloadScheduled"}, "downloading"),
        ("IN_PROGRESS", {"firmwareStatus": "DownloadPaused"}, "downloading"),
        ("IN_PROGRESS", {"firmwareStatus": "SignatureVerified"}, "downloading"),
        ("IN_PROGRESS", {"firmwareStatus": "InstallScheduled"}, "installing"),
        ("IN_PROGRESS", {"firmwareStatus": "InstallRebooting"}, "installing"),
        ("IN_PROGRESS", {"firmwareStatus": "Idle"}, "started"),
        ("IN_PROGRESS", {"firmwareStatus": "Dancing"}, "started"),
        ("IN_PROGRESS", {"firmwareStatus": "InvalidSignature"}, "failed"),
        ("IN_PROGRESS", {"firmwareStatus": "InstallVerificationFailed"}, "failed"),
        ("IN_PROGRESS", {"firmwareStatus": "DownloadFailed"}, "failed"),
        ("IN_PROGRESS", {"firmwareStatus": "InstallationFailed"}, "failed"),
        ("FAILED", {"firmwareStatus": "InstallVerificationFailed"}, "failed"),
        ("REJECTED", {"firmwareStatus": "InvalidSignature", "reason": "InvalidFirmwareSignature"}, "refused"),
        ("CANCELED", {}, "canceled"),
        ("TIMED_OUT", {}, "timed out"),
        ("REMOVED", {}, "removed"),
    ],
)
def test_job_state_reads_the_execution_and_what_the_charger_reported(status, details, state):
    assert job_state(status, details) == state


def test_the_document_names_the_package_version_as_an_iot_presigned_url_placeholder():
    """The v2 placeholder with the version id URL-encoded into the object URL: a later write to the
    key is a new version, and the job still installs the one it was made with."""
    package = PackageObject("fw-bucket", "firmware/1.1.0/forced-package", "3/L4kqtJl+cQ=", "eu-west-1")
    document = job_document("1.1.0", True, package)

    assert document == {
        "operation": OPERATION,
        "version": "1.1.0",
        "force": True,
        "location": "${aws:iot:s3-presigned-url-v2:https://s3.eu-west-1.amazonaws.com/fw-bucket/"
        "firmware/1.1.0/forced-package%3FversionId%3D3%2FL4kqtJl%2BcQ%3D}",
    }


def test_a_package_without_a_version_id_is_refused():
    with pytest.raises(ValueError, match="names its S3 version id"):
        job_document("1.1.0", False, PackageObject("fw-bucket", "firmware/1.1.0/package", "", REGION))


def test_job_ids_are_valid_for_iot_unique_per_deployment_and_readable():
    plain, forced = job_id("1.2.3-rc.1+build.7", False, NOW), job_id("1.2.3-rc.1+build.7", True, NOW)
    long = job_id("10.20.30-alpha.beta.gamma.delta+sha.0123456789abcdef", True, NOW)

    for job in (plain, forced, long):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", job), job
    assert plain.startswith("firmware-1_2_3-rc_1_build_7-")
    assert "-forced-" in forced
    assert job_id("1.1.0", False, NOW) != job_id("1.1.0", False, NOW + dt.timedelta(microseconds=1))


# ------------------------------------------------------------------ against IoT
def test_a_deployment_is_one_job_with_an_execution_per_charger_and_iots_safeguards(iot):
    jobs = FirmwareJobs(iot)

    job = _deploy(jobs, "1.1.0", ["CP-1", "CP-2"])

    described = iot.describe_job(jobId=job)["job"]
    assert described["presignedUrlConfig"] == {"roleArn": ROLE, "expiresInSec": 3600}
    assert described["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 10}
    [abort] = described["abortConfig"]["criteriaList"]
    assert (abort["failureType"], abort["action"]) == ("FAILED", "CANCEL")
    assert described["timeoutConfig"] == {"inProgressTimeoutInMinutes": 1440}
    assert json.loads(iot.get_job_document(jobId=job)["document"])["version"] == "1.1.0"
    assert [(e.charger_id, e.state) for e in _all(jobs)] == [("CP-1", "queued"), ("CP-2", "queued")]


def test_a_charger_without_a_thing_is_named_and_nothing_is_created(iot):
    jobs = FirmwareJobs(iot)

    with pytest.raises(LookupError, match="CP-9"):
        jobs.thing_arns(["CP-1", "CP-9"])
    assert iot.list_jobs()["jobs"] == []


def test_status_reads_the_executions_a_page_of_jobs_at_a_time_filtered_by_version(iot):
    jobs = FirmwareJobs(iot)
    first = _deploy(jobs, "1.1.0", ["CP-1", "CP-2"])
    later = _deploy(jobs, "1.2.0", ["CP-2"], NOW + dt.timedelta(minutes=5))

    page, token = jobs.executions(None, 1, None)
    rest, end = jobs.executions(None, 1, token)
    assert token is not None and end is None
    assert {(e.charger_id, e.job_id) for e in page + rest} == {
        ("CP-1", first),
        ("CP-2", first),
        ("CP-2", later),
    }
    assert all(e.job_created_at for e in page + rest)  # what the client orders a charger's jobs by
    assert sorted(e.charger_id for e in _all(jobs, "1.1.0")) == ["CP-1", "CP-2"]
    assert _all(jobs, "9.9.9") == []


def test_jobs_that_are_not_firmware_rollouts_are_left_out(iot):
    arn = iot.describe_thing(thingName="CP-3")["thingArn"]
    iot.create_job(jobId="reboot-all", targets=[arn], document=json.dumps({"operation": "reboot"}))

    assert _all(FirmwareJobs(iot)) == []


def _all(jobs: FirmwareJobs, version: str | None = None) -> list[Execution]:
    found, token = jobs.executions(version, 50, None)
    assert token is None
    return sorted(found, key=lambda e: (e.charger_id, e.job_created_at))


def test_every_firmware_status_word_of_both_versions_is_read() -> None:
    words = {str(word) for word in FirmwareStatus} | {str(word) for word in FirmwareStatusEnumType}
    assert set(FIRMWARE_STATUS_PROGRESS) == words
    failures = {
        word for word, progress in FIRMWARE_STATUS_PROGRESS.items() if progress is FirmwareProgress.FAILED
    }
    assert failures == {
        "DownloadFailed",
        "InstallationFailed",
        "InstallVerificationFailed",
        "InvalidSignature",
    }
