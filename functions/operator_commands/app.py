"""Operator API, commands, diagnostics and firmware (API Gateway HTTP API v2, JWT authorizer
OperatorJwt): send OCPP commands and read their answers, request and fetch diagnostics, list
firmware releases, register and roll them out, and follow the rollouts.

Thin: the verified claims become the operator, the query and body are read
(chargenet.handlers.operator_http), chargenet.services.operator_commands decides, checks
permissions and audits.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.operator_api import sign_out_check
from chargenet.composition.operator_commands import operator_commands
from chargenet.handlers.operator_http import OperatorHttp

logger = Logger()
http = OperatorHttp(sign_out_check)
app = http.app
COMMANDS = "/chargers/{charger_id}/commands"
DIAGNOSTICS = "/chargers/{charger_id}/diagnostics"


@app.post("/chargers/<charger_id>/commands")
def send_command(charger_id: str) -> Response[Any]:
    shape = '{"action": "Reset", "payload": {...}}'
    sent = operator_commands().send_command(
        http.operator(), http.request(COMMANDS), charger_id, lambda: http.body(shape)
    )
    return http.created(sent)


@app.get("/chargers/<charger_id>/commands")
def command_history(charger_id: str) -> dict[str, Any]:
    return operator_commands().command_history(http.operator(), charger_id, http.limit(), http.cursor())


@app.get("/chargers/<charger_id>/commands/<message_id>")
def command(charger_id: str, message_id: str) -> dict[str, Any]:
    return operator_commands().command(http.operator(), charger_id, message_id)


@app.post("/chargers/<charger_id>/commands/<message_id>/timeout")
def time_out_command(charger_id: str, message_id: str) -> dict[str, Any]:
    request = http.request(COMMANDS + "/{message_id}/timeout")
    return operator_commands().time_out_command(http.operator(), request, charger_id, message_id)


@app.post("/chargers/<charger_id>/diagnostics")
def request_diagnostics(charger_id: str) -> Response[Any]:
    sent = operator_commands().request_diagnostics(http.operator(), http.request(DIAGNOSTICS), charger_id)
    return http.created(sent)


@app.get("/chargers/<charger_id>/diagnostics")
def diagnostics_files(charger_id: str) -> dict[str, Any]:
    return operator_commands().diagnostics_files(http.operator(), charger_id, http.limit(), http.cursor())


@app.get("/chargers/<charger_id>/diagnostics/<name>")
def diagnostics_file(charger_id: str, name: str) -> dict[str, Any]:
    return operator_commands().diagnostics_file(http.operator(), charger_id, name)


@app.get("/firmware/releases")
def releases() -> dict[str, Any]:
    return operator_commands().releases(http.operator(), http.limit(), http.cursor())


@app.get("/firmware/releases/<version>")
def release(version: str) -> dict[str, Any]:
    return operator_commands().release(http.operator(), version)


@app.post("/firmware/releases/<version>")
def register_release(version: str) -> dict[str, Any]:
    request = http.request("/firmware/releases/{version}")
    return operator_commands().register_release(http.operator(), request, version)


@app.post("/firmware/deployments")
def deploy() -> Response[Any]:
    shape = '{"version": "1.4.0", "chargers": ["CP-001"], "rollout_percent": 100, "force": false}'
    deployed = operator_commands().deploy(
        http.operator(), http.request("/firmware/deployments"), lambda: http.body(shape)
    )
    return http.created(deployed)


@app.get("/firmware/status")
def rollout_status() -> dict[str, Any]:
    return operator_commands().rollout_status(
        http.operator(), http.query("version"), http.limit(), http.cursor()
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return http.handle(event, context)
