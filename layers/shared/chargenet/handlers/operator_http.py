"""The operator API's HTTP edge, shared by every operator function (API Gateway HTTP API payload
2.0 under /ops/v1, behind the OperatorJwt authorizer).

Each operator function builds one `OperatorHttp` and declares its routes on `http.app` (Powertools'
resolver); a route reads the signed-in operator, the query and the body here and calls its
service. JSON everywhere; errors are {"error": code, "message": text}: the services' errors with
their status, 401 without verified claims or for a signed-out token (chargenet.domain.sign_outs),
404 for a route the function does not serve.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.domain.operators import NotSignedIn, Operator, operator_from_claims
from chargenet.services.operator_access import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BadRequest,
    OperatorError,
    RequestInfo,
    parse_limit,
)
from chargenet.services.operator_sign_out import SignOutCheck

PREFIX = "/ops/v1"
MAX_BODY_CHARS = 4096


def json_error(status: int, error: str, message: str) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, {"error": error, "message": message})


class OperatorHttp:
    def __init__(
        self, sign_out_check: Callable[[], SignOutCheck], max_body_chars: int = MAX_BODY_CHARS
    ) -> None:
        """`sign_out_check`: the composition's builder, called on the first request (never at import)."""
        self.app = APIGatewayHttpResolver(strip_prefixes=[PREFIX])
        self.sign_out_check = sign_out_check
        self.max_body_chars = max_body_chars
        self.app.exception_handler(OperatorError)(self._operator_error)
        self.app.exception_handler(NotSignedIn)(self._not_signed_in)
        self.app.not_found(self._not_found)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return self.app.resolve(event, context)

    # ------------------------------------------------------------------ the request
    def operator(self) -> Operator:
        """The signed-in operator, from the claims API Gateway verified, unless the token was
        signed out (NotSignedIn: 401)."""
        context = self.app.current_event.raw_event.get("requestContext") or {}
        found = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims")
        claims = found if isinstance(found, dict) else {}
        operator = operator_from_claims(claims)
        self.sign_out_check().refuse_if_signed_out(operator, claims)
        return operator

    def request(self, route: str) -> RequestInfo:
        """The request as the audit trail names it; `route` is the pattern under /ops/v1."""
        context = self.app.current_event.request_context
        epoch_ms = context.time_epoch or 0
        at = datetime.fromtimestamp(epoch_ms / 1000, UTC) if epoch_ms else datetime.now(UTC)
        return RequestInfo(context.http.method, f"{PREFIX}{route}", context.request_id, at)

    def query(self, name: str) -> str | None:
        return self.app.current_event.get_query_string_value(name)

    def flag(self, name: str) -> bool | None:
        """A true/false query parameter; absent: None."""
        value = self.query(name)
        if value not in (None, "true", "false"):
            raise BadRequest(f"{name} is true or false")
        return None if value is None else value == "true"

    def limit(self, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
        return parse_limit(self.query("limit"), default, maximum)

    def cursor(self) -> str | None:
        return self.query("next")

    def body(self, shape: str, optional: bool = False) -> dict[str, Any]:
        """The JSON object body (at most `max_body_chars`); `shape` says what it should be.
        `optional`: no body reads as {}."""
        body = self.app.current_event.decoded_body or ""
        if optional and not body.strip():
            return {}
        if len(body) > self.max_body_chars:
            raise BadRequest(f"the body is limited to {self.max_body_chars} characters")
        try:
            data = json.loads(body)
        except ValueError:
            raise BadRequest(f"the body is JSON: {shape}") from None
        if not isinstance(data, dict):
            raise BadRequest(f"the body is JSON: {shape}")
        return data

    @staticmethod
    def created(answer: dict[str, Any]) -> Response[Any]:
        return Response(201, content_types.APPLICATION_JSON, answer)

    # ------------------------------------------------------------------ errors
    @staticmethod
    def _operator_error(error: OperatorError) -> Response[Any]:
        return json_error(error.status, error.code, str(error))

    @staticmethod
    def _not_signed_in(error: NotSignedIn) -> Response[Any]:
        return json_error(401, "unauthorized", str(error))

    def _not_found(self, _: Exception) -> Response[Any]:
        try:
            self.operator()
        except NotSignedIn:
            return json_error(401, "unauthorized", "no signed-in operator")
        return json_error(404, "not_found", "no such route")
