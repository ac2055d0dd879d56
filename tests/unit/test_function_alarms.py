"""Every function in the template has an errors alarm, and each one alarms on the local stack.

A function added without one fails here: its failures would otherwise reach nobody.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from chargenet_local.alarms import AlarmEvaluator, create_alarms_and_dashboards
from chargenet_local.metrics import LAMBDA_NAMESPACE, invocation_data
from chargenet_local.template import Template
from tests.unit.test_local_alarms import REGION, alarms, aws, template  # noqa: F401 - fixtures


def errors_alarms(stack_template: Template) -> dict[str, dict[str, Any]]:
    """Function logical id -> the properties of the alarm on its AWS/Lambda Errors."""
    found = {}
    for resource in stack_template.of_type("AWS::CloudWatch::Alarm").values():
        props = resource["Properties"]
        if (props.get("Namespace"), props.get("MetricName")) != (LAMBDA_NAMESPACE, "Errors"):
            continue
        [dimension] = props["Dimensions"]
        assert dimension["Name"] == "FunctionName"
        found[dimension["Value"]["Ref"]] = props
    return found


def test_every_function_has_an_errors_alarm_that_notifies_the_operators(template) -> None:  # noqa: F811
    functions = set(template.of_type("AWS::Lambda::Function"))
    assert len(functions) >= 11
    watched = errors_alarms(template)
    assert functions - set(watched) == set(), "functions without an errors alarm"
    for function, props in watched.items():
        assert (props["Statistic"], props["Threshold"], props["ComparisonOperator"]) == (
            "Sum",
            0,
            "GreaterThanThreshold",
        ), function
        assert props["AlarmActions"] == [{"Ref": "AlertsTopic"}], function
        assert function in props["AlarmDescription"], "the notification names the function"


def test_each_functions_errors_alarm_fires_on_the_local_stack(template, aws) -> None:  # noqa: F811
    create_alarms_and_dashboards(template, aws["cloudwatch"])
    now = time.time()
    functions = sorted(errors_alarms(template))
    data = [d for f in functions for d in invocation_data(f, True, datetime.fromtimestamp(now, UTC))]
    aws["cloudwatch"].put_metric_data(Namespace=LAMBDA_NAMESPACE, MetricData=data)

    AlarmEvaluator(aws["cloudwatch"], aws["sns"], REGION).evaluate_all(now)

    states = {
        a["Dimensions"][0]["Value"]: a["StateValue"]
        for a in alarms(aws).values()
        if a["Namespace"] == LAMBDA_NAMESPACE
    }
    assert states == dict.fromkeys(functions, "ALARM")


def test_every_function_is_on_the_dashboards_errors_widget() -> None:
    """The operations dashboard's "Lambda errors" graph names each function (by ${Logical} in its body)."""
    import re
    from pathlib import Path

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    text = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    resources = yaml.load(text, Loader=Loader)["Resources"]
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    on_widget = set(re.findall(r'\["AWS/Lambda", "Errors", "FunctionName", "\$\{(\w+)\}"\]', text))
    assert functions - {"ConsoleCallbackFunction"} <= on_widget  # a deploy-time helper, alarmed only
