"""A scenario run through the real broker to the fake backend: what each injection sends, and the ground truth."""

import asyncio
import json
import uuid

import pytest
from shim_stack import free_port

from chargenet_shim.sim.fleet import SessionFailure
from chargenet_shim.sim.scenario import Scenario
from chargenet_shim.sim.scenario_run import run_scenario

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SESSION = {"battery_kwh": 60, "start_soc": 20, "target_soc": 30, "max_power_kw": 22, "meter_interval_s": 60}


def _scenario(prefix: str) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "every-kind",
            "speed": 600,
            "chargers": {"count": 4, "prefix": prefix, "rated_kw": 22},
            "sessions": [{"charger": 2, **SESSION}],
            "injections": [
                {
                    "at_s": 0,
                    "charger": 1,
                    "kind": "error_code",
                    "params": {"code": "GroundFailure", "duration_s": 60},
                },
                {"at_s": 0, "charger": 2, "kind": "stuck_meter"},
                {"at_s": 0, "charger": 2, "kind": "power_above_rating", "params": {"factor": 1.5}},
                {"at_s": 0, "charger": 3, "kind": "stop_answering", "params": {"duration_s": 60}},
                {"at_s": 0, "charger": 3, "kind": "meter_reset", "params": {"connector": 2}},
                {"at_s": 120, "charger": 3, "kind": "reboot_loop", "params": {"count": 2, "every_s": 30}},
                {"at_s": 600, "charger": 3, "kind": "connection_blip", "params": {"duration_s": 60}},
                {"at_s": 0, "charger": 4, "kind": "meter_reset"},
            ],
        }
    )


def _calls(backend, charger_id: str, action: str) -> list[dict]:
    return [m[3] for m in map(json.loads, backend.frames(charger_id)) if m[0] == 2 and m[2] == action]


def test_a_scenario_runs_its_sessions_and_injects_each_fault_on_its_charger(provision, backend, broker):
    prefix = f"SCN-{uuid.uuid4().hex[:6]}"
    scenario = _scenario(prefix)
    one, two, three, four = scenario.chargers.charger_ids
    credentials = [provision(charger_id) for charger_id in (one, two, three)]
    # The fourth charger cannot reach the broker: its fault is recorded as not injected.
    credentials.append(provision(four).model_copy(update={"mqtt_port": free_port()}))
    held = []

    async def hold(injected):
        held.append(len(injected))

    run = asyncio.run(run_scenario(scenario, credentials, hold=hold))

    assert held == [len(scenario.injections)]
    assert run.heartbeat_interval_s == backend.heartbeat_interval
    assert len(run.rtt_ms) == 3 * 3 and all(rtt > 0 for rtt in run.rtt_ms)
    assert [i.index for i in run.injected] == list(range(len(scenario.injections)))
    by_kind = {(i.charger_id, i.injection.kind): i for i in run.injected}
    assert all(i.started_at >= run.started_at for i in run.injected)
    assert by_kind[four, "meter_reset"].error == "the charger did not come up"
    assert [i.error for i in run.injected if i.charger_id != four] == [None] * 7
    # Faults with a duration end; those without last until the run is over.
    assert by_kind[one, "error_code"].ended_at > by_kind[one, "error_code"].started_at
    assert by_kind[two, "stuck_meter"].ended_at is None
    blip = by_kind[three, "connection_blip"]
    assert blip.started_at > by_kind[three, "reboot_loop"].started_at

    statuses = [
        (s["connectorId"], s["status"], s["errorCode"]) for s in _calls(backend, one, "StatusNotification")
    ]
    assert statuses[-2:] == [(1, "Faulted", "GroundFailure"), (1, "Available", "NoError")]

    [truth] = [o for o in run.sessions if o.charger_id == two]
    assert not isinstance(truth, SessionFailure)
    # The sessions and the faults both start at time 0: the first sample may come before the faults.
    charging = [r for r in truth.readings if r.power_w > 0][1:]
    assert len(charging) >= 3
    assert len({(r.register_wh, r.power_w) for r in charging}) == 1 and charging[0].power_w == 33_000.0
    assert by_kind[three, "stop_answering"].ended_at is not None

    assert len(_calls(backend, three, "BootNotification")) == 1 + 2
    assert broker.wait_for_presence(three, connected=False)
