"""bench/cold_start.py: the first-call events, and what no handler module may import at cold start."""

import pytest

from bench import cold_start
from bench.harness import TEMPLATE
from chargenet_local.template import load


@pytest.fixture(scope="module")
def functions():
    specs = load(
        TEMPLATE, region="us-east-1", overrides={"IotDataEndpoint": "http://127.0.0.1:9"}
    ).functions()
    return {spec.code_dir.name: spec for spec in specs.values()}


def test_an_api_request_names_its_path_parameters_and_an_admin():
    event = cold_start.http_event("GET", "/pay/{charger_id}/{connector_id}", "/pay/CP-001/1")

    assert event["routeKey"] == "GET /pay/{charger_id}/{connector_id}"
    assert event["pathParameters"] == {"charger_id": "CP-001", "connector_id": "1"}
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] == "[admin]"
    proxied = cold_start.http_event("GET", "/ops/v1/{proxy+}", "/ops/v1/faults/open")
    assert proxied["pathParameters"] == {"proxy": "faults/open"}


def test_every_function_has_a_first_call_of_its_own_kind(functions):
    events = {folder: cold_start.first_call_event(folder) for folder in functions}

    assert events["ocpp_ingest"]["payload"]
    assert events["billing"]["Records"][0]["eventSource"] == "aws:dynamodb"
    assert events["payment_capture"] == cold_start.NEW_CDR
    assert events["session_sweep"]["detail-type"] == "Scheduled Event"
    assert events["operator_sessions"]["requestContext"]["http"]["method"] == "GET"
    body = cold_start.first_call_body("OcppIngestFunction", events["ocpp_ingest"])
    assert "handler(json.loads(" in body and "_Context()" in body


@pytest.mark.parametrize("folder", sorted(cold_start.NOT_AT_COLD_START))
def test_no_handler_module_imports_what_its_first_call_never_needs(functions, folder):
    assert cold_start.imported_at_cold_start(functions[folder], cold_start.must_not_import(folder)) == []


def test_the_import_check_sees_what_a_handler_module_imports(functions):
    assert cold_start.imported_at_cold_start(functions["ocpp_ingest"], ["pynamodb", "no_such_module"]) == [
        "pynamodb"
    ]
