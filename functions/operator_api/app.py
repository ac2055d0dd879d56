"""Operator API (API Gateway HTTP API v2, /ops/v1/*, JWT authorizer OperatorJwt): who am I, chargers,
faults (list, acknowledge, resolve), the audit trail, operator accounts (admins).

Thin: the verified claims become the operator, the query and body are read, the operator console
(chargenet.services.operator_api) decides, checks permissions and audits. JSON everywhere; errors
are {"error": code, "message": text}.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.operator_api import operator_console
from chargenet.domain.operators import NotSignedIn, Operator, operator_from_claims
from chargenet.services.operator_api import BadRequest, OperatorError, RequestInfo, parse_limit

logger = Logger()
app = APIGatewayHttpResolver(strip_prefixes=["/ops/v1"])
MAX_BODY_CHARS = 4096


def _json_error(status: int, error: str, message: str) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, {"error": error, "message": message})


def _operator() -> Operator:
    context = app.current_event.raw_event.get("requestContext") or {}
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims")
    return operator_from_claims(claims if isinstance(claims, dict) else None)


def _request(route: str) -> RequestInfo:
    context = app.current_event.request_context
    epoch_ms = context.time_epoch or 0
    at = datetime.fromtimestamp(epoch_ms / 1000, UTC) if epoch_ms else datetime.now(UTC)
    return RequestInfo(
        app.current_event.request_context.http.method, f"/ops/v1{route}", context.request_id, at
    )


def _query(name: str) -> str | None:
    return app.current_event.get_query_string_value(name)


def _limit() -> int:
    return parse_limit(_query("limit"))


def _note() -> str | None:
    """The ack body: {"note": "..."}, or no body."""
    body = app.current_event.decoded_body or ""
    if not body.strip():
        return None
    if len(body) > MAX_BODY_CHARS:
        raise BadRequest(f"the body is limited to {MAX_BODY_CHARS} characters")
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest('the body is JSON: {"note": "..."}') from None
    if not isinstance(data, dict) or set(data) - {"note"} or not isinstance(data.get("note", ""), str):
        raise BadRequest('the body is JSON: {"note": "..."}')
    note = data.get("note")
    return note if isinstance(note, str) else None


def _body_object(shape: str) -> dict[str, Any]:
    """A JSON object body of at most MAX_BODY_CHARS; `shape` says what it should be."""
    body = app.current_event.decoded_body or ""
    if len(body) > MAX_BODY_CHARS:
        raise BadRequest(f"the body is limited to {MAX_BODY_CHARS} characters")
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest(f"the body is JSON: {shape}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body is JSON: {shape}")
    return data


@app.exception_handler(OperatorError)  # type: ignore[untyped-decorator]  # powertools leaves exception_handler's return unannotated
def _operator_error(error: OperatorError) -> Response[Any]:
    return _json_error(error.status, error.code, str(error))


@app.exception_handler(NotSignedIn)  # type: ignore[untyped-decorator]  # powertools leaves exception_handler's return unannotated
def _not_signed_in(error: NotSignedIn) -> Response[Any]:
    return _json_error(401, "unauthorized", str(error))


@app.get("/whoami")
def whoami() -> dict[str, Any]:
    return operator_console().whoami(_operator())


@app.get("/chargers")
def chargers() -> dict[str, Any]:
    return operator_console().chargers(_operator(), _query("site"), _limit(), _query("next"))


@app.get("/chargers/<charger_id>")
def charger(charger_id: str) -> dict[str, Any]:
    return operator_console().charger(_operator(), charger_id)


@app.get("/faults")
def faults() -> dict[str, Any]:
    open_only = _query("open")
    if open_only not in (None, "true", "false"):
        raise BadRequest("open is true or false")
    return operator_console().faults(_operator(), open_only == "true", _limit(), _query("next"))


@app.post("/faults/<fault_id>/ack")
def acknowledge(fault_id: str) -> dict[str, Any]:
    request = _request("/faults/{fault_id}/ack")
    return operator_console().acknowledge_fault(_operator(), request, fault_id, _note)


@app.post("/faults/<fault_id>/resolve")
def resolve(fault_id: str) -> dict[str, Any]:
    return operator_console().resolve_fault(_operator(), _request("/faults/{fault_id}/resolve"), fault_id)


@app.get("/audit")
def audit() -> dict[str, Any]:
    return operator_console().audit(_operator(), _query("day"), _limit(), _query("next"))


@app.get("/operators")
def operators() -> dict[str, Any]:
    return operator_console().operators(_operator(), _limit(), _query("next"))


@app.post("/operators")
def add_operator() -> Response[Any]:
    shape = '{"username": "...", "email": "...", "role": "..."}'
    created = operator_console().add_operator(
        _operator(), _request("/operators"), lambda: _body_object(shape)
    )
    return Response(201, content_types.APPLICATION_JSON, created)


@app.put("/operators/<username>/role")
def set_operator_role(username: str) -> dict[str, Any]:
    request = _request("/operators/{username}/role")
    return operator_console().set_operator_role(
        _operator(), request, username, lambda: _body_object('{"role": "..."}')
    )


@app.delete("/operators/<username>")
def remove_operator(username: str) -> dict[str, Any]:
    return operator_console().remove_operator(_operator(), _request("/operators/{username}"), username)


@app.not_found
def _not_found(_: Exception) -> Response[Any]:
    if _operator_or_none() is None:
        return _json_error(401, "unauthorized", "no signed-in operator")
    return _json_error(404, "not_found", "no such route")


def _operator_or_none() -> Operator | None:
    try:
        return _operator()
    except NotSignedIn:
        return None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
