"""`chargenet scenario run`: a scripted fleet with an injected fault, end to end on the local stack."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.integration.test_cli import run as cli

pytestmark = pytest.mark.timeout(90)


def test_a_ground_failure_is_alerted_exactly_once_and_the_healthy_charger_stays_quiet(stack, tmp_path):
    prefix = f"SCN-{uuid.uuid4().hex[:6]}"
    scenario = tmp_path / "ground-failure.yaml"
    scenario.write_text(
        f"""
name: ground-failure
speed: 60
settle_s: 20
chargers: {{count: 2, prefix: {prefix}, rated_kw: 22, site: SITE-SCN}}
sessions:
  - {{charger: 2, connector_id: 1, battery_kwh: 40, start_soc: 50, target_soc: 55, max_power_kw: 22,
     meter_interval_s: 60}}
injections:
  - {{at_s: 30, charger: 1, kind: error_code, params: {{code: GroundFailure, vendor_error_code: RCD-7}}}}
"""
    )

    result = cli(stack.home, "scenario", "run", str(scenario), "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    [injected] = report["injections"]
    assert (injected["charger_id"], injected["label"], injected["error"]) == (
        f"{prefix}-001",
        "error_code/GroundFailure",
        None,
    )
    assert injected["alert"]["code"] == "GroundFailure"
    assert injected["alert"]["charger_id"] == f"{prefix}-001"
    assert 0 <= injected["latency_s"] < 15
    assert report["false_alerts"] == []
    assert report["sessions"] == {"completed": 1, "failed": []}
    assert report["broker_rtt_ms"]["samples"] > 0

    # A late duplicate would show up in the inbox after the run. (Once the run is over its
    # chargers disconnect, and the test stack's 2 s offline grace reports them offline.)
    time.sleep(2)
    alerts = json.loads(cli(stack.home, "alert", "list", "--json").stdout)
    ground_failures = [a for a in alerts if prefix in a["subject"] and "GroundFailure" in a["subject"]]
    assert [a["attributes"]["kind"] for a in ground_failures] == ["raised"]
    assert f"{prefix}-001 connector 1" in ground_failures[0]["subject"]


def test_an_invalid_scenario_is_refused_with_the_place_of_each_problem(stack, tmp_path):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(
        """
name: bad
chargers: {count: 1, prefix: SCN-BAD, rated_kw: 22}
injections:
  - {at_s: 5, charger: 2, kind: stuck_meter}
  - {at_s: 5, charger: 1, kind: meltdown}
"""
    )

    result = cli(stack.home, "scenario", "run", str(scenario))

    assert result.returncode == 2
    assert "injections.1: Input tag 'meltdown'" in result.stderr
    assert "bad.yaml" in result.stderr
