"""Fleets of mixed OCPP versions: each charger on its version's ingest rule, sessions scored alike."""

import asyncio
import datetime as dt
import json

import pytest
from fake_link import credentials
from plans import typical_plan
from shim_stack import INGEST_RULE, INGEST_RULE_201

from chargenet_shim.cli import main
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim.fleet import SessionFailure, parse_versions, run_fleet, run_sessions, versions_for
from chargenet_shim.sim.simclock import SimClock

V16, V201 = OcppVersion.V16, OcppVersion.V201


def test_versions_cycle_over_the_fleet_in_order():
    assert parse_versions("1.6, 2.0.1") == [V16, V201]
    assert parse_versions("ocpp2.0.1") == [V201]
    assert versions_for(5, parse_versions("1.6,1.6,2.0.1")) == [V16, V16, V201, V16, V16]
    assert versions_for(2, None) == [V16, V16]


@pytest.mark.parametrize("spec", ["", "1.5", "1.6,2.1", " , "])
def test_unknown_versions_are_refused(spec):
    with pytest.raises(ValueError, match="OCPP version"):
        parse_versions(spec)


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_a_mixed_fleet_boots_each_charger_on_its_versions_rule(provision, backend):
    fleet = [provision() for _ in range(4)]

    results = asyncio.run(run_fleet(fleet, versions=[V16, V201]))

    assert [r.ocpp_version for r in results] == [V16, V201, V16, V201]
    assert all(r.boot_status == "Accepted" and r.error is None for r in results)
    for creds, result in zip(fleet, results, strict=True):
        rule = INGEST_RULE_201 if result.ocpp_version is V201 else INGEST_RULE
        rules = backend.rules(creds.charger_id)
        assert rules and set(rules) == {rule}
    boot = json.loads(backend.frames(fleet[1].charger_id)[0])
    assert boot[2:] == [
        "BootNotification",
        {
            "chargingStation": {"vendorName": "chargenet", "model": "SimCharger", "firmwareVersion": "0.1.0"},
            "reason": "PowerUp",
        },
    ]


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_a_mixed_fleets_sessions_are_truths_of_one_kind(provision, backend):
    fleet = [provision(), provision()]
    plan = typical_plan()
    clock = SimClock(speed=20_000, start=dt.datetime(2025, 3, 1, 8, tzinfo=dt.UTC))

    outcomes = asyncio.run(run_sessions(fleet, [[plan], [plan]], clock, versions=[V16, V201]))

    assert not [o for o in outcomes if isinstance(o, SessionFailure)]
    old, new = outcomes
    assert (old.ocpp_version, new.ocpp_version) == (V16, V201)
    assert old.energy_wh == new.energy_wh == 12_000
    transaction = backend.transactions[old.transaction_id]
    assert transaction.meter_stop - transaction.meter_start == old.energy_wh
    events = backend.events[new.transaction_id]
    assert [e["eventType"] for e in (events[0], events[-1])] == ["Started", "Ended"]
    assert events[-1]["meterValue"][0]["sampledValue"][0]["value"] == new.meter_stop_wh


def test_simulate_refuses_an_unknown_ocpp_version(tmp_path, capsys):
    folder = tmp_path / "CP-001"
    folder.mkdir()
    credentials("CP-001").save(folder)

    assert main(["simulate", "--credentials-dir", str(tmp_path), "--ocpp-versions", "1.6,1.5"]) == 2
    assert "--ocpp-versions: OCPP versions are 1.6, 2.0.1" in capsys.readouterr().err
