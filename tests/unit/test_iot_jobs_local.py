"""The local stack's IoT Jobs device MQTT API (chargenet_local.iot_jobs) over moto's IoT in process:
requests handed to its message handler, replies and notify-next captured from its publish."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from chargenet_local.iot_jobs import IotJobs

REGION = "us-east-1"
BUCKET = "fw-bucket"
KEY = "firmware/0.2.0/package"
ROLE = "arn:aws:iam::123456789012:role/FirmwareJobsRole"


class Broker:
    """What the responder published, in order."""

    def __init__(self) -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def publish(self, topic: str, payload: bytes) -> None:
        self.messages.put((topic, json.loads(payload)))

    def next(self) -> tuple[str, dict[str, Any]]:
        return self.messages.get(timeout=5)

    def nothing_more(self) -> bool:
        return self.messages.empty()


@pytest.fixture
def setup() -> Iterator[tuple[IotJobs, Any, Broker]]:
    with mock_aws():
        from moto.iot.models import iot_backends

        iot = boto3.client("iot", region_name=REGION)
        for thing in ("CP-1", "CP-2"):
            iot.create_thing(thingName=thing)
        s3 = boto3.client(
            "s3", region_name=REGION, config=Config(signature_version="s3v4", s3={"addressing_style": "path"})
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"package")
        broker = Broker()
        jobs = IotJobs(
            backend=lambda: iot_backends[DEFAULT_ACCOUNT_ID][REGION], s3=s3, publish=broker.publish
        )
        jobs.attach()
        try:
            yield jobs, iot, broker
        finally:
            jobs.stop()


def document(version: str = "0.2.0") -> dict[str, Any]:
    return {
        "operation": "chargenet.firmware.update",
        "version": version,
        "force": False,
        "location": f"${{aws:iot:s3-presigned-url:https://s3.amazonaws.com/{BUCKET}/{KEY}}}",
    }


def create_job(iot: Any, job_id: str, things: list[str], expires_s: int = 600) -> None:
    arns = [iot.describe_thing(thingName=t)["thingArn"] for t in things]
    iot.create_job(
        jobId=job_id,
        targets=arns,
        document=json.dumps(document(job_id)),
        presignedUrlConfig={"roleArn": ROLE, "expiresInSec": expires_s},
    )


def drain(broker: Broker, count: int) -> list[tuple[str, dict[str, Any]]]:
    return [broker.next() for _ in range(count)]


def request(
    jobs: IotJobs, broker: Broker, topic: str, body: dict[str, Any] | bytes
) -> tuple[str, dict[str, Any]]:
    jobs.answer(topic, body if isinstance(body, bytes) else json.dumps(body).encode())
    return broker.next()


def start_next(
    jobs: IotJobs, broker: Broker, thing: str = "CP-1", token: str = "t1"
) -> tuple[str, dict[str, Any]]:
    return request(jobs, broker, f"$aws/things/{thing}/jobs/start-next", {"clientToken": token})


def update(
    jobs: IotJobs, broker: Broker, job_id: str, body: dict[str, Any] | bytes, thing: str = "CP-1"
) -> tuple[str, dict[str, Any]]:
    return request(jobs, broker, f"$aws/things/{thing}/jobs/{job_id}/update", body)


def test_create_job_notifies_each_target_of_its_next_execution_with_a_presigned_url(setup):
    _, iot, broker = setup
    create_job(iot, "job-a", ["CP-1", "CP-2"])

    notified = dict(drain(broker, 2))
    assert set(notified) == {"$aws/things/CP-1/jobs/notify-next", "$aws/things/CP-2/jobs/notify-next"}
    execution = notified["$aws/things/CP-1/jobs/notify-next"]["execution"]
    assert (execution["jobId"], execution["status"], execution["versionNumber"]) == ("job-a", "QUEUED", 1)
    location = urlsplit(execution["jobDocument"]["location"])
    assert location.path == f"/{BUCKET}/{KEY}"
    assert parse_qs(location.query)["X-Amz-Expires"] == ["600"]
    assert "${" not in json.dumps(execution["jobDocument"])


def test_a_v2_placeholder_presigns_the_object_version_it_names(setup):
    """What a firmware job pins (firmware_jobs.presigned_url_placeholder): the version, not the key's latest."""
    _, iot, broker = setup
    version_id = "3/L4kqtJl+cQ="
    pinned = {
        **document(),
        "location": f"${{aws:iot:s3-presigned-url-v2:https://s3.{REGION}.amazonaws.com/{BUCKET}/{KEY}"
        "%3FversionId%3D3%2FL4kqtJl%2BcQ%3D}",
    }
    iot.create_job(
        jobId="job-v",
        targets=[iot.describe_thing(thingName="CP-1")["thingArn"]],
        document=json.dumps(pinned),
        presignedUrlConfig={"roleArn": ROLE, "expiresInSec": 600},
    )

    [(_, notified)] = drain(broker, 1)
    location = urlsplit(notified["execution"]["jobDocument"]["location"])
    assert location.path == f"/{BUCKET}/{KEY}"
    assert parse_qs(location.query)["versionId"] == [version_id]


