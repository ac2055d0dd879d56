"""A simulated charger never hands its link a frame over the backend's limit (issue 16), in process."""

import asyncio
import json
import logging

import pytest
from booted import booted, command
from ocpp.v16 import call

from chargenet_shim.frame_limit import MAX_FRAME_BYTES, FrameTooLarge
from chargenet_shim.sim.outbox import TransactionRef

pytestmark = pytest.mark.timeout(10)

STAMP = "2025-03-01T08:00:00.000Z"


def _meter_values(samples: int) -> call.MeterValues:
    sampled = [{"value": str(1000 + n)} for n in range(samples)]
    return call.MeterValues(
        connector_id=1, transaction_id=7, meter_value=[{"timestamp": STAMP, "sampledValue": sampled}]
    )


def test_an_oversized_call_is_raised_to_the_caller_and_never_reaches_the_link():
    async def scenario() -> tuple[FrameTooLarge, list[str]]:
        async with booted() as (charger, link):
            sent_before = len(link.sent)
            with pytest.raises(FrameTooLarge) as refused:
                await charger.call(
                    call.DataTransfer(vendor_id="ACME", data="x" * MAX_FRAME_BYTES), suppress=False
                )
            await charger.heartbeat()
            return refused.value, [json.loads(f)[2] for f in link.sent[sent_before:]]

    refused, sent = asyncio.run(scenario())

    assert refused.size > MAX_FRAME_BYTES
    assert str(refused) == f"frame of {refused.size} bytes exceeds {MAX_FRAME_BYTES}"
    assert sent == ["Heartbeat"]


def test_an_oversized_answer_to_a_backend_call_becomes_a_generic_error_and_the_charger_goes_on():
    # GetConfiguration echoes the unknown keys asked for: enough of them make the answer too large.
    keys = [f"NoSuchKey{n:040d}" for n in range(2000)]

    async def scenario() -> tuple[list, list]:
        async with booted() as (_, link):
            refused = await command(link, "GetConfiguration", {"key": keys})
            answered = await command(link, "GetConfiguration", {"key": ["HeartbeatInterval"]})
            return refused, answered

    refused, answered = asyncio.run(scenario())

    assert refused[2] == "GenericError"
    assert refused[3].startswith("frame of ") and refused[3].endswith(f"bytes exceeds {MAX_FRAME_BYTES}")
    assert answered[0] == 3


def test_a_queued_oversized_transaction_message_is_discarded_not_retried(caplog):
    async def scenario() -> tuple[int, list[int]]:
        async with booted() as (charger, link):
            transaction = TransactionRef(id=7)
            link.go_offline()
            await charger.outbox.transaction_call(_meter_values(5000), transaction)
            await charger.outbox.transaction_call(_meter_values(1), transaction)
            link.go_online()
            await asyncio.wait_for(charger.outbox.flushed(), 5)
            delivered = link.central.calls("CP-UNIT", "MeterValues")
            return charger.outbox.backlog, [len(p["meterValue"][0]["sampledValue"]) for p in delivered]

    with caplog.at_level(logging.ERROR, logger="chargenet_shim"):
        backlog, delivered = asyncio.run(scenario())

    assert (backlog, delivered) == (0, [1])
    assert "FrameTooLarge" in caplog.text
