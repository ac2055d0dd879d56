"""Operator API (API Gateway HTTP API v2, /ops/v1/*, JWT authorizer OperatorJwt): who am I, chargers,
fleet health, the NEVI uptime report, faults (list, show, acknowledge, resolve, exclude) and their
alerts, the audit trail, operator accounts (admins), signing out (chargenet.services.operator_sign_out);
for the web console, a charger's timeline and the energy and utilisation reports
(chargenet.services.operator_reports).

Thin: the verified claims become the operator, the query and body are read
(chargenet.handlers.operator_http), the operator console (chargenet.services.operator_api)
decides, checks permissions and audits.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.operator_api import (
    operator_console,
    operator_reports,
    operator_sign_out,
    sign_out_check,
)
from chargenet.handlers.operator_http import OperatorHttp
from chargenet.services.operator_access import PER_CHARGER_LIMIT, PER_CHARGER_MAX_LIMIT, BadRequest
from chargenet.services.operator_reports import ReportRequest

# The energy report aggregates one Scan page of CDRs per request: small items, so a page may be
# larger than a listing's (fewer round trips for a long range), and stays well under 1 MB.
ENERGY_CDRS_LIMIT = 200
ENERGY_CDRS_MAX_LIMIT = 1000

logger = Logger()
http = OperatorHttp(sign_out_check)
app = http.app


def _note() -> str | None:
    """The ack body: {"note": "..."}, or no body."""
    data = http.body('{"note": "..."}', optional=True)
    if set(data) - {"note"} or not isinstance(data.get("note", ""), str):
        raise BadRequest('the body is JSON: {"note": "..."}')
    note = data.get("note")
    return note if isinstance(note, str) else None


@app.get("/whoami")
def whoami() -> dict[str, Any]:
    return operator_console().whoami(http.operator())


@app.post("/sign-out")
def sign_out() -> dict[str, Any]:
    return operator_sign_out().sign_out(http.operator(), http.request("/sign-out"))


@app.get("/chargers")
def chargers() -> dict[str, Any]:
    return operator_console().chargers(http.operator(), http.query("site"), http.limit(), http.cursor())


@app.get("/chargers/<charger_id>")
def charger(charger_id: str) -> dict[str, Any]:
    return operator_console().charger(http.operator(), charger_id)


@app.get("/faults")
def faults() -> dict[str, Any]:
    open_only = bool(http.flag("open"))
    return operator_console().faults(http.operator(), open_only, http.limit(), http.cursor())


@app.get("/faults/<fault_id>")
def fault(fault_id: str) -> dict[str, Any]:
    return operator_console().fault(http.operator(), fault_id)


@app.post("/faults/<fault_id>/ack")
def acknowledge(fault_id: str) -> dict[str, Any]:
    request = http.request("/faults/{fault_id}/ack")
    return operator_console().acknowledge_fault(http.operator(), request, fault_id, _note)


@app.post("/faults/<fault_id>/resolve")
def resolve(fault_id: str) -> dict[str, Any]:
    return operator_console().resolve_fault(
        http.operator(), http.request("/faults/{fault_id}/resolve"), fault_id
    )


@app.post("/faults/<fault_id>/exclude")
def exclude(fault_id: str) -> dict[str, Any]:
    request = http.request("/faults/{fault_id}/exclude")
    shape = '{"reason": "<NEVI reason>" | null, "note": "..."}'
    return operator_console().exclude_fault(http.operator(), request, fault_id, lambda: http.body(shape))


@app.get("/alerts")
def alerts() -> dict[str, Any]:
    return operator_console().alerts(http.operator(), http.query("since"), http.limit(), http.cursor())


@app.get("/fleet/health")
def fleet_health() -> dict[str, Any]:
    limit = http.limit(PER_CHARGER_LIMIT, PER_CHARGER_MAX_LIMIT)
    return operator_console().fleet_health(http.operator(), limit, http.cursor())


@app.get("/reports/uptime")
def uptime() -> dict[str, Any]:
    twelve_months = bool(http.flag("twelve_months"))
    limit = http.limit(PER_CHARGER_LIMIT, PER_CHARGER_MAX_LIMIT)
    return operator_console().uptime(
        http.operator(), http.query("month"), twelve_months, limit, http.cursor()
    )


@app.get("/chargers/<charger_id>/timeline")
def charger_timeline(charger_id: str) -> dict[str, Any]:
    return operator_reports().timeline(http.operator(), charger_id, http.limit(), http.cursor())


def _report_request(default_limit: int, max_limit: int) -> ReportRequest:
    first, last, site = http.query("from"), http.query("to"), http.query("site")
    return ReportRequest(first, last, site, http.limit(default_limit, max_limit), http.cursor())


@app.get("/reports/energy")
def energy() -> dict[str, Any]:
    request = _report_request(ENERGY_CDRS_LIMIT, ENERGY_CDRS_MAX_LIMIT)
    return operator_reports().energy(http.operator(), request)


@app.get("/reports/utilisation")
def utilisation() -> dict[str, Any]:
    request = _report_request(PER_CHARGER_LIMIT, PER_CHARGER_MAX_LIMIT)
    return operator_reports().utilisation(http.operator(), request)


@app.get("/audit")
def audit() -> dict[str, Any]:
    return operator_console().audit(http.operator(), http.query("day"), http.limit(), http.cursor())


@app.get("/operators")
def operators() -> dict[str, Any]:
    return operator_console().operators(http.operator(), http.limit(), http.cursor())


@app.post("/operators")
def add_operator() -> Response[Any]:
    shape = '{"username": "...", "email": "...", "role": "..."}'
    created = operator_console().add_operator(
        http.operator(), http.request("/operators"), lambda: http.body(shape)
    )
    return http.created(created)


@app.put("/operators/<username>/role")
def set_operator_role(username: str) -> dict[str, Any]:
    request = http.request("/operators/{username}/role")
    return operator_console().set_operator_role(
        http.operator(), request, username, lambda: http.body('{"role": "..."}')
    )


@app.delete("/operators/<username>")
def remove_operator(username: str) -> dict[str, Any]:
    return operator_console().remove_operator(
        http.operator(), http.request("/operators/{username}"), username
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return http.handle(event, context)
