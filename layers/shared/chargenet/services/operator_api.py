"""The operator API's use cases: who am I, the fleet, faults (list, acknowledge, resolve), the audit
trail, and the operator accounts (add, list, change role, remove; admins).

Permissions, the audit trail and listings' cursors: chargenet.services.operator_access.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from chargenet.domain.audit import MAX_NOTE_CHARS
from chargenet.domain.faults import Fault
from chargenet.domain.models import Charger, ConnectorStatus
from chargenet.domain.operators import Operator, Permission, Role
from chargenet.ports.audit import OperatorViews
from chargenet.ports.operators import OperatorAccount, OperatorDirectory, UsernameTaken
from chargenet.services.operator_access import (
    BadRequest,
    Conflict,
    NotFound,
    OperatorAccess,
    RequestInfo,
    checked_charger_id,
    require,
)

FAULT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SITE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Operator user names: ASCII letters, digits and . _ - (no @: an e-mail address is not a user name).
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", re.ASCII)
MAX_EMAIL_CHARS = 254


class FaultChanges(Protocol):
    """The fault tracker's operator changes (chargenet.services.fault_tracking.FaultTracker)."""

    def acknowledge(self, fault_id: str, by: str) -> tuple[Fault, Fault] | None: ...

    def resolve_by_operator(self, fault_id: str) -> tuple[Fault, Fault] | None: ...


def charger_record(charger: Charger, connectors: list[ConnectorStatus]) -> dict[str, Any]:
    """A charger with its connectors, as `chargenet charger list --json` prints it."""
    return {
        **charger.model_dump(mode="json"),
        "connectors": [c.model_dump(mode="json", exclude={"charger_id"}) for c in connectors],
    }


