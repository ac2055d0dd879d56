"""Accelerated charging sessions through the real broker to the fake backend."""

import asyncio
import datetime as dt
import json
from collections import Counter

import pytest
from plans import typical_plan
from shim_stack import free_port, link_cutter

from chargenet_shim.cli import main
from chargenet_shim.sim.chaos import ChaosConfig
from chargenet_shim.sim.fleet import SessionFailure, run_sessions
from chargenet_shim.sim.session import SessionPlan
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import SimulatedCharger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

PLAN = typical_plan("TAG-INT")


def _registers(meter_values: dict) -> list[int]:
    return [
        int(v["value"])
        for sample in meter_values["meterValue"]
        for v in sample["sampledValue"]
        if v["measurand"] == "Energy.Active.Import.Register"
    ]


async def _session(creds, plan: SessionPlan, speed: float, during=None):
    charger = SimulatedCharger(creds)
    await charger.start()
    try:
        await charger.run_boot()
        session = asyncio.create_task(charger.run_session(plan, SimClock(speed=speed)))
        if during is not None:
            await during()
        return await session, charger.outbox.queued_total
    finally:
        await charger.stop()


def test_an_accelerated_session_reaches_the_backend_whole(provision, backend):
    creds = provision()

    truth, queued = asyncio.run(_session(creds, PLAN, speed=3000))

    charger_id = creds.charger_id
    assert queued == 0
    assert backend.calls(charger_id, "Authorize") == [{"idTag": "TAG-INT"}]
    [start] = backend.calls(charger_id, "StartTransaction")
    meter_values = backend.calls(charger_id, "MeterValues")
    [stop] = backend.calls(charger_id, "StopTransaction")
    assert len(meter_values) >= 3
    assert {p["transactionId"] for p in meter_values} == {truth.transaction_id} == {stop["transactionId"]}
    registers = [r for p in meter_values for r in _registers(p)]
    assert registers == [r.register_wh for r in truth.readings]
    charging = registers[: 1 + int(truth.charging_s // PLAN.meter_interval_s)]
    assert charging == sorted(set(charging))
    assert stop["meterStop"] - start["meterStart"] == truth.energy_wh > 11_000
    statuses = [p["status"] for p in backend.calls(charger_id, "StatusNotification")]
    assert statuses == ["Preparing", "Charging", "SuspendedEV", "Finishing", "Available"]


def test_meter_values_queued_during_an_outage_arrive_in_order_after_it(provision, backend, broker):
    plan = PLAN.model_copy(update={"meter_interval_s": 120, "target_soc": 95})

    with link_cutter(broker.port) as cutter:
        creds = provision().model_copy(update={"mqtt_port": cutter.port})

        def under_way() -> bool:
            return len(backend.calls(creds.charger_id, "MeterValues")) >= 3

        async def outage() -> None:
            # With awscrt's 1 s reconnect delay the charger is offline for ~50 simulated minutes.
            await asyncio.to_thread(backend.wait_until, under_way)
            cutter.cut()
            await asyncio.sleep(0.3)
            cutter.restore()

        truth, queued = asyncio.run(_session(creds, plan, speed=3000, during=outage))

    assert queued >= 5
    meter_values = backend.calls(creds.charger_id, "MeterValues")
    assert [r for p in meter_values for r in _registers(p)] == [r.register_wh for r in truth.readings]
    assert {p["transactionId"] for p in meter_values} == {truth.transaction_id}
    actions = backend.actions(creds.charger_id)
    assert actions.index("StopTransaction") > max(i for i, a in enumerate(actions) if a == "MeterValues")
    [stop] = backend.calls(creds.charger_id, "StopTransaction")
    assert stop["meterStop"] == truth.meter_stop_wh


def test_a_chaotic_fleet_shows_the_backend_repeats_and_still_adds_up(provision, backend):
    fleet = [provision() for _ in range(2)]
    plans = [[PLAN, PLAN.model_copy(update={"connector_id": 2, "id_tag": "TAG-INT-2"})] for _ in fleet]
    chaos = ChaosConfig(duplicate=0.25, reorder=0.25, seed=21)
    events: list[tuple[str, str]] = []

    outcomes = asyncio.run(
        run_sessions(fleet, plans, SimClock(speed=3000), on_progress=lambda *e: events.append(e), chaos=chaos)
    )

    assert not [o for o in outcomes if isinstance(o, SessionFailure)]
    for truth in outcomes:
        assert (truth.charger_id, f"connector {truth.connector_id}: session started") in events
        assert (
            truth.charger_id,
            f"connector {truth.connector_id}: transaction {truth.transaction_id} done",
        ) in events
    assert [(o.charger_id, o.connector_id) for o in outcomes] == [
        (c.charger_id, connector) for c in fleet for connector in (1, 2)
    ]
    for creds in fleet:
        frames = Counter(backend.frames(creds.charger_id))
        assert max(frames.values()) >= 2, "the backend saw no repeated frame"
    for truth in outcomes:
        transaction = backend.transactions[truth.transaction_id]
        assert (transaction.charger_id, transaction.connector_id) == (truth.charger_id, truth.connector_id)
        assert transaction.meter_stop - transaction.meter_start == truth.energy_wh
    assert len({o.transaction_id for o in outcomes}) == 4


def test_cli_simulate_sessions_prints_each_sessions_truth(provision, backend, credentials_dir, capsys):
    creds = provision()

    status = main(
        ["simulate", "--credentials-dir", str(credentials_dir), "--sessions", "2", "--speed", "20000"]
    )

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].split() == [
        "charger",
        "connector",
        "ocpp",
        "tx",
        "kWh",
        "charging",
        "min",
        "idle",
        "min",
        "peak",
        "kW",
        "error",
    ]
    rows = [line.split() for line in lines[1:]]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        (creds.charger_id, "1", "1.6"),
        (creds.charger_id, "2", "1.6"),
    ]
    for row in rows:
        transaction = backend.transactions[int(row[3])]
        assert f"{(transaction.meter_stop - transaction.meter_start) / 1000:.3f}" == row[4]
    stops = [json.loads(f) for f in backend.frames(creds.charger_id) if '"StopTransaction"' in f]
    assert len(stops) == 2


def test_a_charger_that_cannot_come_up_fails_its_sessions_only(provision, backend):
    good = provision()
    unreachable = provision().model_copy(update={"mqtt_port": free_port()})
    plan = PLAN.model_copy(update={"idle_minutes_after": 0, "start_soc": 85})

    outcomes = asyncio.run(run_sessions([unreachable, good], [[plan, plan], [plan]], SimClock(speed=20_000)))

    failed, also_failed, charged = outcomes
    assert isinstance(failed, SessionFailure) and isinstance(also_failed, SessionFailure)
    assert failed.charger_id == unreachable.charger_id
    assert "CONNECTION_REFUSED" in failed.error
    assert charged.charger_id == good.charger_id
    assert backend.transactions[charged.transaction_id].meter_stop == charged.meter_stop_wh


def test_a_driver_arriving_later_plugs_in_after_the_connector_stood_free(provision, backend):
    creds = provision()
    origin = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
    later = PLAN.model_copy(update={"arrives_after_s": 1800.0})

    [truth] = asyncio.run(run_sessions([creds], [[later]], SimClock(speed=3000, start=origin)))

    [start] = backend.calls(creds.charger_id, "StartTransaction")
    started = dt.datetime.fromisoformat(start["timestamp"].replace("Z", "+00:00"))
    assert started >= origin + dt.timedelta(seconds=1800)
    [stop] = backend.calls(creds.charger_id, "StopTransaction")
    assert stop["transactionId"] == truth.transaction_id
