"""Signing out of the operator API (chargenet.domain.sign_outs): the route that records a sign-out,
and the check every operator function's edge makes on each request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chargenet.domain.operators import Operator
from chargenet.domain.sign_outs import SIGN_OUT_KEPT_S, issued_at, refuse_if_signed_out
from chargenet.ports.sign_outs import SignOuts
from chargenet.services.operator_access import OperatorAccess, RequestInfo


@dataclass(frozen=True)
class SignOutCheck:
    sign_outs: SignOuts

    def refuse_if_signed_out(self, operator: Operator, claims: Mapping[str, object]) -> None:
        """NotSignedIn (401) for a token without `iat` or issued at or before the operator's
        last sign-out; one read per request."""
        issued = issued_at(claims)
        refuse_if_signed_out(issued, self.sign_outs.signed_out_at(operator.subject))


@dataclass(frozen=True)
class OperatorSignOut:
    access: OperatorAccess
    sign_outs: SignOuts
    clock: Callable[[], datetime]

    def sign_out(self, operator: Operator, request: RequestInfo) -> dict[str, Any]:
        """Every token of the operator issued until now is refused from now on (any signed-in
        operator may; audited)."""
        with self.access.audited(operator, request, {}):
            now = int(self.clock().timestamp())  # whole seconds, as `iat`
            self.sign_outs.record(operator.subject, now, now + SIGN_OUT_KEPT_S)
            return {"signed_out": True}
