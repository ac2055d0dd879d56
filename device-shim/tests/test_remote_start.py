"""RemoteStartTransaction and RemoteStopTransaction on a simulated charger, in process."""

import asyncio
import contextlib
import datetime as dt

import pytest
from booted import command as answer_frame
from booted import until
from fake_link import FakeLink, credentials
from ocpp.v16.enums import ChargePointErrorCode
from plans import typical_plan

from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import SimulatedCharger

pytestmark = pytest.mark.timeout(15)

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


@contextlib.asynccontextmanager
async def booted(speed: float = 5000, authorize_remote: str | None = None):
    link = FakeLink()
    charger = SimulatedCharger(credentials(), link=link, clock=SimClock(speed=speed, start=T0))
    await charger.start()
    try:
        await charger.run_boot()
        if authorize_remote is not None:
            charger.configuration.change("AuthorizeRemoteTxRequests", authorize_remote)
        yield charger, link
    finally:
        await charger.stop()


async def command(link: FakeLink, action: str, payload: dict) -> dict:
    """A CALL from the backend; the payload of the charger's answer."""
    answer = await answer_frame(link, action, payload)
    assert answer[0] == 3, answer
    return answer[2]


def test_a_remote_start_charges_on_the_tag_with_the_default_plan_and_ends_on_its_own():
    async def scenario():
        async with booted(authorize_remote="false") as (charger, link):
            answer = await command(link, "RemoteStartTransaction", {"idTag": "PAY-1", "connectorId": 2})
            [session] = await until(lambda: charger.remote_sessions)
            return answer, await session, link

    answer, truth, link = asyncio.run(scenario())

    assert answer == {"status": "Accepted"}
    assert (truth.connector_id, truth.id_tag, truth.stop_reason) == (2, "PAY-1", "EVDisconnected")
    # 40 -> 80 % of 60 kWh: 24 kWh, whatever the sampling.
    assert truth.energy_wh == pytest.approx(24_000, abs=2)
    [start] = link.central.calls("CP-UNIT", "StartTransaction")
    assert (start["connectorId"], start["idTag"]) == (2, "PAY-1")
    # AuthorizeRemoteTxRequests false: the StartTransaction goes out without an Authorize.
    assert link.central.calls("CP-UNIT", "Authorize") == []
    [stop] = link.central.calls("CP-UNIT", "StopTransaction")
    assert stop["transactionId"] == truth.transaction_id


def test_with_authorize_remote_tx_requests_the_charger_authorizes_first_and_a_refused_tag_never_starts():
    async def scenario():
        async with booted(authorize_remote="true") as (charger, link):
            link.central.blocked_tags.add("PAY-BAD")
            answer = await command(link, "RemoteStartTransaction", {"idTag": "PAY-BAD", "connectorId": 1})
            [session] = await until(lambda: charger.remote_sessions)
            await asyncio.gather(session, return_exceptions=True)
            return answer, link, charger

    answer, link, charger = asyncio.run(scenario())

    assert answer == {"status": "Accepted"}
    assert [a["idTag"] for a in link.central.calls("CP-UNIT", "Authorize")] == ["PAY-BAD"]
    assert link.central.calls("CP-UNIT", "StartTransaction") == []
    assert charger.sessions == {}


def test_the_plan_for_remote_starts_is_configurable_per_charger():
    async def scenario():
        async with booted(authorize_remote="false") as (charger, link):
            charger.remote_plan = typical_plan().model_copy(update={"idle_minutes_after": 0})
            await command(link, "RemoteStartTransaction", {"idTag": "PAY-2"})
            [session] = await until(lambda: charger.remote_sessions)
            return await session

    truth = asyncio.run(scenario())

    # typical_plan: 70 -> 90 % of 60 kWh; without a connector the charger picks the first free one.
    assert truth.connector_id == 1
    assert truth.energy_wh == pytest.approx(12_000, abs=2)


def test_a_remote_start_is_rejected_on_a_busy_faulted_or_unknown_connector():
    async def scenario():
        async with booted(speed=50, authorize_remote="false") as (charger, link):
            await command(link, "RemoteStartTransaction", {"idTag": "PAY-A", "connectorId": 1})
            await until(lambda: 1 in charger.sessions)
            await charger.inject_fault(2, ChargePointErrorCode.ground_failure)
            answers = [
                await command(link, "RemoteStartTransaction", {"idTag": "PAY-B", "connectorId": c})
                for c in (1, 2, 3)
            ]
            # No connector left to pick.
            answers.append(await command(link, "RemoteStartTransaction", {"idTag": "PAY-C"}))
            return answers, link

    answers, link = asyncio.run(scenario())

    assert answers == [{"status": "Rejected"}] * 4
    assert [s["idTag"] for s in link.central.calls("CP-UNIT", "StartTransaction")] == ["PAY-A"]


def test_a_remote_stop_ends_that_transaction_with_reason_remote_and_rejects_others():
    async def scenario():
        async with booted(speed=50, authorize_remote="false") as (charger, link):
            await command(link, "RemoteStartTransaction", {"idTag": "PAY-S", "connectorId": 1})
            [session] = await until(lambda: charger.remote_sessions)
            await until(lambda: link.central.calls("CP-UNIT", "MeterValues"))
            transaction_id = charger.sessions[1].transaction.id
            unknown = await command(link, "RemoteStopTransaction", {"transactionId": transaction_id + 99})
            stopped = await command(link, "RemoteStopTransaction", {"transactionId": transaction_id})
            return unknown, stopped, await session, link

    unknown, stopped, truth, link = asyncio.run(scenario())

    assert (unknown, stopped) == ({"status": "Rejected"}, {"status": "Accepted"})
    assert truth.stop_reason == "Remote"
    assert truth.readings[-1].context == "Transaction.End"
    [stop] = link.central.calls("CP-UNIT", "StopTransaction")
    assert (stop["transactionId"], stop["reason"]) == (truth.transaction_id, "Remote")


def test_a_remote_session_may_run_on_its_own_clock_from_the_moment_it_starts():
    later = T0 + dt.timedelta(days=1)

    async def scenario():
        async with booted(authorize_remote="false") as (charger, link):
            charger.remote_clock = lambda: SimClock(speed=5000, start=later)
            await command(link, "RemoteStartTransaction", {"idTag": "PAY-T", "connectorId": 1})
            [session] = await until(lambda: charger.remote_sessions)
            return await session

    truth = asyncio.run(scenario())

    assert later <= truth.started_at < later + dt.timedelta(minutes=5)
    assert truth.stopped_at > truth.started_at
