"""A frame the function cannot process: Lambda's two retries, then the dead-letter queue (never the void)."""

from __future__ import annotations

import asyncio
import base64
import json

import boto3

from tests.integration.conftest import RawCharger, eventually


def test_frames_the_function_cannot_process_land_in_the_dead_letter_queue(stack, new_charger):
    credentials = new_charger()
    # Corrupt the charger's registry record: every read of it now fails inside the function.
    boto3.client("dynamodb").put_item(
        TableName=stack.tables["ChargersTable"],
        Item={
            "charger_id": {"S": credentials.charger_id},
            "sk": {"S": "charger"},
            "registered_at": {"S": "not-a-timestamp"},
        },
    )
    frame = [2, "hb-1", "Heartbeat", {}]

    async def send():
        async with RawCharger(credentials) as charger:
            await charger.send(frame)
            await charger.no_reply(wait=2)

    asyncio.run(send())
    sqs = boto3.client("sqs")
    queue = stack.queues["IngestDeadLetterQueue"]

    def dead_letters():
        messages = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        return [m for m in messages if json.loads(m["Body"]).get("charger_id") == credentials.charger_id]

    [message] = eventually(dead_letters, timeout=20)
    event = json.loads(message["Body"])
    assert json.loads(base64.b64decode(event["payload"])) == frame
    assert message["MessageAttributes"]["FunctionName"]["StringValue"] == "OcppIngestFunction"
    assert "not-a-timestamp" in message["MessageAttributes"]["ErrorMessage"]["StringValue"]
