"""template.yaml's `Globals`: what every function shares is said once, and hands no function a name
it may not reach.

SAM merges `Globals.Function.Environment.Variables` into each function's own; the local stack
reads the template through the same transform (chargenet_local.template), so the environment
checked here is the one a function gets both deployed and locally.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from chargenet_local.template import _CfnLoader
from tests.unit.test_iam_policies import _grants, _template

ROOT = Path(__file__).resolve().parents[2]

# Every function's, from Globals (resolved with the template's defaults).
COMMON = {
    "DEFAULT_TIME_ZONE": "UTC",
    "POWERTOOLS_METRICS_NAMESPACE": "chargenet",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

# Table names a function is given without a grant on the table: the payments composition builds
# every store its services may need, and these the function's path never calls. May shrink, never grow.
NAMED_NOT_GRANTED = {
    "PaymentCaptureFunction": {"ChargersTable", "PendingCallsTable", "SessionEventsTable", "TariffsTable"},
    "PaymentSweepFunction": {"TariffsTable"},
}


@cache
def _document() -> dict[str, Any]:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


def _own_variables(function: str) -> dict[str, Any]:
    properties = _document()["Resources"][function]["Properties"]
    return properties.get("Environment", {}).get("Variables", {})


def _global_variables() -> dict[str, Any]:
    return _document()["Globals"]["Function"]["Environment"]["Variables"]


def _functions() -> list[str]:
    return sorted(
        name
        for name, resource in _document()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    )


def _references(value: Any) -> set[str]:
    """Logical ids and parameters a value names through Ref, GetAtt or Sub."""
    if isinstance(value, dict):
        names = set()
        for key, arg in value.items():
            if key == "Ref":
                names.add(arg)
            elif key == "Fn::GetAtt":
                names.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            names |= _references(arg)
        return names
    if isinstance(value, list):
        return set().union(*map(_references, value)) if value else set()
    return set()


def test_globals_name_no_resource_only_parameters_and_constants():
    """A table, topic, queue or secret in Globals would reach every function: each names its own."""
    resources = set(_document()["Resources"])
    for name, value in _global_variables().items():
        assert not _references(value) & resources, f"Globals {name} names a resource: {value}"


@pytest.mark.parametrize("function", _functions())
def test_every_function_gets_the_common_variables_and_its_own(function: str):
    environment = _template().functions()[function].environment
    own = _own_variables(function)
    assert set(environment) == set(COMMON) | set(own), function
    assert {k: environment[k] for k in COMMON} == COMMON, function
    assert environment["POWERTOOLS_SERVICE_NAME"] == own["POWERTOOLS_SERVICE_NAME"], function


@pytest.mark.parametrize("function", _functions())
def test_no_function_repeats_a_common_variable(function: str):
    """Said once: a function sets a Globals variable only to give it another value."""
    common = _global_variables()
    repeated = {k for k, v in _own_variables(function).items() if k in common and common[k] == v}
    assert not repeated, f"{function} repeats {repeated} from Globals"


def test_every_service_name_is_its_own():
    names = [_own_variables(f)["POWERTOOLS_SERVICE_NAME"] for f in _functions()]
    assert len(set(names)) == len(names), names


@pytest.mark.parametrize("function", _functions())
def test_a_function_is_named_only_the_tables_it_is_granted(function: str):
    """test_iam_policies: every granted table is named; here the other way round, known gaps listed."""
    environment = _template().functions()[function].environment
    named = {value for key, value in environment.items() if key.endswith("_TABLE")}
    granted = {r.split("/")[0] for a, r in _grants(function) if a.startswith("dynamodb:")}
    extra = named - granted
    assert extra <= NAMED_NOT_GRANTED.get(function, set()), f"{function}: named, not granted: {extra}"
