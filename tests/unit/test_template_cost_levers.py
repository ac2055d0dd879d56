"""template.yaml's cost levers (docs/cost.md): what a deployment pays for by default.

X-Ray off unless asked for, logs at WARNING, session data expiring after a retention period,
index projections chosen per query, and custom metrics only where an alarm or the dashboard
reads them (each name x dimensions is billed per month).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from chargenet_local.template import _CfnLoader
from tests.unit.test_iam_policies import _template

ROOT = Path(__file__).resolve().parents[2]
SESSION_DATA_TABLES = ("SessionEventsTable", "HistoryTable")


@cache
def _document() -> dict[str, Any]:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


def _parameter(name: str) -> dict[str, Any]:
    return _document()["Parameters"][name]


def test_tracing_is_a_parameter_off_by_default():
    assert _document()["Globals"]["Function"]["Tracing"] == {"Ref": "TracingMode"}
    assert _parameter("TracingMode")["Default"] == "PassThrough"
    assert set(_parameter("TracingMode")["AllowedValues"]) == {"PassThrough", "Active"}
    for name, spec in _document()["Resources"].items():
        if spec["Type"] == "AWS::Serverless::Function":
            assert "Tracing" not in spec["Properties"], f"{name} overrides TracingMode"


def test_every_function_logs_at_the_log_level_parameter():
    assert _parameter("LogLevel")["Default"] == "WARNING"
    for name, spec in _template().functions().items():
        assert spec.environment["POWERTOOLS_LOG_LEVEL"] == "WARNING", name


def test_log_groups_keep_logs_for_the_retention_parameter():
    groups = {n: r for n, r in _document()["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert groups
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


@pytest.mark.parametrize("table", SESSION_DATA_TABLES)
def test_session_data_expires(table: str):
    properties = _document()["Resources"][table]["Properties"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_every_function_that_may_write_session_data_knows_the_retention():
    assert _parameter("SessionDataRetentionDays")["Default"] == 400
    for name, spec in _template().functions().items():
        tables = {v for k, v in spec.environment.items() if k.endswith("_TABLE")}
        if tables & set(SESSION_DATA_TABLES):
            assert spec.environment.get("SESSION_DATA_RETENTION_DAYS") == "400", name


def test_every_index_that_projects_whole_items_says_why():
    """ALL doubles the writes of every change to an item: each such index carries its reason."""
    lines = (ROOT / "template.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        if "ProjectionType: ALL" in line:
            assert lines[number - 1].strip().startswith("#"), f"template.yaml:{number + 1} has no reason"


def _metrics_read_by_alarms_and_dashboard() -> set[str]:
    resources = _document()["Resources"]
    names = {
        r["Properties"]["MetricName"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "chargenet"
    }
    dashboard = next(r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard")
    body = str(dashboard["Properties"]["DashboardBody"])
    return names | set(re.findall(r'"chargenet", "([A-Za-z]+)"', body))


def _metric_names_in_code() -> set[str]:
    sources = [*ROOT.glob("functions/*/app.py"), *ROOT.glob("layers/shared/chargenet/**/*.py")]
    found: set[str] = set()
    for path in sources:
        text = path.read_text()
        assert not re.search(r"add_metric\(\s*name=f", text), f"{path}: a metric name made per value"
        found |= set(re.findall(r'(?:add_metric|single_metric)\(\s*name="([A-Za-z]+)"', text))
        found |= set(re.findall(r'^METRIC = "([A-Za-z]+)"', text, re.MULTILINE))
    return found


def test_every_custom_metric_is_read_by_an_alarm_or_the_dashboard():
    emitted = _metric_names_in_code()
    assert {"OpenFaults", "OfflineSharePercent", "PaymentFailures", "SessionsStarted"} <= emitted
    assert emitted <= _metrics_read_by_alarms_and_dashboard()
