"""The template's alarms in moto, evaluated and notified as CloudWatch would (moto in-process)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chargenet_local.alarms import AlarmEvaluator, create_alarms_and_dashboards
from chargenet_local.alert_sink import describe, subscription_filters
from chargenet_local.metrics import SQS_NAMESPACE, queue_depth_datum
from chargenet_local.template import STACK_NAME, Template, load

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DEAD_LETTERS = f"{STACK_NAME}-dead-letters"


@pytest.fixture(scope="module")
def template() -> Template:
    return load(ROOT / "template.yaml", region=REGION, overrides={"IotDataEndpoint": "https://x"})


@pytest.fixture
def aws(template: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IOT_DATA_PLANE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        clients = {name: boto3.client(name, region_name=REGION) for name in ("cloudwatch", "sns", "sqs")}
        # The template's topics, with an inbox queue standing in for the operators' e-mail, each
        # subscribed with the filter of the template's e-mail subscription, as the stack does.
        inbox = clients["sqs"].create_queue(QueueName="inbox")["QueueUrl"]
        inbox_arn = clients["sqs"].get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
        filters = subscription_filters(template)
        for name in template.of_type("AWS::SNS::Topic"):
            topic = clients["sns"].create_topic(Name=name)["TopicArn"]
            clients["sns"].subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=inbox_arn["Attributes"]["QueueArn"],
                Attributes=filters.get(name, {}),
            )
        clients["inbox"] = inbox
        yield clients


def received(aws: dict[str, Any]) -> list[dict[str, Any]]:
    messages = aws["sqs"].receive_message(QueueUrl=aws["inbox"], MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        aws["sqs"].delete_message(QueueUrl=aws["inbox"], ReceiptHandle=message["ReceiptHandle"])
    envelopes = [json.loads(m["Body"]) for m in messages]
    return [{"subject": e["Subject"], "message": e["Message"], "attributes": {}} for e in envelopes]


def alarms(aws: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["AlarmName"]: a for a in aws["cloudwatch"].describe_alarms()["MetricAlarms"]}


def dead_letters(aws: dict[str, Any], visible: int, at: float) -> None:
    datum = queue_depth_datum("IngestDeadLetterQueue", visible, datetime.fromtimestamp(at, UTC))
    aws["cloudwatch"].put_metric_data(Namespace=SQS_NAMESPACE, MetricData=[datum])


def test_the_template_alarms_and_dashboard_are_created_as_cloudwatch_starts_them(template, aws) -> None:
    names = create_alarms_and_dashboards(template, aws["cloudwatch"])
    created = alarms(aws)
    functions = template.functions()
    assert (
        sorted(names) == sorted(created) and len(names) == len(functions) + 5
    )  # one errors alarm each, 5 others
    assert {a["StateValue"] for a in created.values()} == {"INSUFFICIENT_DATA"}
    assert created[DEAD_LETTERS]["Dimensions"] == [{"Name": "QueueName", "Value": "IngestDeadLetterQueue"}]
    offline = created[f"{STACK_NAME}-fleet-offline-share"]
    assert (offline["Threshold"], offline["EvaluationPeriods"], offline["DatapointsToAlarm"]) == (10.0, 5, 3)
    alerts, recoveries = (
        f"arn:aws:sns:{REGION}:123456789012:{t}" for t in ("AlertsTopic", "AlarmRecoveryTopic")
    )
    assert all(a["AlarmActions"] == [alerts] and a["OKActions"] == [recoveries] for a in created.values())
    [dashboard] = aws["cloudwatch"].list_dashboards()["DashboardEntries"]
    body = json.loads(
        aws["cloudwatch"].get_dashboard(DashboardName=dashboard["DashboardName"])["DashboardBody"]
    )
    assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "IngestDeadLetterQueue"] in [
        metric[:4] for widget in body["widgets"] for metric in widget["properties"].get("metrics", [])
    ]


def test_state_changes_are_set_in_moto_and_notified_once(template, aws) -> None:
    create_alarms_and_dashboards(template, aws["cloudwatch"])
    evaluator = AlarmEvaluator(aws["cloudwatch"], aws["sns"], REGION)
    now = time.time()
    dead_letters(aws, 2, now)

    evaluator.evaluate_all(now)
    states = {name: a["StateValue"] for name, a in alarms(aws).items()}
    assert states.pop(DEAD_LETTERS) == "ALARM"
    # No data: the fleet alarm treats it as missing, the event-count alarms as not breaching.
    assert states.pop(f"{STACK_NAME}-fleet-offline-share") == "INSUFFICIENT_DATA"
    assert set(states.values()) == {"OK"}
    # Fourteen alarms went from INSUFFICIENT_DATA to OK: their first data, no recovery, no news. No
    # InsufficientDataActions: the fleet alarm notifies nobody.
    notified = {n["alarm"]["name"]: n for n in map(describe, received(aws))}
    assert list(notified) == [DEAD_LETTERS]
    raised = notified[DEAD_LETTERS]
    assert (
        raised["kind"] == "alarm" and raised["subject"] == f'ALARM: "{DEAD_LETTERS}" in US East (N. Virginia)'
    )
    message = json.loads(raised["message"])
    assert (message["OldStateValue"], message["NewStateValue"]) == ("INSUFFICIENT_DATA", "ALARM")
    assert message["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [2.0")
    assert message["Trigger"] == {
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Namespace": "AWS/SQS",
        "StatisticType": "Statistic",
        "Statistic": "MAXIMUM",
        "Unit": None,
        "Dimensions": [{"value": "IngestDeadLetterQueue", "name": "QueueName"}],
        "Period": 60,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0.0,
        "TreatMissingData": "notBreaching",
        "EvaluateLowSampleCountPercentile": "",
    }
    assert json.loads(alarms(aws)[DEAD_LETTERS]["StateReasonData"])["recentDatapoints"] == [2.0]

    evaluator.evaluate_all(now + 1)
    assert received(aws) == []  # no change, no notification

    later = now + 120  # the queue drained; the breaching minute is no longer the newest real datapoint
    dead_letters(aws, 0, later)
    evaluator.evaluate_all(later)
    [cleared] = map(describe, received(aws))
    assert cleared["alarm"] == {
        "name": DEAD_LETTERS,
        "state": "OK",
        "previous_state": "ALARM",
        "reason": json.loads(cleared["message"])["NewStateReason"],
    }


def test_an_alarm_matches_its_exact_dimension_set(template, aws) -> None:
    """A metric emitted with other dimensions than the alarm names never reaches it, as in CloudWatch."""
    create_alarms_and_dashboards(template, aws["cloudwatch"])
    now = time.time()
    aws["cloudwatch"].put_metric_data(
        Namespace="chargenet",
        MetricData=[
            {
                "MetricName": "OpenFaults",
                "Dimensions": [{"Name": "Severity", "Value": "safety_critical"}],  # without `service`
                "Timestamp": datetime.fromtimestamp(now, UTC),
                "Value": 1.0,
            }
        ],
    )
    AlarmEvaluator(aws["cloudwatch"], aws["sns"], REGION).evaluate_all(now)
    assert alarms(aws)[f"{STACK_NAME}-safety-critical-fault"]["StateValue"] == "OK"


def test_fault_alerts_keep_their_own_kind_and_severity_in_the_inbox() -> None:
    for message in ("GroundFailure on CP-1: do not reset remotely", '{"fault_id": "f-1"}'):
        alert = {
            "subject": "CP-1",
            "message": message,
            "attributes": {"kind": "raised", "severity": "safety_critical"},
        }
        described = describe(alert)
        assert (described["kind"], described["severity"]) == ("raised", "safety_critical")
        assert "alarm" not in described
