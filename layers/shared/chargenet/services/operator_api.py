"""The operator API's use cases: who am I, the fleet (chargers, health, NEVI uptime), faults (list,
show, acknowledge, resolve, exclude from uptime) and the alerts sent about them, the audit trail,
and the operator accounts (add, list, change role, remove; admins).

Permissions, the audit trail and listings' cursors: chargenet.services.operator_access.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from chargenet.domain.alerts import AlertRecord, redelivery
from chargenet.domain.audit import MAX_NOTE_CHARS
from chargenet.domain.faults import ExclusionReason, Fault, exclude
from chargenet.domain.fleet_health import health_row
from chargenet.domain.models import Charger, ConnectorStatus
from chargenet.domain.operators import Operator, Permission, Role
from chargenet.domain.uptime import (
    ReportPeriod,
    StatusPoint,
    UptimeReport,
    charger_uptime,
    latest_episodes,
    report_period,
)
from chargenet.ports.audit import AvailabilityHistory, OperatorViews
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

    def operator_change(
        self, fault_id: str, change: Callable[[Fault], Fault]
    ) -> tuple[Fault, Fault] | None: ...


def charger_record(charger: Charger, connectors: list[ConnectorStatus]) -> dict[str, Any]:
    """A charger with its connectors, as `chargenet charger list --json` prints it."""
    return {
        **charger.model_dump(mode="json"),
        "connectors": [c.model_dump(mode="json", exclude={"charger_id"}) for c in connectors],
    }


def connector_timelines(
    history: AvailabilityHistory, views: OperatorViews, charger_id: str, period: ReportPeriod
) -> dict[tuple[str, int], list[StatusPoint]]:
    """Each of the charger's connectors' (0 included) statuses over the period: a Query between its keys."""
    return {
        (charger_id, c.connector_id): history.timeline(charger_id, c.connector_id, period.start, period.end)
        for c in views.connectors(charger_id)
    }


@dataclass(frozen=True)
class OperatorConsole:
    access: OperatorAccess
    views: OperatorViews
    faults_changes: FaultChanges
    clock: Callable[[], datetime]
    directory: OperatorDirectory
    history: AvailabilityHistory

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
        page = self.views.chargers_with_connectors(site_id, limit, self.access.start(cursor, scope))
        items = [charger_record(c, connectors) for c, connectors in page.items]
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

    def fault(self, operator: Operator, fault_id: str) -> dict[str, Any]:
        """The fault with the alerts decided about it, as `chargenet fault show` prints it."""
        require(operator, Permission.FAULTS_READ)
        _check_fault_id(fault_id)
        stored = self.views.fault(fault_id)
        if stored is None:
            raise NotFound(f"there is no fault {fault_id}")
        fault, alerts = stored
        return {**fault.model_dump(mode="json"), "alerts": [a.model_dump(mode="json") for a in alerts]}

    def alerts(self, operator: Operator, since: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        """The alerts operators were sent (published) since `since`, from one page of faults;
        each alert's subject and message describe its fault as stored now."""
        require(operator, Permission.FAULTS_READ)
        since_at = _since(since)
        scope = f"alerts?since={since_at.isoformat() if since_at else ''}"
        page = self.views.alerted_faults(limit, self.access.start(cursor, scope))
        sent = sorted(
            (
                (fault, record, alerts)
                for fault, alerts in page.items
                for record in alerts
                if record.published and (since_at is None or record.at >= since_at)
            ),
            key=lambda entry: entry[1].at,
        )
        items = [_sent_alert(fault, record, alerts) for fault, record, alerts in sent]
        return self.access.listing(items, page, scope)

    def fleet_health(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        """One page of chargers, each with its link, connectors and open faults."""
        require(operator, Permission.CHARGERS_READ)
        scope = "fleet/health"
        page = self.views.chargers_with_connectors(None, limit, self.access.start(cursor, scope))
        items = [
            health_row(c, connectors, self.views.faults_of_charger(c.charger_id))
            for c, connectors in page.items
        ]
        return self.access.listing(items, page, scope)

    def uptime(
        self, operator: Operator, month: str | None, twelve_months: bool, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """NEVI uptime rows of one page of chargers, for the month or the twelve months ending with it."""
        require(operator, Permission.REPORTS_READ)
        now = self.clock()
        try:
            period = report_period(month or "", twelve_months, now)
        except ValueError as error:
            raise BadRequest(f"month {error}") from None
        scope = f"reports/uptime?month={month}&twelve_months={twelve_months}"
        page = self.views.chargers(None, limit, self.access.start(cursor, scope))
        rows = [row for c in page.items for row in self._charger_uptime(c.charger_id, period, now)]
        return self.access.listing([row.model_dump(mode="json") for row in rows], page, scope)

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
            record["note"] = _note(read_note())
            changed = self._try(lambda: self.faults_changes.acknowledge(fault_id, operator.username))
            return _changed(fault_id, changed)
        raise AssertionError("unreachable")  # pragma: no cover

    def resolve_fault(self, operator: Operator, request: RequestInfo, fault_id: str) -> dict[str, Any]:
        require(operator, Permission.FAULTS_WRITE)
        with self.access.audited(operator, request, _fault_target(fault_id)):
            _check_fault_id(fault_id)
            return _changed(fault_id, self._try(lambda: self.faults_changes.resolve_by_operator(fault_id)))
        raise AssertionError("unreachable")  # pragma: no cover

    def exclude_fault(
        self, operator: Operator, request: RequestInfo, fault_id: str, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Excludes the fault's current episode from NEVI uptime with a reason (23 CFR 680.116), or
        withdraws the exclusion (reason null); the operator's note goes to the audit trail."""
        require(operator, Permission.FAULTS_WRITE)
        targets = _fault_target(fault_id)
        with self.access.audited(operator, request, targets) as record:
            _check_fault_id(fault_id)
            body = read_body()
            reason = _exclusion_reason(body.get("reason"))
            targets["reason"] = reason.value if reason else "(cleared)"
            record["note"] = _note(body.get("note"))
            changed = self._try(lambda: self.faults_changes.operator_change(fault_id, _excluded(reason)))
            return _changed(fault_id, changed)
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
    def _charger_uptime(self, charger_id: str, period: ReportPeriod, now: datetime) -> list[UptimeReport]:
        """Bounded reads of one charger: each connector's timeline over the period, its archived
        episodes and its faults as they stand now (Queries on its key)."""
        timelines = connector_timelines(self.history, self.views, charger_id, period)
        episodes = latest_episodes(
            self.history.episodes(charger_id), self.views.faults_of_charger(charger_id)
        )
        return charger_uptime(period, timelines, episodes, as_of=now)

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


def _note(note: object) -> str | None:
    if note is not None and not isinstance(note, str):
        raise BadRequest("note is text")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise BadRequest(f"note is limited to {MAX_NOTE_CHARS} characters")
    return note


def _exclusion_reason(value: object) -> ExclusionReason | None:
    known = {reason.value: reason for reason in ExclusionReason}
    if value is not None and (not isinstance(value, str) or value not in known):
        raise BadRequest(f"reason is one of {', '.join(sorted(known))}, or null to clear")
    return None if value is None else known[value]


def _excluded(reason: ExclusionReason | None) -> Callable[[Fault], Fault]:
    return lambda fault: exclude(fault, reason)


def _since(value: str | None) -> datetime | None:
    """An ISO date (midnight UTC) or date and time (UTC if no offset is given)."""
    if not value:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest("since is an ISO date or date and time, e.g. 2026-11-26T09:00:00Z") from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def _sent_alert(fault: Fault, record: AlertRecord, alerts: list[AlertRecord]) -> dict[str, Any]:
    """An alert as `chargenet alert list --json` prints it: what the e-mail said, as near as the
    stored record allows (its text is rebuilt from the fault as it stands now)."""
    sent = redelivery(fault, record, alerts)
    attributes = {"severity": sent.severity.value, "kind": sent.kind.value, "fault_id": sent.fault_id}
    return {
        "received_at": record.at.isoformat(),
        "subject": sent.subject,
        "message": sent.message,
        "attributes": attributes,
        "kind": sent.kind.value,
        "severity": sent.severity.value,
        "episode": record.episode,
    }


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
