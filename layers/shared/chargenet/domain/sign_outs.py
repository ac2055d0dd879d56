"""Signing out of the operator API: a token issued at or before its subject's sign-out is refused.

API Gateway's JWT authorizer checks a token's signature, issuer, audience and expiry only, so a
Cognito token stays good for its whole validity after its operator signs out. A sign-out records
the moment per subject (`sub`); the operator API's edge refuses every token of that subject whose
`iat` is not later. `iat` has one-second resolution: a token issued in the sign-out's own second
is refused too (the safe side).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from chargenet.domain.operators import NotSignedIn

# The longest a token issued before a sign-out stays valid: the operator clients' AccessTokenValidity
# and IdTokenValidity (template.yaml, 60 minutes; tests/unit/test_operator_sign_out.py checks).
LONGEST_TOKEN_VALIDITY_S = 60 * 60
# A sign-out is kept a day past that (the table's TTL): by then no token it refuses is valid anyway.
SIGN_OUT_KEPT_S = LONGEST_TOKEN_VALIDITY_S + 24 * 60 * 60

SIGNED_OUT = "signed out: sign in again"
_EPOCH_SECONDS = re.compile(r"[0-9]{1,12}")


def issued_at(claims: Mapping[str, object]) -> int:
    """The token's `iat` (epoch seconds; API Gateway hands claims over as strings). A token
    without one cannot be compared with a sign-out, so it is refused (NotSignedIn)."""
    value = str(claims.get("iat") or "")
    if not _EPOCH_SECONDS.fullmatch(value):
        raise NotSignedIn("the token has no issue time (iat): sign in again")
    return int(value)


def refuse_if_signed_out(issued: int, signed_out_at: int | None) -> None:
    """NotSignedIn when the token was issued at or before its subject's last sign-out."""
    if signed_out_at is not None and issued <= signed_out_at:
        raise NotSignedIn(SIGNED_OUT)
