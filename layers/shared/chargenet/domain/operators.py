"""Operators, their roles and what each role may do: the one table of permissions (docs/operators.md).

An operator signs in to the Cognito user pool; the groups they belong to are their roles, and
their permissions are the union of their roles' permissions. A group that is not a role gives
nothing. The claims arrive as API Gateway's JWT authorizer passes them: a dict of strings, where
`cognito:groups` is one string like "[admin technician]" (or, from some fronts, a list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    ADMIN = "admin"
    TECHNICIAN = "technician"
    FINANCE = "finance"
    VIEWER = "viewer"


class Permission(StrEnum):
    CHARGERS_READ = "chargers.read"
    CHARGERS_WRITE = "chargers.write"
    COMMANDS_SEND = "commands.send"
    DIAGNOSTICS = "diagnostics"
    FIRMWARE_READ = "firmware.read"
    FIRMWARE_WRITE = "firmware.write"  # register and roll out releases (admins)
    FAULTS_READ = "faults.read"
    FAULTS_WRITE = "faults.write"
    SESSIONS_READ = "sessions.read"
    SESSIONS_WRITE = "sessions.write"  # settle a session under review
    CDRS_READ = "cdrs.read"
    CDRS_WRITE = "cdrs.write"  # credit a CDR
    PAYMENTS_READ = "payments.read"
    PAYMENTS_WRITE = "payments.write"  # settle a payment left open
    PAYMENTS_REFUND = "payments.refund"
    RECONCILE = "reconcile"
    SUBSCRIBERS_READ = "subscribers.read"
    SUBSCRIBERS_WRITE = "subscribers.write"
    TAGS_READ = "tags.read"
    TAGS_WRITE = "tags.write"
    PLANS_WRITE = "plans.write"
    TARIFFS_READ = "tariffs.read"
    TARIFFS_WRITE = "tariffs.write"
    REPORTS_READ = "reports.read"
    OPERATORS_MANAGE = "operators.manage"
    AUDIT_READ = "audit.read"


P = Permission
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.TECHNICIAN: frozenset(
        {
            P.CHARGERS_READ,
            P.CHARGERS_WRITE,
            P.COMMANDS_SEND,
            P.DIAGNOSTICS,
            P.FIRMWARE_READ,
            P.FAULTS_READ,
            P.FAULTS_WRITE,
        }
    ),
    Role.FINANCE: frozenset(
        {
            P.SESSIONS_READ,
            P.SESSIONS_WRITE,
            P.CDRS_READ,
            P.CDRS_WRITE,
            P.PAYMENTS_READ,
            P.PAYMENTS_WRITE,
            P.PAYMENTS_REFUND,
            P.RECONCILE,
            P.SUBSCRIBERS_READ,
            P.SUBSCRIBERS_WRITE,
            P.TAGS_READ,
            P.TAGS_WRITE,
            P.PLANS_WRITE,
            P.TARIFFS_READ,
            P.TARIFFS_WRITE,
            P.REPORTS_READ,
        }
    ),
    # Every read but the audit trail's.
    Role.VIEWER: frozenset(p for p in Permission if p.value.endswith(".read") and p is not P.AUDIT_READ),
}


def roles_of(groups: Iterable[str]) -> frozenset[Role]:
    """The groups that are roles; any other group is ignored."""
    known = {role.value: role for role in Role}
    return frozenset(known[g] for g in groups if g in known)


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    """The union of the roles' permissions."""
    return frozenset(p for role in roles for p in ROLE_PERMISSIONS[role])


def parse_groups(value: object) -> list[str]:
    """`cognito:groups` as API Gateway passes it ("[admin technician]", "admin", "") or as a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(g) for g in value if str(g)]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [g for g in text.replace(",", " ").split() if g]


class Operator(BaseModel):
    """Who is calling, from the verified token's claims."""

    model_config = ConfigDict(frozen=True)

    subject: str
    username: str
    email: str | None = None
    roles: frozenset[Role] = frozenset()

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.roles)

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions


class NotSignedIn(ValueError):
    """No verified claims, or claims without a subject."""


def operator_from_claims(claims: Mapping[str, object] | None) -> Operator:
    """The operator of an access token (`username`) or an id token (`cognito:username`)."""
    if not claims or not str(claims.get("sub") or ""):
        raise NotSignedIn("no signed-in operator")
    subject = str(claims["sub"])
    username = str(claims.get("username") or claims.get("cognito:username") or subject)
    email = claims.get("email")
    return Operator(
        subject=subject,
        username=username,
        email=str(email) if email else None,
        roles=roles_of(parse_groups(claims.get("cognito:groups"))),
    )
