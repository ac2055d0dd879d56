"""EMF lines printed by functions become the metrics CloudWatch would extract from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from chargenet_local.metrics import (
    canonical_dimensions,
    emf_metric_data,
    invocation_data,
    queue_depth_datum,
    split_emf,
)

AT_MS = 1_740_830_400_123
AT = datetime.fromtimestamp(AT_MS / 1000, UTC)


def powertools_output(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """What a handler using Powertools Metrics prints, as the local Lambda runtime captures it."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "fault-sweep")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "chargenet")
    metrics = Metrics()
    metrics.add_metric(name="OfflineSharePercent", unit=MetricUnit.Percent, value=12.5)
    metrics.flush_metrics()
    with single_metric(name="OpenFaults", unit=MetricUnit.Count, value=2, namespace="chargenet") as metric:
        metric.add_dimension(name="Severity", value="safety_critical")
    print('{"level": "INFO", "message": "a log line, not a metric"}')
    return capsys.readouterr().out


def test_powertools_output_yields_its_metrics_with_powertools_dimensions(capsys, monkeypatch) -> None:
    documents, other = split_emf(powertools_output(capsys, monkeypatch))
    assert other == '{"level": "INFO", "message": "a log line, not a metric"}\n'
    data = [datum for document in documents for datum in emf_metric_data(document)]
    assert [
        (namespace, d["MetricName"], d["Dimensions"], d["Unit"], d["Values"]) for namespace, d in data
    ] == [
        (
            "chargenet",
            "OfflineSharePercent",
            [{"Name": "service", "Value": "fault-sweep"}],
            "Percent",
            [12.5],
        ),
        (
            "chargenet",
            "OpenFaults",
            # Name order, whatever order the document lists them in (see canonical_dimensions).
            [{"Name": "Severity", "Value": "safety_critical"}, {"Name": "service", "Value": "fault-sweep"}],
            "Count",
            [2.0],
        ),
    ]


def emf(**overrides: object) -> dict:
    document = {
        "_aws": {
            "Timestamp": AT_MS,
            "CloudWatchMetrics": [
                {
                    "Namespace": "chargenet",
                    "Dimensions": [["service"], ["service", "Site"]],
                    "Metrics": [{"Name": "SessionsStarted", "Unit": "Count"}, {"Name": "Latency"}],
                }
            ],
        },
        "service": "ocpp-ingest",
        "Site": "S1",
        "SessionsStarted": 1,
        "Latency": [3, 4.5],
    }
    document.update(overrides)
    return document


def test_one_datum_per_metric_and_dimension_set_with_the_document_timestamp() -> None:
    data = emf_metric_data(emf())
    assert [(d["MetricName"], [x["Name"] for x in d["Dimensions"]]) for _, d in data] == [
        ("SessionsStarted", ["service"]),
        ("SessionsStarted", ["Site", "service"]),
        ("Latency", ["service"]),
        ("Latency", ["Site", "service"]),
    ]
    first, latency = data[0][1], data[2][1]
    assert first == {
        "MetricName": "SessionsStarted",
        "Dimensions": [{"Name": "service", "Value": "ocpp-ingest"}],
        "Timestamp": AT,
        "Unit": "Count",
        "Value": 1.0,
    }
    assert latency["Values"] == [3.0, 4.5] and latency["Unit"] == "None"


@pytest.mark.parametrize("dimensions", [[], [[]]])
def test_no_dimension_set_means_a_metric_without_dimensions(dimensions: list) -> None:
    document = emf()
    document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = dimensions
    assert {d["MetricName"]: d["Dimensions"] for _, d in emf_metric_data(document)} == {
        "SessionsStarted": [],
        "Latency": [],
    }


@pytest.mark.parametrize(
    "broken",
    [
        {"SessionsStarted": "one"},
        {"SessionsStarted": True},
        {"SessionsStarted": []},
        {"Latency": [1, "2"]},
        {"_aws": {"CloudWatchMetrics": [{"Namespace": "chargenet", "Metrics": [{"Name": "Latency"}]}]}},
        {"_aws": {"Timestamp": AT_MS, "CloudWatchMetrics": [{"Metrics": [{"Name": "Latency"}]}]}},
    ],
)
def test_documents_cloudwatch_would_reject_are_refused(broken: dict) -> None:
    with pytest.raises(ValueError, match="not a valid EMF document"):
        emf_metric_data(emf(**broken))


def test_a_dimension_without_its_value_is_refused() -> None:
    document = emf()
    del document["Site"]
    with pytest.raises(ValueError):
        emf_metric_data(document)


def test_split_keeps_every_line_that_is_not_an_emf_document() -> None:
    output = "plain text\n" + json.dumps(emf()) + "\n{not json\n" + '{"_aws": "in a log message"}\n'
    documents, other = split_emf(output)
    assert documents == [emf()]
    assert other == 'plain text\n{not json\n{"_aws": "in a log message"}\n'


def test_lambda_and_sqs_metrics() -> None:
    assert invocation_data("BillingFunction", failed=True, at=AT) == [
        {
            "MetricName": "Invocations",
            "Dimensions": [{"Name": "FunctionName", "Value": "BillingFunction"}],
            "Timestamp": AT,
            "Unit": "Count",
            "Value": 1.0,
        },
        {
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": "BillingFunction"}],
            "Timestamp": AT,
            "Unit": "Count",
            "Value": 1.0,
        },
    ]
    assert invocation_data("BillingFunction", failed=False, at=AT)[1]["Value"] == 0.0
    assert queue_depth_datum("IngestDeadLetterQueue", 3, AT)["Value"] == 3.0


def test_canonical_dimensions_are_in_name_order() -> None:
    assert canonical_dimensions(
        [
            {"Name": "service", "Value": "a"},
            {"Name": "Severity", "Value": "b"},
            {"Name": "FunctionName", "Value": "c"},
        ]
    ) == [
        {"Name": "FunctionName", "Value": "c"},
        {"Name": "Severity", "Value": "b"},
        {"Name": "service", "Value": "a"},
    ]


def test_the_local_lambda_runtime_hands_over_what_the_handler_printed_as_emf(capsys, monkeypatch) -> None:
    from chargenet_local import lambda_runtime
    from chargenet_local.template import FunctionSpec

    def handler(event: dict, context: object) -> dict:
        print(json.dumps(emf()))
        print("not a metric")
        if event.get("fail"):
            raise KeyError("boom")
        return {"ok": True}

    spec = FunctionSpec("IngestFunction", Path("."), "app.handler", {}, 3, 128, None)
    monkeypatch.setattr(lambda_runtime, "_handler", handler)
    monkeypatch.setattr(lambda_runtime, "_spec", spec)

    done = lambda_runtime._invoke_in_worker({})
    assert (done.result, done.error, done.emf) == ({"ok": True}, None, (emf(),))
    failed = lambda_runtime._invoke_in_worker({"fail": True})
    assert failed.error.startswith("KeyError: 'boom'\n") and failed.emf == (emf(),)
    assert capsys.readouterr().out == "not a metric\nnot a metric\n"  # the rest still reaches the log
