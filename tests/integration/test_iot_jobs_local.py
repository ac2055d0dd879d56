"""IoT Jobs' device MQTT API on the real local stack (chargenet_local.iot_jobs): a job created with
boto3 reaches a provisioned charger over its own mTLS connection, which starts it, downloads the
package through the pre-signed URL and reports it done, as IoT Core would have it."""

from __future__ import annotations

import json
import queue
import uuid
from typing import Any

import boto3
import requests
from awscrt import mqtt
from awsiot import mqtt_connection_builder

from chargenet_shim.credentials import ChargerCredentials

ROLE = "arn:aws:iam::123456789012:role/FirmwareJobsRole"
WAIT_S = 10


class JobsClient:
    """The charger's side of the Jobs API, on its own certificate."""

    def __init__(self, credentials: ChargerCredentials) -> None:
        self.prefix = f"$aws/things/{credentials.charger_id}/jobs"
        self.received: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.connection = mqtt_connection_builder.mtls_from_path(
            endpoint=credentials.mqtt_host,
            port=credentials.mqtt_port,
            cert_filepath=str(credentials.cert_path),
            pri_key_filepath=str(credentials.key_path),
            ca_filepath=str(credentials.ca_path),
            client_id=credentials.charger_id,
            clean_session=True,
        )
        self.connection.connect().result(WAIT_S)
        for topic in ("notify-next", "start-next/+", "+/update/+"):
            self.connection.subscribe(
                f"{self.prefix}/{topic}",
                mqtt.QoS.AT_LEAST_ONCE,
                lambda topic, payload, **_: self.received.put((topic, json.loads(payload))),
            )[0].result(WAIT_S)

    def publish(self, suffix: str, body: dict[str, Any]) -> None:
        self.connection.publish(f"{self.prefix}/{suffix}", json.dumps(body).encode(), mqtt.QoS.AT_LEAST_ONCE)[
            0
        ].result(WAIT_S)

    def next(self) -> tuple[str, dict[str, Any]]:
        return self.received.get(timeout=WAIT_S)

    def close(self) -> None:
        self.connection.disconnect().result(WAIT_S)


def test_a_charger_runs_a_job_end_to_end_over_its_own_connection(stack, new_charger):
    credentials = new_charger()
    charger_id = credentials.charger_id
    bucket = stack.buckets["FirmwareBucket"]
    key = f"firmware/jobs-{uuid.uuid4().hex[:8]}/package"
    package = uuid.uuid4().bytes * 64
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=package)
    iot = boto3.client("iot")
    job_id = f"firmware-test-{uuid.uuid4().hex[:12]}"
    document = {
        "operation": "chargenet.firmware.update",
        "version": "0.2.0",
        "force": False,
        "location": f"${{aws:iot:s3-presigned-url:https://s3.amazonaws.com/{bucket}/{key}}}",
    }

    charger = JobsClient(credentials)
    try:
        iot.create_job(
            jobId=job_id,
            targets=[iot.describe_thing(thingName=charger_id)["thingArn"]],
            document=json.dumps(document),
            presignedUrlConfig={"roleArn": ROLE, "expiresInSec": 300},
        )
        topic, notify = charger.next()
        assert topic == f"$aws/things/{charger_id}/jobs/notify-next"
        assert notify["execution"]["jobId"] == job_id

        charger.publish("start-next", {"clientToken": "start-1"})
        topic, started = charger.next()
        assert topic == f"$aws/things/{charger_id}/jobs/start-next/accepted"
        assert started["clientToken"] == "start-1"
        execution = started["execution"]
        assert (execution["jobId"], execution["status"]) == (job_id, "IN_PROGRESS")
        assert execution["jobDocument"]["version"] == "0.2.0"
        downloaded = requests.get(execution["jobDocument"]["location"], timeout=WAIT_S)
        assert downloaded.status_code == 200
        assert downloaded.content == package

        details = {"firmwareStatus": "Installed", "runningVersion": "0.2.0"}
        charger.publish(
            f"{job_id}/update",
            {
                "status": "SUCCEEDED",
                "statusDetails": details,
                "expectedVersion": execution["versionNumber"],
                "clientToken": "done-1",
            },
        )
        topic, accepted = charger.next()
        assert topic == f"$aws/things/{charger_id}/jobs/{job_id}/update/accepted"
        assert accepted["executionState"]["status"] == "SUCCEEDED"
        topic, notify = charger.next()
        assert topic == f"$aws/things/{charger_id}/jobs/notify-next"
        assert "execution" not in notify
    finally:
        charger.close()

    described = iot.describe_job_execution(jobId=job_id, thingName=charger_id)["execution"]
    assert described["status"] == "SUCCEEDED"
    assert described["statusDetails"]["detailsMap"] == details
    listed = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
    assert [(e["thingArn"].rsplit("/", 1)[-1], e["jobExecutionSummary"]["status"]) for e in listed] == [
        (charger_id, "SUCCEEDED")
    ]
