"""Faults injected into a simulated charger, in process over a FakeLink: what the backend is sent."""

import asyncio
import datetime as dt

import pytest
from booted import booted, until
from fake_link import FakeLink, credentials
from ocpp.v16.enums import ChargePointErrorCode
from plans import typical_plan

from chargenet_shim.link import LinkError
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import DEFAULT_METER_BASE_WH, SimulatedCharger

pytestmark = pytest.mark.timeout(15)

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
PLAN = typical_plan()
ERROR_CODES = [code for code in ChargePointErrorCode if code is not ChargePointErrorCode.no_error]


def sent(link: FakeLink, action: str) -> list[dict]:
    return link.central.calls("CP-UNIT", action)


def samples(link: FakeLink) -> list[tuple[int, float, str]]:
    """(register Wh, power W, context) of every MeterValues sample the backend got, in order."""
    rows = []
    for meter_values in sent(link, "MeterValues"):
        [value] = meter_values["meterValue"]
        by_measurand = {v["measurand"]: v for v in value["sampledValue"]}
        register = by_measurand["Energy.Active.Import.Register"]
        rows.append(
            (int(register["value"]), float(by_measurand["Power.Active.Import"]["value"]), register["context"])
        )
    return rows


def session_at(charger: SimulatedCharger, speed: float = 100_000) -> asyncio.Task:
    return asyncio.create_task(charger.run_session(PLAN, SimClock(speed=speed, start=T0)))


@pytest.mark.parametrize("code", ERROR_CODES)
def test_each_error_code_goes_out_as_a_faulted_status_and_clears_with_no_error(code):
    async def scenario():
        async with booted() as (charger, link):
            await charger.inject_fault(2, code, vendor_error_code="V-1")
            await charger.clear_fault(2)
            return link

    link = asyncio.run(scenario())

    notified = [(s["connectorId"], s["status"], s["errorCode"]) for s in sent(link, "StatusNotification")]
    assert notified == [(2, "Faulted", code), (2, "Available", "NoError")]
    assert sent(link, "StatusNotification")[0]["vendorErrorCode"] == "V-1"


def test_a_dropped_connection_loses_statuses_and_heartbeats_but_delivers_the_session_after_it():
    async def scenario():
        async with booted() as (charger, link):
            session = session_at(charger, speed=2000)
            await until(lambda: sent(link, "MeterValues"))
            await charger.drop_connection()
            with pytest.raises(LinkError):
                await charger.heartbeat()
            # Samples made while the link is down wait in the outbox.
            await until(lambda: charger.outbox.backlog)
            await charger.restore_connection()
            return await session, charger, link

    truth, charger, link = asyncio.run(scenario())

    assert charger.outbox.queued_total > 0
    assert sent(link, "Heartbeat") == []
    assert [register for register, _, _ in samples(link)] == [r.register_wh for r in truth.readings]
    [stop] = sent(link, "StopTransaction")
    assert stop["meterStop"] == truth.meter_stop_wh
    journal = " | ".join(charger.journal.lines())
    assert "network connection lost" in journal and "network connection back" in journal


def test_a_stuck_meter_reports_a_flat_register_while_power_flows():
    async def scenario():
        async with booted() as (charger, link):
            charger.stick_meter(1)
            truth = await charger.run_session(PLAN, SimClock(speed=100_000, start=T0))
            return truth, charger, link

    truth, charger, link = asyncio.run(scenario())

    charging = [(register, power) for register, power, _ in samples(link) if power > 0]
    assert len(charging) >= 3
    assert {register for register, _ in charging} == {DEFAULT_METER_BASE_WH}
    [start], [stop] = sent(link, "StartTransaction"), sent(link, "StopTransaction")
    assert start["meterStart"] == stop["meterStop"] == DEFAULT_METER_BASE_WH
    assert truth.energy_wh == 0
    # The energy really flowed: the connector's physical register moved on.
    assert charger.meter_wh[1] > DEFAULT_METER_BASE_WH + 10_000


