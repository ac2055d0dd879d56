"""The offline queue, in process: a real ocpp ChargePoint over a FakeLink to a fake central system."""

import asyncio
import contextlib
import datetime as dt

import pytest
from fake_link import FakeLink, credentials
from ocpp.exceptions import InternalError
from ocpp.v16 import call

from chargenet_shim.link import LinkError
from chargenet_shim.sim.outbox import TransactionRef
from chargenet_shim.sim.simulator import SimulatedCharger

pytestmark = pytest.mark.timeout(10)

STAMP = "2025-03-01T08:00:00.000Z"


@contextlib.asynccontextmanager
async def booted(link: FakeLink, response_timeout: float = 5.0):
    charger = SimulatedCharger(credentials(), link=link, response_timeout=response_timeout)
    await charger.start()
    try:
        await charger.run_boot()
        yield charger
    finally:
        await charger.stop()


def _start() -> call.StartTransaction:
    return call.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=1000, timestamp=STAMP)


def _meter(wh: int, transaction: TransactionRef) -> call.MeterValues:
    sample = {"timestamp": STAMP, "sampledValue": [{"value": str(wh)}]}
    return call.MeterValues(connector_id=1, meter_value=[sample], transaction_id=transaction.id)


def _stop(wh: int, transaction: TransactionRef) -> call.StopTransaction:
    return call.StopTransaction(meter_stop=wh, timestamp=STAMP, transaction_id=transaction.id)


def _registers(link: FakeLink) -> list[int]:
    return [
        int(p["meterValue"][0]["sampledValue"][0]["value"])
        for p in link.central.calls("CP-UNIT", "MeterValues")
    ]


def test_messages_made_offline_are_delivered_in_order_with_the_id_from_the_starts_reply():
    link = FakeLink()

    async def scenario() -> TransactionRef:
        async with booted(link) as charger:
            link.go_offline()
            transaction = TransactionRef()
            replies = [
                await charger.outbox.transaction_call(_start(), transaction),
                await charger.outbox.transaction_call(_meter(1100, transaction), transaction),
                await charger.outbox.transaction_call(_meter(1200, transaction), transaction),
                await charger.outbox.transaction_call(_stop(1250, transaction), transaction),
            ]
            assert replies == [None] * 4
            assert charger.outbox.backlog == 4
            assert link.calls("StartTransaction") == []
            link.go_online()
            await charger.outbox.flushed()
            assert charger.outbox.backlog == 0
            return transaction

    transaction = asyncio.run(scenario())

    central = link.central
    assert central.actions("CP-UNIT") == [
        "BootNotification",
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
    ]
    assert transaction.id is not None
    assert [p["transactionId"] for p in central.calls("CP-UNIT", "MeterValues")] == [transaction.id] * 2
    assert central.calls("CP-UNIT", "StopTransaction")[0]["transactionId"] == transaction.id
    assert _registers(link) == [1100, 1200]
    assert central.transactions[transaction.id].meter_stop == 1250


def test_a_failed_publish_queues_the_message_and_what_follows_it_keeps_its_place():
    link = FakeLink()

    async def scenario() -> None:
        async with booted(link) as charger:
            transaction = TransactionRef()
            assert await charger.outbox.transaction_call(_start(), transaction) is not None
            link.failing_sends = 1
            assert await charger.outbox.transaction_call(_meter(1100, transaction), transaction) is None
            # Online again at once, yet it waits behind the queued one.
            assert await charger.outbox.transaction_call(_meter(1200, transaction), transaction) is None
            await charger.outbox.flushed()

    asyncio.run(scenario())

    assert _registers(link) == [1100, 1200]


