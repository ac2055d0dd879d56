"""Operator API, sessions area (API Gateway HTTP API v2, JWT authorizer OperatorJwt): sessions (list,
show, settle, orphan stops), CDRs (list, show, credit, export), RFID tags (add, list) and tariffs
(store, assign, list).

Thin: the verified claims become the operator, the query and body are read
(chargenet.handlers.operator_http), the service (chargenet.services.operator_sessions) decides,
checks permissions and audits.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.operator_api import sign_out_check
from chargenet.composition.operator_sessions import operator_sessions
from chargenet.handlers.operator_http import OperatorHttp
from chargenet.services.operator_sessions import (
    ASSIGNMENT_SHAPE,
    CREDIT_SHAPE,
    MAX_TARIFF_CHARS,
    SETTLE_SHAPE,
    TAG_SHAPE,
    TARIFF_SHAPE,
)

logger = Logger()
# A tariff travels as JSON text inside the body: room for the largest one the service takes.
http = OperatorHttp(sign_out_check, max_body_chars=2 * MAX_TARIFF_CHARS)
app = http.app


@app.get("/sessions")
def sessions() -> dict[str, Any]:
    return operator_sessions().list_sessions(
        http.operator(), http.query("state"), http.query("charger"), http.limit(), http.cursor()
    )


@app.get("/sessions/orphans")
def orphan_stops() -> dict[str, Any]:
    return operator_sessions().orphan_stops(http.operator(), http.limit(), http.cursor())


@app.get("/sessions/<session_id>")
def session(session_id: str) -> dict[str, Any]:
    return operator_sessions().show_session(http.operator(), session_id)


@app.post("/sessions/<session_id>/settle")
def settle(session_id: str) -> dict[str, Any]:
    request = http.request("/sessions/{session_id}/settle")
    return operator_sessions().settle_session(
        http.operator(), request, session_id, lambda: http.body(SETTLE_SHAPE)
    )


@app.get("/cdrs")
def cdrs() -> dict[str, Any]:
    return operator_sessions().list_cdrs(http.operator(), http.limit(), http.cursor())


@app.get("/cdrs/export")
def export() -> dict[str, Any]:
    return operator_sessions().export_cdrs(http.operator(), http.query("format"), http.limit(), http.cursor())


@app.get("/cdrs/<cdr_id>")
def cdr(cdr_id: str) -> dict[str, Any]:
    return operator_sessions().show_cdr(http.operator(), cdr_id)


@app.post("/cdrs/<cdr_id>/credit")
def credit(cdr_id: str) -> Response[Any]:
    request = http.request("/cdrs/{cdr_id}/credit")
    credited = operator_sessions().credit_cdr(
        http.operator(), request, cdr_id, lambda: http.body(CREDIT_SHAPE)
    )
    return http.created(credited)


@app.get("/tags")
def tags() -> dict[str, Any]:
    return operator_sessions().list_tags(http.operator(), http.limit(), http.cursor())


@app.post("/tags")
def put_tag() -> dict[str, Any]:
    return operator_sessions().put_tag(http.operator(), http.request("/tags"), lambda: http.body(TAG_SHAPE))


@app.get("/tariffs")
def tariffs() -> dict[str, Any]:
    return operator_sessions().list_tariffs(http.operator(), http.limit(), http.cursor())


@app.post("/tariffs")
def store_tariff() -> dict[str, Any]:
    return operator_sessions().store_tariff(
        http.operator(), http.request("/tariffs"), lambda: http.body(TARIFF_SHAPE)
    )


@app.get("/tariffs/assignments")
def assignments() -> dict[str, Any]:
    return operator_sessions().list_assignments(http.operator(), http.limit(), http.cursor())


@app.post("/tariffs/assignments")
def assign_tariff() -> dict[str, Any]:
    return operator_sessions().assign_tariff(
        http.operator(), http.request("/tariffs/assignments"), lambda: http.body(ASSIGNMENT_SHAPE)
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return http.handle(event, context)