def test_an_unstuck_meter_counts_on_from_where_it_stood():
    async def scenario():
        async with booted() as (charger, link):
            charger.stick_meter(1)
            await charger.run_session(PLAN, SimClock(speed=100_000, start=T0))
            charger.unstick_meter(1)
            await charger.run_session(PLAN, SimClock(speed=100_000, start=T0 + dt.timedelta(hours=2)))
            return link

    link = asyncio.run(scenario())

    starts = [start["meterStart"] for start in sent(link, "StartTransaction")]
    assert starts == [DEFAULT_METER_BASE_WH, DEFAULT_METER_BASE_WH]
    assert sent(link, "StopTransaction")[1]["meterStop"] > DEFAULT_METER_BASE_WH + 10_000


def test_a_meter_reset_mid_session_sends_the_register_back_to_about_zero():
    async def scenario():
        async with booted() as (charger, link):
            session = session_at(charger, speed=2000)
            await until(lambda: len(sent(link, "MeterValues")) >= 2)
            charger.reset_meter(1)
            return await session, link

    truth, link = asyncio.run(scenario())

    registers = [register for register, _, _ in samples(link)]
    assert registers[0] == DEFAULT_METER_BASE_WH
    dropped_at = next(i for i in range(1, len(registers)) if registers[i] < registers[i - 1])
    after = registers[dropped_at:]
    assert after == sorted(after) and after[-1] < 12_000
    assert truth.meter_stop_wh == after[-1] == sent(link, "StopTransaction")[0]["meterStop"]


def test_a_reset_meter_starts_the_next_transaction_at_zero():
    async def scenario():
        async with booted() as (charger, link):
            charger.reset_meter(2)
            await charger.run_session(PLAN.model_copy(update={"connector_id": 2}), SimClock(speed=100_000))
            return link

    [start] = sent(asyncio.run(scenario()), "StartTransaction")

    assert start["meterStart"] == 0


def test_power_above_the_rating_is_reported_while_charging_and_the_real_power_after():
    async def scenario():
        async with booted() as (charger, link):
            charger.misreport_power(1, 33_000)
            await charger.run_session(PLAN, SimClock(speed=100_000, start=T0))
            charger.report_true_power(1)
            await charger.run_session(PLAN, SimClock(speed=100_000, start=T0 + dt.timedelta(hours=2)))
            return link

    rows = samples(asyncio.run(scenario()))

    first, second = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    assert {power for _, power, _ in first if power > 0} == {33_000.0}
    # Idle time after the EV is full still reads 0 W.
    assert any(power == 0 for _, power, _ in first)
    assert max(power for _, power, _ in second) == 22_000.0


def test_a_misreported_power_must_be_positive_and_meters_exist_only_on_connectors():
    charger = SimulatedCharger(credentials(), link=FakeLink())

    with pytest.raises(ValueError, match="positive"):
        charger.misreport_power(1, 0)
    with pytest.raises(ValueError, match="no meter on connector 0"):
        charger.stick_meter(0)


def test_a_reboot_stops_the_session_with_reason_reboot_then_boots_and_reports_every_connector():
    async def scenario():
        async with booted() as (charger, link):
            session = session_at(charger, speed=2000)
            await until(lambda: sent(link, "MeterValues"))
            await charger.reboot()
            return await session, link

    truth, link = asyncio.run(scenario())

    assert truth.stop_reason == "Reboot"
    assert sent(link, "StopTransaction")[0]["reason"] == "Reboot"
    assert len(sent(link, "BootNotification")) == 2
    statuses = [(s["connectorId"], s["status"]) for s in sent(link, "StatusNotification")]
    assert statuses[-3:] == [(0, "Available"), (1, "Available"), (2, "Available")]


def test_reboots_in_quick_succession_each_send_a_boot_notification():
    async def scenario():
        async with booted() as (charger, link):
            for _ in range(3):
                await charger.reboot()
            return link

    assert len(sent(asyncio.run(scenario()), "BootNotification")) == 4


def test_a_reboot_is_refused_while_one_is_under_way():
    async def scenario():
        async with booted() as (charger, link):
            link.silent = True  # the BootNotification waits for an answer that does not come
            first = asyncio.create_task(charger.reboot())
            await until(lambda: len(link.calls("BootNotification")) == 2)
            with pytest.raises(RuntimeError, match="already restarting"):
                await charger.reboot()
            first.cancel()

    asyncio.run(scenario())
