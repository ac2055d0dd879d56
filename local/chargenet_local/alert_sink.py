"""The operators' inbox on the local stack: every SNS alert topic delivers to a queue drained to a file.

In the cloud, AlertsTopic and AlarmRecoveryTopic go to e-mail (AlertEmail); here what operators
would have received lands in `alerts.jsonl` in the stack's home (the demo and tests read it):
the fault alerts the functions publish and the CloudWatch alarm notifications (see alarms.py).
(`chargenet alert list` reads the fault alerts the backend keeps, through the operator API.)
Each queue subscribes with the filter policy of the template's e-mail subscription to its
topic, and moto applies it as SNS does: the inbox gets what the e-mail would.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI reads the inbox without loading the template machinery
    from chargenet_local.template import Template

log = logging.getLogger("chargenet.local.alerts")
SINK_FILE = "alerts.jsonl"


class AlertSink:
    def __init__(self, home: Path, sqs: Any, sns: Any) -> None:
        self.path = home / SINK_FILE
        self._sqs, self._sns = sqs, sns
        self._queues: list[str] = []
        self._stop = threading.Event()

    def subscribe(self, topic_arn: str, filters: dict[str, str] | None = None) -> None:
        """`filters`: subscription attributes (`subscription_filters`), none to receive everything."""
        name = topic_arn.rsplit(":", 1)[-1] + "-operator-inbox"
        queue_url = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]
        self._sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["QueueArn"], Attributes=filters or {}
        )
        self._queues.append(queue_url)

    def start(self) -> None:
        threading.Thread(target=self._drain, name="alert-sink", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _drain(self) -> None:
        while not self._stop.is_set():
            for queue_url in self._queues:
                try:
                    self._move(queue_url)
                except Exception:  # keep draining: a moto hiccup must not lose later alerts
                    log.exception("alert sink: reading %s failed", queue_url)
            self._stop.wait(0.5)

    def _move(self, queue_url: str) -> None:
        messages = self._sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        with self.path.open("a") as inbox:
            for message in messages:
                envelope = json.loads(message["Body"])  # the SNS notification as SQS receives it
                attributes = {k: v.get("Value") for k, v in envelope.get("MessageAttributes", {}).items()}
                inbox.write(
                    json.dumps(
                        {
                            "received_at": envelope.get("Timestamp"),
                            "topic": envelope.get("TopicArn"),
                            "subject": envelope.get("Subject"),
                            "message": envelope.get("Message"),
                            "attributes": attributes,
                        }
                    )
                    + "\n"
                )
        for message in messages:
            self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def subscription_filters(template: Template) -> dict[str, dict[str, str]]:
    """Per topic (logical id), the filter of the template's subscription to it, as subscription
    attributes. The subscriptions' conditions (an e-mail address given) are not applied: locally
    the inbox stands in for that address."""
    filters = {}
    for subscription in template.of_type("AWS::SNS::Subscription").values():
        props = subscription["Properties"]
        if "FilterPolicy" in props:
            filters[props["TopicArn"]["Ref"]] = {
                "FilterPolicy": json.dumps(template.resolve(props["FilterPolicy"])),
                "FilterPolicyScope": props.get("FilterPolicyScope", "MessageAttributes"),
            }
    return filters


def read_inbox(home: Path) -> list[dict[str, Any]]:
    path = home / SINK_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def alarm_notification(alert: dict[str, Any]) -> dict[str, Any] | None:
    """The CloudWatch alarm state change an alert carries, if it is one (its message is the alarm's JSON)."""
    try:
        message = json.loads(alert.get("message") or "")
    except json.JSONDecodeError:
        return None
    if isinstance(message, dict) and {"AlarmName", "NewStateValue", "OldStateValue"} <= message.keys():
        return message
    return None


def describe(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert with its `kind` and `severity` (a fault alert's attributes; "alarm" for an alarm
    notification, which also gets `alarm`: its name, new and previous state and the reason)."""
    alarm = alarm_notification(alert)
    if alarm is None:
        attributes = alert.get("attributes", {})
        return {**alert, "kind": attributes.get("kind"), "severity": attributes.get("severity")}
    return {
        **alert,
        "kind": "alarm",
        "severity": None,
        "alarm": {
            "name": alarm["AlarmName"],
            "state": alarm["NewStateValue"],
            "previous_state": alarm["OldStateValue"],
            "reason": alarm.get("NewStateReason"),
        },
    }