def test_a_lost_reply_is_retried_with_the_same_message_id_and_processed_once():
    link = FakeLink()

    async def scenario() -> TransactionRef:
        async with booted(link, response_timeout=0.2) as charger:
            transaction = TransactionRef()
            link.lost_replies = 1
            assert await charger.outbox.transaction_call(_start(), transaction) is None
            await charger.outbox.flushed()
            return transaction

    transaction = asyncio.run(scenario())

    first, retry = link.calls("StartTransaction")
    assert first == retry
    assert len(link.central.calls("CP-UNIT", "StartTransaction")) == 1
    assert transaction.id == 1


def test_the_link_dropping_while_a_reply_is_awaited_queues_the_message_without_waiting_for_the_timeout():
    link = FakeLink()

    async def scenario() -> float:
        async with booted(link, response_timeout=5) as charger:
            transaction = TransactionRef()
            await charger.outbox.transaction_call(_start(), transaction)
            link.silent = True
            sending = asyncio.create_task(
                charger.outbox.transaction_call(_meter(1100, transaction), transaction)
            )
            await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            dropped_at = loop.time()
            link.go_offline()
            assert await sending is None
            waited = loop.time() - dropped_at
            link.silent = False
            link.go_online()
            await charger.outbox.flushed()
            return waited

    assert asyncio.run(scenario()) < 0.5
    first, retry = link.calls("MeterValues")
    assert first == retry
    assert _registers(link) == [1100]


def test_status_heartbeat_and_authorize_are_dropped_while_offline():
    link = FakeLink()

    async def scenario() -> None:
        async with booted(link) as charger:
            link.go_offline()
            with pytest.raises(LinkError, match="offline"):
                await charger.send_status(1, "Available", timestamp=dt.datetime.now(dt.UTC))
            with pytest.raises(LinkError, match="offline"):
                await charger.heartbeat()
            with pytest.raises(LinkError, match="offline"):
                await charger.authorize("TAG-1")
            assert charger.outbox.backlog == 0

    asyncio.run(scenario())

    assert [m[2] for m in link.calls()] == ["BootNotification"]


def test_a_queued_start_the_backend_refuses_takes_its_transactions_messages_with_it():
    link = FakeLink()
    link.central.failing_actions = {"StartTransaction"}

    async def scenario() -> TransactionRef:
        async with booted(link) as charger:
            link.go_offline()
            transaction = TransactionRef()
            await charger.outbox.transaction_call(_start(), transaction)
            await charger.outbox.transaction_call(_meter(1100, transaction), transaction)
            link.go_online()
            await charger.outbox.flushed()
            assert await charger.outbox.transaction_call(_stop(1200, transaction), transaction) is None
            return transaction

    transaction = asyncio.run(scenario())

    assert transaction.refused and transaction.id is None
    assert [m[2] for m in link.calls()] == ["BootNotification", "StartTransaction"]


def test_a_call_error_to_a_message_sent_at_once_is_the_callers_to_handle():
    link = FakeLink()
    link.central.failing_actions = {"MeterValues"}

    async def scenario() -> None:
        async with booted(link) as charger:
            transaction = TransactionRef()
            await charger.outbox.transaction_call(_start(), transaction)
            with pytest.raises(InternalError):
                await charger.outbox.transaction_call(_meter(1100, transaction), transaction)
            assert charger.outbox.backlog == 0

    asyncio.run(scenario())


def test_the_charge_point_ignores_a_second_reply_to_an_answered_call(caplog):
    # What a duplicated CALL (or a retransmission that crossed its reply) produces: ocpp's
    # ChargePoint queues every CALLRESULT and the next call skips those with another id.
    link = FakeLink()
    link.reply_copies = 2

    async def scenario() -> str:
        async with booted(link) as charger:
            await charger.heartbeat()
            await charger.send_status(0, "Available")
            status = await charger.authorize("TAG-1")
            await charger.heartbeat()
            return status

    assert asyncio.run(scenario()) == "Accepted"
    skipped = [
        r for r in caplog.records if r.getMessage().startswith("Ignoring response with unknown unique id")
    ]
    assert len(skipped) == 4
    assert [m[2] for m in link.calls()] == [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "Authorize",
        "Heartbeat",
    ]
