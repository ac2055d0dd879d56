"""Metrics and alarms on the running stack: EMF from a real invocation lands in moto; an open
safety-critical fault and a poison frame raise the template's alarms to the operators' inbox, and
a recovery from ALARM reaches it too, while an alarm's first data does not."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from chargenet_cli.fault_cmd import alerts_table
from chargenet_local.alert_sink import describe, read_inbox
from chargenet_local.stack import StackState
from chargenet_local.template import STACK_NAME
from chargenet_shim.credentials import ChargerCredentials
from tests.integration.conftest import RawCharger, eventually

DEAD_LETTERS = f"{STACK_NAME}-dead-letters"
INGEST_ERRORS = f"{STACK_NAME}-errors-ocpp-ingest"
SAFETY_CRITICAL = f"{STACK_NAME}-safety-critical-fault"


def metric_sum(name: str, namespace: str, dimensions: list[dict[str, str]]) -> float:
    now = datetime.now(UTC)
    datapoints = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=now - timedelta(hours=3),  # the whole test session
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(d["Sum"] for d in datapoints)


def test_a_session_start_is_counted_from_the_functions_emf_output(stack, new_charger):
    credentials = new_charger()
    service = [{"Name": "service", "Value": "ocpp-ingest"}]
    function = [{"Name": "FunctionName", "Value": "OcppIngestFunction"}]
    started_before = metric_sum("SessionsStarted", "chargenet", service)
    invocations_before = metric_sum("Invocations", "AWS/Lambda", function)
    start = {
        "connectorId": 1,
        "idTag": "METRICS-1",
        "meterStart": 0,
        "timestamp": f"{datetime.now(UTC):%FT%TZ}",
    }

    async def start_a_session() -> list:
        async with RawCharger(credentials) as charger:
            await charger.send([2, "start-1", "StartTransaction", start])
            return await charger.reply()

    assert asyncio.run(start_a_session())[0] == 3
    eventually(lambda: metric_sum("SessionsStarted", "chargenet", service) > started_before)
    assert metric_sum("Invocations", "AWS/Lambda", function) > invocations_before


def alarms_raised(home: str, *names: str) -> dict[str, dict]:
    """The operators' inbox, once it holds ALARM notifications for all these alarms."""
    alarms = [describe(a) for a in read_inbox(Path(home))]
    raised = {a["alarm"]["name"]: a for a in alarms if a.get("alarm", {}).get("state") == "ALARM"}
    return raised if set(names) <= raised.keys() else {}


def test_an_open_safety_critical_fault_raises_its_alarm_from_the_sweeps_metric(stack, new_charger):
    credentials = new_charger()

    async def report(status: str, code: str) -> None:
        async with RawCharger(credentials) as charger:
            payload = {
                "connectorId": 1,
                "errorCode": code,
                "status": status,
                "timestamp": f"{datetime.now(UTC):%FT%TZ}",
            }
            await charger.send([2, f"status-{code}", "StatusNotification", payload])
            assert (await charger.reply())[0] == 3

    asyncio.run(report("Faulted", "GroundFailure"))
    try:
        raised = eventually(lambda: alarms_raised(stack.home, SAFETY_CRITICAL), timeout=20)
    finally:
        asyncio.run(report("Available", "NoError"))  # resolve it: later tests start without it
    trigger = json.loads(raised[SAFETY_CRITICAL]["message"])["Trigger"]
    assert (trigger["Namespace"], trigger["MetricName"]) == ("chargenet", "OpenFaults")
    assert {(d["name"], d["value"]) for d in trigger["Dimensions"]} == {
        ("service", "fault-sweep"),
        ("Severity", "safety_critical"),
    }