def test_start_next_takes_the_oldest_queued_sets_it_in_progress_and_repeats_the_same(setup):
    jobs, iot, broker = setup
    create_job(iot, "job-old", ["CP-1"])
    create_job(iot, "job-new", ["CP-1"])
    drain(broker, 1)  # the second job does not change CP-1's next execution: no second notify

    topic, reply = start_next(jobs, broker, token="first")
    assert topic == "$aws/things/CP-1/jobs/start-next/accepted"
    assert reply["clientToken"] == "first"
    execution = reply["execution"]
    assert (execution["jobId"], execution["status"], execution["versionNumber"]) == (
        "job-old",
        "IN_PROGRESS",
        2,
    )
    assert execution["thingName"] == "CP-1" and execution["executionNumber"] == 1
    assert {"queuedAt", "startedAt", "lastUpdatedAt"} <= set(execution)
    bucket_and_key = urlsplit(execution["jobDocument"]["location"]).path
    assert bucket_and_key == f"/{BUCKET}/{KEY}"

    # At least once: the same request again gets the same IN_PROGRESS execution, unchanged.
    _, again = start_next(jobs, broker, token="again")
    assert again["execution"]["jobId"] == "job-old"
    assert again["execution"]["versionNumber"] == 2
    assert broker.nothing_more()


def test_start_next_prefers_an_in_progress_execution_over_an_older_queued_one(setup):
    jobs, iot, broker = setup
    create_job(iot, "job-old", ["CP-1"])
    create_job(iot, "job-new", ["CP-1"])
    drain(broker, 1)
    update(jobs, broker, "job-new", {"status": "IN_PROGRESS", "clientToken": "u"})

    _, reply = start_next(jobs, broker)
    assert reply["execution"]["jobId"] == "job-new"


def test_start_next_with_nothing_pending_is_accepted_without_an_execution(setup):
    jobs, _, broker = setup
    topic, reply = start_next(jobs, broker, token="idle")
    assert topic == "$aws/things/CP-1/jobs/start-next/accepted"
    assert "execution" not in reply
    assert reply["clientToken"] == "idle"


def test_a_terminal_update_is_accepted_once_then_refused_and_notifies_the_next_execution(setup):
    jobs, iot, broker = setup
    create_job(iot, "job-a", ["CP-1"])
    create_job(iot, "job-b", ["CP-1"])
    drain(broker, 1)
    start_next(jobs, broker)
    done = {"status": "SUCCEEDED", "statusDetails": {"firmwareStatus": "Installed"}, "clientToken": "done"}

    topic, reply = update(jobs, broker, "job-a", {**done, "expectedVersion": 2})
    assert topic == "$aws/things/CP-1/jobs/job-a/update/accepted"
    assert reply["executionState"] == {
        "status": "SUCCEEDED",
        "statusDetails": {"firmwareStatus": "Installed"},
        "versionNumber": 3,
    }
    assert reply["clientToken"] == "done"
    topic, notify = broker.next()
    assert topic == "$aws/things/CP-1/jobs/notify-next"
    assert notify["execution"]["jobId"] == "job-b"
    described = iot.describe_job_execution(jobId="job-a", thingName="CP-1")["execution"]
    assert described["status"] == "SUCCEEDED"
    assert described["statusDetails"]["detailsMap"] == {"firmwareStatus": "Installed"}
    assert described["versionNumber"] == 3

    topic, refused = update(jobs, broker, "job-a", done)
    assert topic == "$aws/things/CP-1/jobs/job-a/update/rejected"
    assert refused["code"] == "InvalidStateTransition"
    assert refused["executionState"]["status"] == "SUCCEEDED"  # the device can see it is done
    assert refused["clientToken"] == "done"
    assert broker.nothing_more()


