"""What every operator API use case shares: the errors it answers with, the permission check, the
audit trail of state changes, and one-page listings with signed cursors.

Every use case first checks the operator's permission (chargenet.domain.operators): a refusal
(Forbidden, 403) changes nothing and is not audited. A state-changing use case that was allowed
is recorded in the audit trail once, with how it ended (its HTTP status), whether it succeeded or
not. Listings read one page and return a signed cursor to the next (chargenet.domain.cursors).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chargenet.domain.audit import audit_record
from chargenet.domain.charger_ids import is_charger_id
from chargenet.domain.cursors import BadCursor, read_cursor, sign_cursor
from chargenet.domain.operators import Operator, Permission
from chargenet.ports.audit import AuditLog, Key, Page

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Listings that read several items per row (a charger's connectors, history, faults): a page
# stays well inside the function's timeout however busy the tables are.
PER_CHARGER_LIMIT = 10
PER_CHARGER_MAX_LIMIT = 25


class OperatorError(Exception):
    status = 500
    code = "error"


class BadRequest(OperatorError):
    status, code = 400, "bad_request"


class InvalidCursor(OperatorError):
    status, code = 400, "bad_cursor"


class Forbidden(OperatorError):
    status, code = 403, "forbidden"


class NotFound(OperatorError):
    status, code = 404, "not_found"


class Conflict(OperatorError):
    status, code = 409, "conflict"


class Unavailable(OperatorError):
    """A service the use case needs (Stripe, IoT) did not answer: try again later."""

    status, code = 503, "unavailable"


@dataclass(frozen=True)
class RequestInfo:
    """The request being served, as the audit trail records it."""

    method: str
    route: str  # the route's pattern
    request_id: str
    at: datetime


def parse_limit(value: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if value is None or value == "":
        return default
    if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= maximum:
        raise BadRequest(f"limit must be a whole number from 1 to {maximum}")
    return int(value)


def require(operator: Operator, permission: Permission) -> None:
    if not operator.may(permission):
        raise Forbidden(f"this needs the {permission.value} permission")


def checked_charger_id(charger_id: str) -> str:
    if not is_charger_id(charger_id):
        raise BadRequest(f"{charger_id[:80]!a} is not a charger id")
    return charger_id


def charger_target(charger_id: str) -> str:
    """What the audit trail names: the charger id, or that it was not one (never the raw text)."""
    return charger_id if is_charger_id(charger_id) else "(not a charger id)"


@dataclass(frozen=True)
class OperatorAccess:
    """The audit trail and the cursor key, shared by every area's use cases."""

    audit_log: AuditLog
    cursor_key: Callable[[], bytes]  # the OperatorCursorSecret, fetched and cached by the adapter

    @contextmanager
    def audited(
        self, operator: Operator, request: RequestInfo, targets: dict[str, str], ok_status: int = 200
    ) -> Iterator[dict[str, str | None]]:
        """Records the request once it ends, with its status (an error's, 500 for the unexpected).
        `targets` is read when it ends: a use case may name what it learns from the body. The
        yielded dict takes an operator's free-text `note` (never a secret, card data or a tag id)."""
        status = ok_status
        extra: dict[str, str | None] = {"note": None}
        try:
            yield extra
        except OperatorError as error:
            status = error.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            self.audit_log.record(
                audit_record(
                    operator,
                    method=request.method,
                    route=request.route,
                    targets=dict(targets),
                    status=status,
                    request_id=request.request_id,
                    at=request.at,
                    note=extra["note"],
                )
            )

    def start(self, cursor: str | None, scope: str) -> Key | None:
        """Where a listing resumes; `scope` names the listing and its filters, so a cursor of
        another listing (or of other filters) is refused."""
        if not cursor:
            return None
        try:
            return read_cursor(cursor, scope, self.cursor_key())
        except BadCursor as error:
            raise InvalidCursor(str(error)) from None

    def listing(self, items: list[Any], page: Page[Any], scope: str) -> dict[str, Any]:
        next_cursor = sign_cursor(page.next_key, scope, self.cursor_key()) if page.next_key else None
        return {"items": items, "next": next_cursor}
