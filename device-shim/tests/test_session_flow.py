"""A whole session in process: the real ocpp ChargePoint over a FakeLink, at very high speed."""

import asyncio
import contextlib
import datetime as dt
import math

import pytest
from fake_link import FakeLink, credentials
from ocpp.v16.enums import Reason
from plans import typical_plan

from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.sim.chaos import ChaosConfig
from chargenet_shim.sim.charging import SessionError
from chargenet_shim.sim.session import ChargeCurve, SessionPlan
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import DEFAULT_METER_BASE_WH, SimulatedCharger

pytestmark = pytest.mark.timeout(15)

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
MEASURANDS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "SoC": "Percent",
    "Temperature": "Celsius",
}
PLAN = typical_plan()


@contextlib.asynccontextmanager
async def booted(link: FakeLink, **options):
    charger = SimulatedCharger(credentials(), link=link, **options)
    await charger.start()
    try:
        await charger.run_boot()
        yield charger
    finally:
        await charger.stop()


def _run(plans: list[SessionPlan], link: FakeLink | None = None, **options):
    link = link or FakeLink()

    async def scenario():
        async with booted(link, **options) as charger:
            clock = SimClock(speed=100_000, start=T0)
            return [await charger.run_session(plan, clock) for plan in plans]

    return asyncio.run(scenario()), link


def _values(meter_values: dict) -> dict[str, tuple[str, str, str]]:
    [sample] = meter_values["meterValue"]
    return {v["measurand"]: (v["value"], v["unit"], v["context"]) for v in sample["sampledValue"]}


def test_a_session_tells_the_backend_the_whole_lifecycle():
    [truth], link = _run([PLAN])

    statuses = [p["status"] for p in link.central.calls("CP-UNIT", "StatusNotification")]
    assert statuses == ["Preparing", "Charging", "SuspendedEV", "Finishing", "Available"]
    actions = [a for a in link.central.actions("CP-UNIT") if a not in ("StatusNotification", "MeterValues")]
    assert actions == ["BootNotification", "Authorize", "StartTransaction", "StopTransaction"]
    [start] = link.central.calls("CP-UNIT", "StartTransaction")
    [stop] = link.central.calls("CP-UNIT", "StopTransaction")
    assert start == {
        "connectorId": 1,
        "idTag": "TAG-1",
        "meterStart": DEFAULT_METER_BASE_WH,
        "timestamp": ocpp_timestamp(truth.started_at),
    }
    assert stop == {
        "transactionId": truth.transaction_id,
        "meterStop": truth.meter_stop_wh,
        "timestamp": ocpp_timestamp(truth.stopped_at),
        "reason": "EVDisconnected",
        "idTag": "TAG-1",
    }
    assert stop["meterStop"] - start["meterStart"] == truth.energy_wh


def test_meter_values_carry_the_transaction_and_every_measurand_as_strings():
    [truth], link = _run([PLAN])

    sent = link.central.calls("CP-UNIT", "MeterValues")
    assert len(sent) == len(truth.readings) >= 3
    assert {p["transactionId"] for p in sent} == {truth.transaction_id}
    contexts = [_values(p)["SoC"][2] for p in sent]
    assert contexts == ["Transaction.Begin"] + ["Sample.Periodic"] * (len(sent) - 2) + ["Transaction.End"]
    for payload, reading in zip(sent, truth.readings, strict=True):
        values = _values(payload)
        assert {m: unit for m, (_, unit, _) in values.items()} == MEASURANDS
        assert values["Energy.Active.Import.Register"][0] == str(reading.register_wh)
        assert values["Power.Active.Import"][0] == f"{reading.power_w:.1f}"
        assert payload["meterValue"][0]["timestamp"] == ocpp_timestamp(reading.timestamp)
    registers = [r.register_wh for r in truth.readings]
    assert registers == sorted(registers)
    assert (registers[0], registers[-1]) == (truth.meter_start_wh, truth.meter_stop_wh)
    assert [r.timestamp - truth.started_at for r in truth.readings[:3]] == [
        dt.timedelta(seconds=s) for s in (0, 300, 600)
    ]


