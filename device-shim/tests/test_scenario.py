"""Scenario files: the format, its defaults, and errors that say where the problem is."""

import json
from pathlib import Path

import pytest

from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim.scenario import (
    DEFAULT_TAG,
    ErrorCode,
    InjectionKind,
    RebootLoop,
    ScenarioError,
    injection_label,
    load_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

MINIMAL = """
name: minimal
chargers: {count: 2, prefix: SCN-T, rated_kw: 22}
sessions:
  - {charger: 2, battery_kwh: 60, start_soc: 20, target_soc: 40, max_power_kw: 11, meter_interval_s: 60}
injections:
  - {at_s: 10, charger: 1, kind: error_code, params: {code: GroundFailure}}
  - {at_s: 20, charger: 2, kind: reboot_loop}
"""


def _write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(_write(tmp_path, text))
    return str(raised.value)


def test_a_yaml_scenario_loads_with_its_defaults(tmp_path):
    scenario = load_scenario(_write(tmp_path, MINIMAL))

    assert (scenario.speed, scenario.settle_s) == (10.0, 60.0)
    assert scenario.chargers.charger_ids == ["SCN-T-001", "SCN-T-002"]
    ground, loop = scenario.injections
    assert isinstance(ground, ErrorCode) and (ground.params.connector, ground.params.duration_s) == (1, None)
    assert isinstance(loop, RebootLoop) and (loop.params.count, loop.params.every_s) == (3, 60.0)
    assert [injection_label(i) for i in scenario.injections] == ["error_code/GroundFailure", "reboot_loop"]
    no_plans, [plan] = scenario.plans_per_charger()
    assert no_plans == [] and (plan.connector_id, plan.id_tag) == (1, DEFAULT_TAG)
    assert scenario.tags() == {DEFAULT_TAG: 1}


def test_json_is_read_as_json(tmp_path):
    document = {
        "name": "as-json",
        "chargers": {"count": 1, "prefix": "SCN-J", "rated_kw": 11},
        "injections": [{"at_s": 0, "charger": 1, "kind": "connection_outage", "params": {"duration_s": 900}}],
    }

    scenario = load_scenario(_write(tmp_path, json.dumps(document), "scenario.json"))

    assert scenario.injections[0].kind == InjectionKind.CONNECTION_OUTAGE


def test_errors_name_the_file_and_the_place_of_each_problem(tmp_path):
    problems = _problems(
        tmp_path,
        """
name: broken
chargers: {count: 2, prefix: SCN-B, rated_kw: 22}
injections:
  - {at_s: 5, charger: 1, kind: meltdown}
  - {at_s: -1, charger: 1, kind: stuck_meter, params: {connector: 3}}
  - {at_s: 5, charger: 1, kind: connection_outage}
  - {at_s: 5, charger: 1, kind: error_code, params: {code: NoError}}
  - {at_s: 5, charger: 1, kind: power_above_rating, params: {factor: 0.9, colour: red}}
""",
    )

    assert problems.startswith(str(tmp_path / "scenario.yaml"))
    assert "injections.0: Input tag 'meltdown' found using 'kind'" in problems
    assert "'error_code', 'connection_blip'" in problems
    assert "injections.1.stuck_meter.at_s: Input should be greater than or equal to 0" in problems
    assert "injections.1.stuck_meter.params.connector: Input should be less than or equal to 2" in problems
    assert "injections.2.connection_outage.params: Field required" in problems
    assert "injections.3.error_code.params.code: NoError is no fault" in problems
    assert "injections.4.power_above_rating.params.factor: Input should be greater than 1" in problems
    assert "injections.4.power_above_rating.params.colour: Extra inputs are not permitted" in problems


def test_chargers_and_power_must_fit_the_fleet(tmp_path):
    problems = _problems(
        tmp_path,
        """
name: too-big
chargers: {count: 2, prefix: SCN-B, rated_kw: 22}
sessions:
  - {charger: 3, battery_kwh: 60, start_soc: 20, target_soc: 40, max_power_kw: 50}
injections:
  - {at_s: 5, charger: 4, kind: meter_reset}
""",
    )

    assert "sessions.0: charger 3 is not in the fleet of 2" in problems
    assert "sessions.0: max_power_kw 50.0 is above the chargers' rated_kw 22.0" in problems
    assert "injections.0: charger 4 is not in the fleet of 2" in problems


def test_a_session_must_charge_something(tmp_path):
    problems = _problems(
        tmp_path,
        """
name: backwards
chargers: {count: 1, prefix: SCN-B, rated_kw: 22}
sessions:
  - {charger: 1, battery_kwh: 60, start_soc: 40, target_soc: 20, max_power_kw: 11}
""",
    )

    assert "sessions.0: target_soc must be above start_soc" in problems


def test_unreadable_files_are_scenario_errors(tmp_path):
    with pytest.raises(ScenarioError, match="No such file"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(_write(tmp_path, "name: [unclosed"))
    with pytest.raises(ScenarioError, match="scenario: Input should be a valid dictionary"):
        load_scenario(_write(tmp_path, "- just a list"))


@pytest.mark.parametrize("name", ["faults.yaml", "healthy.yaml"])
def test_the_example_scenarios_are_valid(name):
    scenario = load_scenario(SCENARIOS / name)

    assert scenario.chargers.count >= 1 and scenario.sessions


def test_the_faults_scenario_injects_every_kind_and_every_error_code():
    scenario = load_scenario(SCENARIOS / "faults.yaml")

    assert {i.kind for i in scenario.injections} == set(InjectionKind)
    codes = {i.params.code for i in scenario.injections if isinstance(i, ErrorCode)}
    assert len(codes) == 15


def test_a_scenario_names_the_chargers_that_speak_2_0_1(tmp_path):
    scenario = load_scenario(
        _write(tmp_path, MINIMAL.replace("rated_kw: 22}", "rated_kw: 22, ocpp201: [2]}"))
    )

    assert scenario.chargers.versions == [OcppVersion.V16, OcppVersion.V201]
    assert load_scenario(_write(tmp_path, MINIMAL)).chargers.versions == [OcppVersion.V16] * 2


def test_a_2_0_1_charger_must_be_in_the_fleet(tmp_path):
    problems = _problems(tmp_path, MINIMAL.replace("rated_kw: 22}", "rated_kw: 22, ocpp201: [3]}"))

    assert "chargers.ocpp201: charger 3 is not in the fleet of 2" in problems
