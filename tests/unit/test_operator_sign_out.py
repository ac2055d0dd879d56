"""Signing out of the operator API: POST /ops/v1/sign-out records the moment (audited), and every
operator function's edge refuses a token issued at or before it, or a token without `iat`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import Mock

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from chargenet.adapters.tables import TableNames, bind_tables, bound_tables
from chargenet.composition.operator_api import OperatorAccessEnvironment
from chargenet.domain.sign_outs import LONGEST_TOKEN_VALIDITY_S, SIGN_OUT_KEPT_S, SIGNED_OUT
from chargenet.services.operator_access import OperatorAccess
from chargenet.services.operator_sign_out import OperatorSignOut
from tests.unit.handler_modules import imported_handler
from tests.unit.operator_sign_outs import MemorySignOuts, checked_in_memory
from tests.unit.test_iam_policies import _template
from tests.unit.test_operator_api import NOW, SECRET, MemoryAuditLog, call, claims_of
from tests.unit.test_operator_api import World as ConsoleWorld

NOW_S = int(NOW.timestamp())


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    yield from imported_handler("operator_api")


@pytest.fixture(scope="module")
def sessions_api() -> Iterator[Any]:
    yield from imported_handler("operator_sessions")


class World:
    def __init__(self, api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.audit = MemoryAuditLog()
        self.sign_outs = checked_in_memory(api, monkeypatch)
        service = OperatorSignOut(OperatorAccess(self.audit, lambda: SECRET), self.sign_outs, lambda: NOW)
        monkeypatch.setattr(api, "operator_sign_out", lambda: service)
        console = ConsoleWorld().console  # whoami's
        monkeypatch.setattr(api, "operator_console", lambda: console)


@pytest.fixture
def world(api: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(api, monkeypatch)


def issued(at: int | None, *groups: str) -> dict[str, str]:
    claims = claims_of(*(groups or ("viewer",)))
    claims.pop("iat")
    return claims if at is None else {**claims, "iat": str(at)}


# ---------------------------------------------------------------- the route


@pytest.mark.parametrize("role", ["admin", "technician", "finance", "viewer"])
def test_any_operator_signs_out_and_it_is_recorded_and_audited(api: Any, world: World, role: str) -> None:
    status, answer = call(api, "POST", "/ops/v1/sign-out", issued(NOW_S - 60, role))

    assert (status, answer) == (200, {"signed_out": True})
    assert world.sign_outs.signed_out == {"sub-1": (NOW_S, NOW_S + SIGN_OUT_KEPT_S)}
    [record] = world.audit.records.values()
    assert (record.method, record.route, record.status) == ("POST", "/ops/v1/sign-out", 200)
    assert (record.subject, record.username) == ("sub-1", "ana")


def test_the_signed_out_token_is_refused_and_so_is_another_of_the_same_second(api: Any, world: World) -> None:
    assert call(api, "POST", "/ops/v1/sign-out", issued(NOW_S - 60))[0] == 200

    for token_issued in (NOW_S - 60, NOW_S - 3000, NOW_S):
        status, answer = call(api, "GET", "/ops/v1/whoami", issued(token_issued))
        assert (status, answer) == (401, {"error": "unauthorized", "message": SIGNED_OUT})
    assert call(api, "POST", "/ops/v1/sign-out", issued(NOW_S))[0] == 401  # not again, not audited
    assert len(world.audit.records) == 1


def test_a_token_issued_after_the_sign_out_is_accepted(api: Any, world: World) -> None:
    call(api, "POST", "/ops/v1/sign-out", issued(NOW_S - 60))

    status, answer = call(api, "GET", "/ops/v1/whoami", issued(NOW_S + 1))

    assert status == 200 and answer["subject"] == "sub-1"


def test_another_operators_sign_out_changes_nothing_for_this_one(api: Any, world: World) -> None:
    world.sign_outs.record("someone-else", NOW_S, NOW_S + SIGN_OUT_KEPT_S)

    assert call(api, "GET", "/ops/v1/whoami", issued(NOW_S - 60))[0] == 200


# ---------------------------------------------------------------- the edge, in every function


@pytest.mark.parametrize("iat", [None, "", "soon", "1.5", "-1", "1e9"])
def test_a_token_without_a_whole_iat_is_refused(api: Any, world: World, iat: str | None) -> None:
    claims = issued(None) if iat is None else {**issued(None), "iat": iat}

    status, answer = call(api, "GET", "/ops/v1/whoami", claims)

    assert (status, answer["error"]) == (401, "unauthorized")
    assert "iat" in answer["message"]


def test_another_functions_edge_refuses_the_signed_out_token(
    sessions_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_outs: MemorySignOuts = checked_in_memory(sessions_api, monkeypatch)
    never_reached = Mock()  # the route's service is looked up first; the edge refuses before its call
    monkeypatch.setattr(sessions_api, "operator_sessions", lambda: never_reached)
    sign_outs.record("sub-1", NOW_S, NOW_S + SIGN_OUT_KEPT_S)

    status, answer = call(sessions_api, "GET", "/ops/v1/sessions", issued(NOW_S - 60, "admin"))

    assert (status, answer["message"]) == (401, SIGNED_OUT)
    assert not never_reached.mock_calls


def test_an_unknown_route_of_a_signed_out_token_is_refused_too(api: Any, world: World) -> None:
    world.sign_outs.record("sub-1", NOW_S, NOW_S + SIGN_OUT_KEPT_S)

    assert call(api, "GET", "/ops/v1/nowhere", issued(NOW_S - 60))[0] == 401


# ---------------------------------------------------------------- the table (moto) and the template


@pytest.fixture
def sign_outs_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    previous = bound_tables()
    properties = _template().resources["OperatorSignOutsTable"]["Properties"]
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="SignOuts",
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        bind_tables(TableNames(operator_sign_outs="SignOuts", region="us-east-1"))
        try:
            yield
        finally:
            if previous is not None:
                bind_tables(previous)


def test_the_dynamodb_sign_outs_keep_the_latest_per_subject(sign_outs_table: None) -> None:
    from chargenet.adapters.sign_outs_dynamodb import DynamoSignOuts

    sign_outs = DynamoSignOuts()
    assert sign_outs.signed_out_at("sub-1") is None

    sign_outs.record("sub-1", NOW_S, NOW_S + SIGN_OUT_KEPT_S)
    sign_outs.record("sub-1", NOW_S + 5, NOW_S + 5 + SIGN_OUT_KEPT_S)

    assert sign_outs.signed_out_at("sub-1") == NOW_S + 5
    assert sign_outs.signed_out_at("sub-2") is None
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName="SignOuts", Key={"subject": {"S": "sub-1"}}
    )["Item"]
    assert item["expires_at"] == {"N": str(NOW_S + 5 + SIGN_OUT_KEPT_S)}


def test_the_table_expires_sign_outs_a_day_after_every_token_they_refuse() -> None:
    template = _template()
    properties = template.resources["OperatorSignOutsTable"]["Properties"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    clients = template.of_type("AWS::Cognito::UserPoolClient").values()
    seconds = {"minutes": 60, "hours": 3600, "days": 86400}
    validities = [
        int(c["Properties"][f"{kind}TokenValidity"])
        * seconds[c["Properties"]["TokenValidityUnits"][f"{kind}Token"]]
        for c in clients
        for kind in ("Access", "Id")
    ]
    assert validities and max(validities) <= LONGEST_TOKEN_VALIDITY_S
    assert SIGN_OUT_KEPT_S == LONGEST_TOKEN_VALIDITY_S + 86400


def test_every_operator_function_is_given_the_table() -> None:
    functions = _template().functions()
    operator_functions = [f for f in functions.values() if "OPERATOR_CURSOR_SECRET_ARN" in f.environment]

    assert len(operator_functions) == 5
    for function in operator_functions:
        assert function.environment.get("OPERATOR_SIGN_OUTS_TABLE"), function.logical_id


def test_an_operator_function_without_the_table_is_an_error_naming_it() -> None:
    with pytest.raises(ValidationError, match="OPERATOR_SIGN_OUTS_TABLE"):
        OperatorAccessEnvironment.model_validate({"OPERATOR_CURSOR_SECRET_ARN": "arn:secret"})