def test_the_last_terminal_update_notifies_that_nothing_is_left(setup):
    jobs, iot, broker = setup
    create_job(iot, "job-a", ["CP-1"])
    drain(broker, 1)
    update(jobs, broker, "job-a", {"status": "FAILED", "statusDetails": {"reason": "x"}, "clientToken": "f"})
    topic, notify = broker.next()
    assert topic == "$aws/things/CP-1/jobs/notify-next"
    assert "execution" not in notify


def test_an_update_with_a_stale_expected_version_is_refused_and_changes_nothing(setup):
    jobs, iot, broker = setup
    create_job(iot, "job-a", ["CP-1"])
    drain(broker, 1)
    topic, refused = update(
        jobs, broker, "job-a", {"status": "IN_PROGRESS", "expectedVersion": 7, "clientToken": "v"}
    )
    assert topic.endswith("/update/rejected")
    assert refused["code"] == "VersionMismatch"
    assert refused["executionState"]["versionNumber"] == 1
    assert iot.describe_job_execution(jobId="job-a", thingName="CP-1")["execution"]["status"] == "QUEUED"


def test_unknown_job_and_another_things_execution_are_not_found(setup):
    jobs, iot, broker = setup
    create_job(iot, "job-a", ["CP-2"])
    drain(broker, 1)
    _, unknown = update(jobs, broker, "job-nope", {"status": "IN_PROGRESS", "clientToken": "n"})
    assert unknown["code"] == "ResourceNotFound"
    # CP-1 may publish only on its own topics: CP-2's execution is not CP-1's to touch.
    topic, foreign = update(jobs, broker, "job-a", {"status": "SUCCEEDED", "clientToken": "n"}, thing="CP-1")
    assert topic == "$aws/things/CP-1/jobs/job-a/update/rejected"
    assert foreign["code"] == "ResourceNotFound"
    assert iot.describe_job_execution(jobId="job-a", thingName="CP-2")["execution"]["status"] == "QUEUED"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "InvalidJson"),
        (b"[1, 2]", "InvalidRequest"),
        ({"status": "DONE", "clientToken": "c"}, "InvalidRequest"),
        ({"status": "SUCCEEDED", "statusDetails": {"n": 1}, "clientToken": "c"}, "InvalidRequest"),
        ({"status": "SUCCEEDED", "expectedVersion": "1", "clientToken": "c"}, "InvalidRequest"),
    ],
)
def test_bad_requests_are_rejected_with_their_code(setup, body, code):
    jobs, iot, broker = setup
    create_job(iot, "job-a", ["CP-1"])
    drain(broker, 1)
    topic, refused = update(jobs, broker, "job-a", body)
    assert topic == "$aws/things/CP-1/jobs/job-a/update/rejected"
    assert refused["code"] == code
    assert isinstance(refused["timestamp"], int)
    assert iot.describe_job_execution(jobId="job-a", thingName="CP-1")["execution"]["status"] == "QUEUED"


def test_cancel_job_cancels_queued_executions_and_notifies_that_nothing_is_left(setup):
    jobs, iot, broker = setup
    create_job(iot, "job-a", ["CP-1"])
    drain(broker, 1)
    iot.cancel_job(jobId="job-a")
    topic, notify = broker.next()
    assert topic == "$aws/things/CP-1/jobs/notify-next" and "execution" not in notify
    _, refused = update(jobs, broker, "job-a", {"status": "IN_PROGRESS", "clientToken": "c"})
    assert refused["code"] == "InvalidStateTransition"


def test_control_plane_refuses_what_the_responder_could_not_serve(setup):
    _, iot, _ = setup
    create_job(iot, "job-a", ["CP-1"])
    arn = iot.describe_thing(thingName="CP-1")["thingArn"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        create_job(iot, "job-a", ["CP-1"])
    bad = {**document(), "location": "${aws:iot:s3-presigned-url:https://example.com/x}"}
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_job(jobId="job-b", targets=[arn], document=json.dumps(bad))
