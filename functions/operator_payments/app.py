"""Operator API, payments area (/ops/v1, JWT authorizer OperatorJwt): payments (list, show,
settle), refunds, reconciliation, pay links, subscribers (add, list, show, invoicing), plans.

Thin: the verified claims become the operator, the query and body are read
(chargenet.handlers.operator_http), chargenet.services.operator_payments decides, checks
permissions and audits.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.operator_api import sign_out_check
from chargenet.composition.operator_payments import operator_payments, public_base_url
from chargenet.handlers.operator_http import OperatorHttp

logger = Logger()
http = OperatorHttp(sign_out_check)
app = http.app


def _base_url() -> str:
    """The drivers' pages: PublicBaseUrl, else this API's own domain as API Gateway names it."""
    return public_base_url() or f"https://{app.current_event.request_context.domain_name}"


@app.get("/payments")
def payments() -> dict[str, Any]:
    return operator_payments().payment_list(http.operator(), http.query("state"), http.limit(), http.cursor())


@app.get("/payments/<payment_id>")
def payment(payment_id: str) -> dict[str, Any]:
    return operator_payments().payment(http.operator(), payment_id)


@app.post("/settlements")
def settle() -> dict[str, Any]:
    shape = '{"session_id": "...", "cancel": false}'
    return operator_payments().settle(http.operator(), http.request("/settlements"), lambda: http.body(shape))


@app.post("/refunds")
def refund() -> dict[str, Any]:
    shape = '{"session_id": "...", "amount": "12.50", "request_id": "..."}'
    return operator_payments().refund(http.operator(), http.request("/refunds"), lambda: http.body(shape))


@app.get("/reconcile")
def reconcile() -> dict[str, Any]:
    return operator_payments().reconcile(http.operator(), http.query("since"), http.limit(), http.cursor())


@app.get("/pay-links/<charger_id>/<connector_id>")
def pay_link(charger_id: str, connector_id: str) -> dict[str, Any]:
    return operator_payments().pay_link(http.operator(), charger_id, connector_id, _base_url())


@app.get("/subscribers")
def subscribers() -> dict[str, Any]:
    return operator_payments().subscriber_list(http.operator(), http.limit(), http.cursor())


@app.get("/subscribers/<tag>")
def subscriber(tag: str) -> dict[str, Any]:
    return operator_payments().subscriber(http.operator(), tag)


@app.post("/subscribers")
def add_subscriber() -> Response[Any]:
    shape = '{"email": "...", "tag": "...", "plan": "..."}'
    added = operator_payments().add_subscriber(
        http.operator(), http.request("/subscribers"), lambda: http.body(shape), _base_url()
    )
    return http.created(added)


@app.post("/invoice-runs")
def invoice() -> dict[str, Any]:
    shape = '{"period": "YYYY-MM", "grace_days": 3}'
    return operator_payments().invoice(
        http.operator(), http.request("/invoice-runs"), lambda: http.body(shape), http.limit(), http.cursor()
    )


@app.get("/plans")
def plans() -> dict[str, Any]:
    return operator_payments().plan_list(http.operator(), http.limit(), http.cursor())


@app.put("/plans/<plan_id>")
def set_plan(plan_id: str) -> dict[str, Any]:
    shape = '{"monthly_fee": "9.00", "currency": "EUR", "tariff": "..."}'
    return operator_payments().set_plan(
        http.operator(), http.request("/plans/{plan_id}"), plan_id, lambda: http.body(shape)
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return http.handle(event, context)