def test_the_truth_matches_the_physics():
    [truth], _ = _run([PLAN])
    curve = ChargeCurve.for_plan(PLAN)

    assert truth.energy_wh == pytest.approx(60_000 * 0.20, abs=1)
    # The charger reports the EV full on the next whole second (no sub-second timestamp jitter).
    assert truth.charging_s == math.ceil(curve.full_after_s)
    assert truth.idle_s == 600
    assert truth.stopped_at - truth.started_at == dt.timedelta(seconds=math.ceil(curve.full_after_s) + 600)
    assert truth.peak_power_kw == 22
    assert max(r.power_w for r in truth.readings) == 22_000
    # Idle (parking) samples: plugged in, nothing drawn, register unchanged.
    idle = [
        r for r in truth.readings if r.timestamp - truth.started_at > dt.timedelta(seconds=truth.charging_s)
    ]
    assert idle and all(r.power_w == 0 and r.register_wh == truth.meter_stop_wh for r in idle)


def test_the_register_carries_over_from_one_session_to_the_next():
    local_stop = PLAN.model_copy(update={"stop_reason": Reason.local})
    (first, second), link = _run([PLAN, local_stop], meter_base_wh=5_000_000)

    assert first.meter_start_wh == 5_000_000
    assert second.meter_start_wh == first.meter_stop_wh
    assert second.transaction_id != first.transaction_id
    assert second.stop_reason == Reason.local
    stops = link.central.calls("CP-UNIT", "StopTransaction")
    assert [p["reason"] for p in stops] == ["EVDisconnected", "Local"]


def test_a_blocked_tag_ends_the_visit_before_any_transaction():
    link = FakeLink()
    link.central.blocked_tags = {"TAG-1"}

    with pytest.raises(SessionError, match="Blocked"):
        _run([PLAN], link)

    assert [p["status"] for p in link.central.calls("CP-UNIT", "StatusNotification")] == [
        "Preparing",
        "Available",
    ]
    assert "StartTransaction" not in link.central.actions("CP-UNIT")


def test_a_connector_the_charger_does_not_have_is_refused():
    with pytest.raises(ValueError, match="no connector 3"):
        _run([PLAN.model_copy(update={"connector_id": 3})])


def test_an_outage_mid_session_delays_the_meter_values_but_loses_none():
    link = FakeLink()
    plan = PLAN.model_copy(update={"meter_interval_s": 60})

    async def scenario():
        async with booted(link) as charger:
            session = asyncio.create_task(charger.run_session(plan, SimClock(speed=30_000, start=T0)))
            while len(link.central.calls("CP-UNIT", "MeterValues")) < 5:
                await asyncio.sleep(0.001)
            link.go_offline()
            await asyncio.sleep(0.05)
            link.go_online()
            return await session, charger.outbox.queued_total

    truth, queued = asyncio.run(scenario())

    assert queued > 0
    sent = link.central.calls("CP-UNIT", "MeterValues")
    assert [int(_values(p)["Energy.Active.Import.Register"][0]) for p in sent] == [
        r.register_wh for r in truth.readings
    ]
    actions = link.central.actions("CP-UNIT")
    assert max(i for i, action in enumerate(actions) if action == "MeterValues") < actions.index(
        "StopTransaction"
    )


def test_under_chaos_the_backend_sees_repeats_but_the_session_is_whole():
    link = FakeLink()

    [truth], _ = _run([PLAN], link, chaos=ChaosConfig(duplicate=0.3, reorder=0.3, seed=4))

    calls = link.calls()
    assert len({m[1] for m in calls}) < len(calls)
    transaction = link.central.transactions[truth.transaction_id]
    assert len(link.central.transactions) == 1
    assert transaction.meter_stop - transaction.meter_start == truth.energy_wh


def test_a_running_session_tells_where_it_is():
    # Real time (speed 1): the session waits 300 s for its first periodic sample, then stays offline.
    link = FakeLink()

    async def scenario() -> tuple[str, str]:
        async with booted(link) as charger:
            session = asyncio.create_task(charger.run_session(PLAN, SimClock(speed=1, start=T0)))
            while not link.central.calls("CP-UNIT", "MeterValues"):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.01)
            [visit] = charger.sessions.values()
            charging = visit.describe()
            link.go_offline()
            visit.interrupt(Reason.local)
            while visit.stage != "waiting for its queued messages to be delivered":
                await asyncio.sleep(0.01)
            stuck = visit.describe()
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session
            return charging, stuck

    charging, stuck = asyncio.run(scenario())

    assert (
        charging
        == "connector 1: waiting until 300 s for its periodic step, 0 s after its start, online, 0 queued"
    )
    assert stuck.startswith(
        "connector 1: waiting for its queued messages to be delivered, 0 s after its start"
    )
    assert stuck.endswith("offline, 2 queued")
