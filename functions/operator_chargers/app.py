"""Operator chargers API (API Gateway HTTP API v2, /ops/v1, JWT authorizer OperatorJwt): provision a
charger from its CSR, revoke it, rotate its certificate, its certificates, a site's time zone,
a batch's claim certificate (issue from its CSR, revoke), the factory allow-list of serial numbers.

Thin: the verified claims become the operator, the query and body are read
(chargenet.handlers.operator_http), the charger administration
(chargenet.services.operator_chargers) decides, checks permissions and audits.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.operator_api import sign_out_check
from chargenet.composition.operator_chargers import charger_administration
from chargenet.handlers.operator_http import OperatorHttp

logger = Logger()
http = OperatorHttp(sign_out_check)
app = http.app

PROVISION = '{"charger_id", "site", "csr", "time_zone"?, "rated_power_w"?}'
ROTATION_STEP = '{"csr"} | {"installed": certificate_id} | {"abandoned": certificate_id}'


@app.post("/chargers")
def provision() -> Response[Any]:
    created = charger_administration().provision(
        http.operator(), http.request("/chargers"), lambda: http.body(PROVISION)
    )
    return http.created(created)


@app.get("/chargers/<charger_id>/certificates")
def certificates(charger_id: str) -> dict[str, Any]:
    return charger_administration().certificates(http.operator(), charger_id)


@app.post("/chargers/<charger_id>/revoke")
def revoke(charger_id: str) -> dict[str, Any]:
    return charger_administration().revoke(
        http.operator(),
        http.request("/chargers/{charger_id}/revoke"),
        charger_id,
        lambda: http.body('{"reason": "..."}', optional=True),
    )


@app.post("/chargers/<charger_id>/rotate")
def rotate(charger_id: str) -> dict[str, Any]:
    return charger_administration().rotate(
        http.operator(),
        http.request("/chargers/{charger_id}/rotate"),
        charger_id,
        lambda: http.body(ROTATION_STEP),
    )


@app.get("/sites/<site_id>")
def site(site_id: str) -> dict[str, Any]:
    return charger_administration().site(http.operator(), site_id)


@app.put("/sites/<site_id>/time-zone")
def set_site_time_zone(site_id: str) -> dict[str, Any]:
    return charger_administration().set_site_time_zone(
        http.operator(),
        http.request("/sites/{site_id}/time-zone"),
        site_id,
        lambda: http.body('{"time_zone": "..."}'),
    )


@app.post("/provisioning/claim-certificates")
def issue_claim_certificate() -> Response[Any]:
    issued = charger_administration().issue_claim_certificate(
        http.operator(), http.request("/provisioning/claim-certificates"), lambda: http.body('{"csr"}')
    )
    return http.created(issued)


@app.post("/provisioning/claim-certificates/<certificate_id>/revoke")
def revoke_claim_certificate(certificate_id: str) -> dict[str, Any]:
    return charger_administration().revoke_claim_certificate(
        http.operator(),
        http.request("/provisioning/claim-certificates/{certificate_id}/revoke"),
        certificate_id,
    )


@app.post("/provisioning/serials")
def allow_serials() -> dict[str, Any]:
    shape = '{"serials": [...], "claim_certificate_id": "...", "site"?}'
    return charger_administration().allow_serials(
        http.operator(), http.request("/provisioning/serials"), lambda: http.body(shape)
    )


@app.get("/provisioning/serials")
def serials() -> dict[str, Any]:
    return charger_administration().serials(http.operator(), http.limit(), http.cursor())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return http.handle(event, context)