@contextmanager
def poisoned(stack: StackState, credentials: ChargerCredentials) -> Iterator[None]:
    """The charger's registry record corrupted: every invocation for it fails, retries included,
    and it sends a heartbeat."""
    dynamodb, table = boto3.client("dynamodb"), stack.tables["ChargersTable"]
    key = {"charger_id": {"S": credentials.charger_id}, "sk": {"S": "charger"}}
    dynamodb.put_item(TableName=table, Item={**key, "registered_at": {"S": "not-a-timestamp"}})

    async def send() -> None:
        async with RawCharger(credentials) as charger:
            await charger.send([2, "hb-1", "Heartbeat", {}])

    try:
        asyncio.run(send())
        yield
    finally:
        # The scheduled fault sweep reads every charger: leave no poison for the tests after this one.
        dynamodb.delete_item(TableName=table, Key=key)


def test_a_poison_frame_raises_the_dead_letter_and_errors_alarms_to_the_operators(stack, new_charger):
    with poisoned(stack, new_charger()):
        raised = eventually(lambda: alarms_raised(stack.home, DEAD_LETTERS, INGEST_ERRORS), timeout=30)

    trigger = json.loads(raised[DEAD_LETTERS]["message"])["Trigger"]
    assert trigger["Dimensions"] == [{"value": "IngestDeadLetterQueue", "name": "QueueName"}]
    cloudwatch = boto3.client("cloudwatch")
    states = {
        a["AlarmName"]: a["StateValue"]
        for a in cloudwatch.describe_alarms(AlarmNames=[DEAD_LETTERS, INGEST_ERRORS])["MetricAlarms"]
    }
    assert states == {DEAD_LETTERS: "ALARM", INGEST_ERRORS: "ALARM"}

    # Alarm notifications reach the on-call by e-mail (locally the inbox), not the operator API.
    listed = [describe(alert) for alert in read_inbox(Path(stack.home))]
    assert {"kind": "alarm", "name": DEAD_LETTERS, "state": "ALARM"} in [
        {"kind": a["kind"], "name": a["alarm"]["name"], "state": a["alarm"]["state"]}
        for a in listed
        if "alarm" in a
    ]
    table = alerts_table(listed)
    assert f'alarm ALARM  ALARM: "{DEAD_LETTERS}" in US East (N. Virginia)' in table


def alarm_state(name: str) -> str:
    [alarm] = boto3.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return str(alarm["StateValue"])


def test_operators_hear_of_an_alarm_and_its_recovery_but_not_of_its_first_data(stack, new_charger):
    """CloudWatch runs OKActions on INSUFFICIENT_DATA -> OK too: every alarm's first evaluation
    with data after the stack starts. Only a recovery from ALARM reaches the operators."""
    names = [a["AlarmName"] for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]]
    eventually(lambda: all(alarm_state(name) != "INSUFFICIENT_DATA" for name in names), timeout=60)

    seen = len(read_inbox(Path(stack.home)))  # an earlier test's recovery is not this one's
    with poisoned(stack, new_charger()):
        eventually(lambda: alarm_state(INGEST_ERRORS) == "ALARM", timeout=30)

    def recovered() -> dict | None:
        alarms = [describe(a) for a in read_inbox(Path(stack.home))[seen:]]
        return next(
            (
                a
                for a in alarms
                if a.get("alarm", {}).get("name") == INGEST_ERRORS and a["alarm"]["state"] == "OK"
            ),
            None,
        )

    async def work_without_errors() -> dict:
        # A minute whose invocations all succeed: its errors sum is 0, and the alarm is OK again.
        async with RawCharger(new_charger()) as charger:
            deadline = time.monotonic() + 150
            while (found := await asyncio.to_thread(recovered)) is None and time.monotonic() < deadline:
                await charger.send([2, f"hb-{time.monotonic_ns()}", "Heartbeat", {}])
                assert (await charger.reply())[0] == 3
                await asyncio.sleep(2)
            assert found is not None, f"{INGEST_ERRORS} did not recover to the operators' inbox"
            return found

    recovery = asyncio.run(work_without_errors())
    alarm_notifications = [a["alarm"] for a in map(describe, read_inbox(Path(stack.home))) if "alarm" in a]
    first_data = [
        a["name"] for a in alarm_notifications if a["state"] == "OK" and a["previous_state"] != "ALARM"
    ]
    assert first_data == []
    assert recovery["alarm"]["previous_state"] == "ALARM"
    assert recovery["topic"].endswith(":AlarmRecoveryTopic")