@dataclass(frozen=True)
class OperatorConsole:
    access: OperatorAccess
    views: OperatorViews
    faults_changes: FaultChanges
    clock: Callable[[], datetime]
    directory: OperatorDirectory

    # ------------------------------------------------------------------ reads
    def whoami(self, operator: Operator) -> dict[str, Any]:
        return {
            "subject": operator.subject,
            "username": operator.username,
            "email": operator.email,
            "roles": sorted(role.value for role in operator.roles),
            "permissions": sorted(p.value for p in operator.permissions),
        }

    def chargers(
        self, operator: Operator, site_id: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        require(operator, Permission.CHARGERS_READ)
        if site_id is not None and not SITE_ID.fullmatch(site_id):
            raise BadRequest("site is not a site id")
        scope = f"chargers?site={site_id or ''}"
        page = self.views.chargers(site_id, limit, self.access.start(cursor, scope))
        items = [charger_record(c, self.views.connectors(c.charger_id)) for c in page.items]
        return self.access.listing(items, page, scope)

    def charger(self, operator: Operator, charger_id: str) -> dict[str, Any]:
        require(operator, Permission.CHARGERS_READ)
        charger = self.views.charger(checked_charger_id(charger_id))
        if charger is None:
            raise NotFound(f"there is no charger {charger_id}")
        return charger_record(charger, self.views.connectors(charger_id))

    def faults(self, operator: Operator, open_only: bool, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.FAULTS_READ)
        scope = f"faults?open={open_only}"
        page = self.views.faults(open_only, limit, self.access.start(cursor, scope))
        items = [f.model_dump(mode="json") for f in sorted(page.items, key=lambda f: f.first_seen)]
        return self.access.listing(items, page, scope)

    def audit(self, operator: Operator, day: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.AUDIT_READ)
        day = day or self.clock().strftime("%Y-%m-%d")
        if not DAY.fullmatch(day):
            raise BadRequest("day must be YYYY-MM-DD")
        try:
            date.fromisoformat(day)
        except ValueError:
            raise BadRequest("day must be YYYY-MM-DD") from None
        scope = f"audit?day={day}"
        page = self.access.audit_log.of_day(day, limit, self.access.start(cursor, scope))
        items = [r.model_dump(mode="json", exclude={"day", "entry"}) for r in page.items]
        return self.access.listing(items, page, scope)

    # ------------------------------------------------------------------ changes (audited)
    def acknowledge_fault(
        self,
        operator: Operator,
        request: RequestInfo,
        fault_id: str,
        read_note: Callable[[], str | None] = lambda: None,
    ) -> dict[str, Any]:
        """`read_note` reads the request's note inside the audited part: a bad body is answered
        400 and recorded, unless the operator may not acknowledge at all (403, nothing recorded)."""
        require(operator, Permission.FAULTS_WRITE)
        with self.access.audited(operator, request, _fault_target(fault_id)) as record:
            _check_fault_id(fault_id)
            note = read_note()
            if note is not None and len(note) > MAX_NOTE_CHARS:
                raise BadRequest(f"note is limited to {MAX_NOTE_CHARS} characters")
            record["note"] = note
            changed = self._try(lambda: self.faults_changes.acknowledge(fault_id, operator.username))
            return _changed(fault_id, changed)
        raise AssertionError("unreachable")  # pragma: no cover

    def resolve_fault(self, operator: Operator, request: RequestInfo, fault_id: str) -> dict[str, Any]:
        require(operator, Permission.FAULTS_WRITE)
        with self.access.audited(operator, request, _fault_target(fault_id)):
            _check_fault_id(fault_id)
            return _changed(fault_id, self._try(lambda: self.faults_changes.resolve_by_operator(fault_id)))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ operator accounts (admins)
    def operators(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.OPERATORS_MANAGE)
        scope = "operators"
        page = self.directory.accounts(limit, self.access.start(cursor, scope))
        return self.access.listing([_account_record(a) for a in page.items], page, scope)

    def add_operator(
        self, operator: Operator, request: RequestInfo, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """201: the account, invited by e-mail; `temporary_password` only from the local stack."""
        require(operator, Permission.OPERATORS_MANAGE)
        targets: dict[str, str] = {"username": "(not read)"}
        with self.access.audited(operator, request, targets, ok_status=201):
            body = read_body()
            username = _username(body.get("username"))
            targets["username"] = username
            email = body.get("email")
            if not isinstance(email, str) or len(email) > MAX_EMAIL_CHARS or not EMAIL.fullmatch(email):
                raise BadRequest("email is not an e-mail address")
            role = _role(body.get("role"))
            targets["role"] = role.value
            try:
                password = self.directory.invite(username, email, role)
            except UsernameTaken:
                raise Conflict(f"there is an operator {username} already") from None
            answer: dict[str, Any] = {"username": username, "email": email, "roles": [role.value]}
            if password is not None:  # the local stack only: no e-mail there (never logged)
                answer["temporary_password"] = password
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def set_operator_role(
        self,
        operator: Operator,
        request: RequestInfo,
        username: str,
        read_body: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        require(operator, Permission.OPERATORS_MANAGE)
        targets = {"username": _username_target(username)}
        with self.access.audited(operator, request, targets):
            _username(username)
            role = _role(read_body().get("role"))
            targets["role"] = role.value
            if not self.directory.set_role(username, role):
                raise NotFound(f"there is no operator {username}")
            return {"username": username, "roles": [role.value]}
        raise AssertionError("unreachable")  # pragma: no cover

    def remove_operator(self, operator: Operator, request: RequestInfo, username: str) -> dict[str, Any]:
        require(operator, Permission.OPERATORS_MANAGE)
        with self.access.audited(operator, request, {"username": _username_target(username)}):
            _username(username)
            if username.lower() == operator.username.lower():
                raise Conflict("an admin cannot remove themselves")
            if not self.directory.remove(username):
                raise NotFound(f"there is no operator {username}")
            return {"username": username, "removed": True}
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _try(change: Callable[[], tuple[Fault, Fault] | None]) -> tuple[Fault, Fault] | None:
        try:
            return change()
        except RuntimeError:  # the fault kept changing under every attempt
            raise Conflict("the fault keeps changing: try again") from None


def _fault_target(fault_id: str) -> dict[str, str]:
    """What the audit trail names: the fault id, or that it was not one (never the raw text)."""
    return {"fault_id": fault_id if FAULT_ID.fullmatch(fault_id) else "(not a fault id)"}


def _check_fault_id(fault_id: str) -> None:
    if not FAULT_ID.fullmatch(fault_id):
        raise BadRequest("not a fault id")


def _changed(fault_id: str, changed: tuple[Fault, Fault] | None) -> dict[str, Any]:
    if changed is None:
        raise NotFound(f"there is no fault {fault_id}")
    before, after = changed
    return {**after.model_dump(mode="json"), "changed": after != before}


def _username(value: object) -> str:
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        raise BadRequest("username is 1 to 64 ASCII letters, digits, '.', '_' or '-'")
    return value


def _username_target(username: str) -> str:
    return username if USERNAME.fullmatch(username) else "(not a user name)"


def _role(value: object) -> Role:
    known = {role.value: role for role in Role}
    if not isinstance(value, str) or value not in known:
        raise BadRequest(f"role is one of {', '.join(sorted(known))}")
    return known[value]


def _account_record(account: OperatorAccount) -> dict[str, Any]:
    return {
        "username": account.username,
        "email": account.email,
        "roles": account.roles,
        "status": account.status,
        "enabled": account.enabled,
        "created_at": account.created_at.isoformat() if account.created_at else None,
    }
