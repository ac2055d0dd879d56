"""The operator API's sessions, CDRs, RFID tags and tariffs: list and show sessions, settle one under
review, list orphan stops; list, show, credit and export CDRs; add and list tags; store, assign and
list tariffs.

Permissions, the audit trail and listings' cursors: chargenet.services.operator_access. Tag ids
identify people: they arrive only in a request body and leave masked, in answers and in the audit
trail alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from chargenet.domain.audit import MAX_NOTE_CHARS
from chargenet.domain.billing import BillingRecord, credit_record
from chargenet.domain.models import SessionRecord, TagStatus, mask_tag
from chargenet.domain.operators import Operator, Permission
from chargenet.domain.sessions import EventKind, SessionEvent, SessionState
from chargenet.domain.tariffs import TariffError, describe, load_tariff, price_display
from chargenet.ports.operator_sessions import (
    CdrPages,
    ChargerLookup,
    OrphanStop,
    SessionPages,
    StoredTariff,
    TagEntry,
    TagPages,
    TariffAssignment,
    TariffPages,
)
from chargenet.services.ocpp.session_log import refresh
from chargenet.services.operator_access import (
    BadRequest,
    Conflict,
    NotFound,
    OperatorAccess,
    RequestInfo,
    charger_target,
    checked_charger_id,
    require,
)

# Session ids are transaction ids; a CDR's id is its session's, a credit's that plus "-CREDIT".
RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A session's states, and "billed" (BillingFunction's mark once its CDR is written).
SESSION_STATES = frozenset({*(s.value for s in SessionState), "billed"})
# A credit's reason becomes the credit CDR's OCPI remark: string(255).
MAX_REASON_CHARS = 255
MAX_TARIFF_CHARS = 32_768
ANY = "*"  # a tariff assignment for any charger (the network default) or any connector
# The sessions CSV export's columns, in order (`chargenet cdr export --format csv`).
EXPORT_COLUMNS = (
    "session",
    "charger",
    "port",
    "start",
    "end",
    "energy_kwh",
    "peak_kw",
    "cost_incl_vat",
    "currency",
)

B = TypeVar("B", bound="_Body")


class _Body(BaseModel):
    """A request body: exactly these fields, of exactly these JSON types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SettleBody(_Body):
    """Bill up to a chosen energy register reading, or void the session: one of the two."""

    use_reading_wh: int | None = Field(None, ge=0, le=10**12)
    void: bool = False

    @model_validator(mode="after")
    def _one_choice(self) -> SettleBody:
        if (self.use_reading_wh is None) == (not self.void):
            raise ValueError("give use_reading_wh (a register reading in Wh) or void: true, not both")
        return self


class CreditBody(_Body):
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class TagBody(_Body):
    id_tag: str = Field(min_length=1, max_length=20)  # an OCPP 1.6 idTag
    status: Literal["Accepted", "Blocked", "Expired", "Invalid"] = "Accepted"
    max_concurrent_sessions: int = Field(1, ge=1, le=1000)
    expires_at: AwareDatetime | None = Field(None, strict=False)  # ISO 8601 with an offset


class TariffBody(_Body):
    tariff: str = Field(max_length=MAX_TARIFF_CHARS)  # the OCPI tariff JSON, as text: no float on the way


class AssignmentBody(_Body):
    tariff_id: str = Field(min_length=1, max_length=36)
    charger_id: str | None = None
    connector_id: int | None = Field(None, ge=1, le=100)
    default: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> AssignmentBody:
        if (self.charger_id is None) == (not self.default):
            raise ValueError("give charger_id (and connector_id) or default: true, not both")
        if self.connector_id is not None and self.charger_id is None:
            raise ValueError("connector_id needs charger_id")
        return self


SETTLE_SHAPE = '{"use_reading_wh": WH} or {"void": true}'
CREDIT_SHAPE = '{"reason": "..."}'
TAG_SHAPE = '{"id_tag": "...", "status": "Accepted", "max_concurrent_sessions": 1, "expires_at": null}'
TARIFF_SHAPE = '{"tariff": "<OCPI tariff JSON>"}'
ASSIGNMENT_SHAPE = (
    '{"tariff_id": "...", "charger_id": "...", "connector_id": 2} or {"tariff_id": "...", "default": true}'
)


def parse_body(model: type[B], data: dict[str, Any], shape: str) -> B:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadRequest(
            f"the body is JSON: {shape} ({where + ': ' if where else ''}{first['msg']})"
        ) from None


def session_view(session: SessionRecord) -> dict[str, Any]:
    """A session as operators see it: the tag masked, the tariff snapshot left out."""
    view = session.model_dump(mode="json", exclude={"id_tag", "tariff_json"})
    view["id_tag"] = session.masked_tag
    return view


def cdr_view(record: BillingRecord) -> dict[str, Any]:
    """A CDR's summary fields (money as decimal strings) and its OCPI 2.2.1 object."""
    return record.model_dump(mode="json", exclude={"payment_reference"})


def export_row(record: BillingRecord, peak_power_w: int) -> dict[str, str]:
    """A sessions CSV row (EXPORT_COLUMNS): energy in kWh to the Wh, peak power in kW to 100 W."""
    return {
        "session": record.session_id,
        "charger": record.charger_id,
        "port": str(record.connector_id),
        "start": record.start_date_time.isoformat(),
        "end": record.end_date_time.isoformat(),
        "energy_kwh": f"{Decimal(record.energy_wh) / 1000:.3f}",
        "peak_kw": f"{Decimal(peak_power_w) / 1000:.1f}",
        "cost_incl_vat": str(record.total_incl_vat),
        "currency": record.currency,
    }


def orphan_view(orphan: OrphanStop) -> dict[str, Any]:
    return {
        "charger_id": orphan.charger_id,
        "transaction_id": orphan.transaction_id,
        "received_at": orphan.received_at.isoformat() if orphan.received_at else None,
        "payload": orphan.payload,
    }


def tag_view(tag: TagEntry) -> dict[str, Any]:
    return {
        "id_tag": mask_tag(tag.id_tag),
        "status": tag.status,
        "max_concurrent_sessions": tag.max_concurrent_sessions,
        "expires_at": tag.expires_at.isoformat() if tag.expires_at else None,
        "active_sessions": tag.active_sessions,
    }


def assignment_scope(charger_id: str, connector_id: int | str) -> str:
    """How operators read an assignment: "CP-1 / 2", "CP-1 / *", "* / *" (the network default)."""
    return f"{charger_id} / {connector_id}"


@dataclass(frozen=True)
class OperatorSessions:
    access: OperatorAccess
    sessions: SessionPages
    cdrs: CdrPages
    tags: TagPages
    tariffs: TariffPages
    chargers: ChargerLookup
    clock: Callable[[], datetime]
    time_zone: str  # the deployment's: the wall clock of the prices the tariff listing shows

    # ------------------------------------------------------------------ sessions
    def list_sessions(
        self, operator: Operator, state: str | None, charger_id: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        require(operator, Permission.SESSIONS_READ)
        if state is not None and state not in SESSION_STATES:
            raise BadRequest(f"state is one of {', '.join(sorted(SESSION_STATES))}")
        if charger_id is not None:
            checked_charger_id(charger_id)
        scope = f"sessions?state={state or ''}&charger={charger_id or ''}"
        page = self.sessions.page(state, charger_id, limit, self.access.start(cursor, scope))
        return self.access.listing([session_view(s) for s in page.items], page, scope)

    def show_session(self, operator: Operator, session_id: str) -> dict[str, Any]:
        require(operator, Permission.SESSIONS_READ)
        return session_view(self._session(session_id))

    def settle_session(
        self,
        operator: Operator,
        request: RequestInfo,
        session_id: str,
        read_body: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Bill a session under review up to a chosen reading, or void it (one SETTLE event)."""
        require(operator, Permission.SESSIONS_WRITE)
        targets = {"session_id": _record_target(session_id, "session")}
        with self.access.audited(operator, request, targets):
            choice = parse_body(SettleBody, read_body(), SETTLE_SHAPE)
            targets["choice"] = "void" if choice.void else f"reading {choice.use_reading_wh} Wh"
            session = self._session(session_id)
            if session.state != SessionState.NEEDS_REVIEW.value:
                raise Conflict(f"session {session_id} is {session.state}, not needs_review")
            settle = SessionEvent(
                kind=EventKind.SETTLE,
                at=self.clock(),
                settle_reading_wh=choice.use_reading_wh,
                void=choice.void,
            )
            self.sessions.append(session_id, settle)
            facts = refresh(self.sessions, session)
            return {"session_id": session_id, "state": facts.state.value, "energy_wh": int(facts.energy_wh)}
        raise AssertionError("unreachable")  # pragma: no cover

    def orphan_stops(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.SESSIONS_READ)
        scope = "sessions/orphans"
        page = self.sessions.orphan_page(limit, self.access.start(cursor, scope))
        return self.access.listing([orphan_view(o) for o in page.items], page, scope)

    # ------------------------------------------------------------------ CDRs
    def list_cdrs(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.CDRS_READ)
        scope = "cdrs"
        page = self.cdrs.page(limit, self.access.start(cursor, scope))
        return self.access.listing([cdr_view(r) for r in page.items], page, scope)

    def show_cdr(self, operator: Operator, cdr_id: str) -> dict[str, Any]:
        require(operator, Permission.CDRS_READ)
        return cdr_view(self._cdr(cdr_id))

    def export_cdrs(
        self, operator: Operator, export_format: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """One page of the export: OCPI CDR objects, or sessions CSV rows (EXPORT_COLUMNS)."""
        require(operator, Permission.CDRS_READ)
        export_format = export_format or "ocpi"
        if export_format not in ("ocpi", "csv"):
            raise BadRequest("format is ocpi or csv")
        scope = f"cdrs/export?format={export_format}"
        page = self.cdrs.page(limit, self.access.start(cursor, scope))
        if export_format == "ocpi":
            return self.access.listing([r.ocpi for r in page.items], page, scope)
        peaks = self.sessions.peaks([r.session_id for r in page.items]) if page.items else {}
        rows = [export_row(r, peaks.get(r.session_id, 0)) for r in page.items]
        return self.access.listing(rows, page, scope)

    def credit_cdr(
        self, operator: Operator, request: RequestInfo, cdr_id: str, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """201: the credit CDR that cancels `cdr_id` (which never changes); the reason is the note."""
        require(operator, Permission.CDRS_WRITE)
        targets = {"cdr_id": _record_target(cdr_id, "CDR")}
        with self.access.audited(operator, request, targets, ok_status=201) as record:
            reason = parse_body(CreditBody, read_body(), CREDIT_SHAPE).reason
            record["note"] = reason[:MAX_NOTE_CHARS]
            original = self._cdr(cdr_id)
            if original.credit_reference_id is not None:
                raise Conflict(f"{cdr_id} is itself a credit record")
            credit = credit_record(original, reason, self.clock())
            targets["credit_cdr_id"] = credit.cdr_id
            if not self.cdrs.create(credit):
                raise Conflict(f"CDR {cdr_id} already has a credit record ({credit.cdr_id})")
            return cdr_view(credit)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ tags
    def list_tags(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.TAGS_READ)
        scope = "tags"
        page = self.tags.page(limit, self.access.start(cursor, scope))
        return self.access.listing([tag_view(t) for t in page.items], page, scope)

    def put_tag(
        self, operator: Operator, request: RequestInfo, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Add or update a tag; its id comes in the body and is masked everywhere after."""
        require(operator, Permission.TAGS_WRITE)
        targets = {"id_tag": "(not read)"}
        with self.access.audited(operator, request, targets):
            tag = parse_body(TagBody, read_body(), TAG_SHAPE)
            targets["id_tag"] = mask_tag(tag.id_tag)
            self.tags.put(tag.id_tag, TagStatus(tag.status), tag.max_concurrent_sessions, tag.expires_at)
            return {
                "id_tag": targets["id_tag"],
                "status": tag.status,
                "max_concurrent_sessions": tag.max_concurrent_sessions,
                "expires_at": tag.expires_at.isoformat() if tag.expires_at else None,
            }
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ tariffs
    def list_tariffs(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        """Stored tariffs with the prices drivers see now."""
        require(operator, Permission.TARIFFS_READ)
        scope = "tariffs"
        page = self.tariffs.tariff_page(limit, self.access.start(cursor, scope))
        return self.access.listing([self._tariff_view(t) for t in page.items], page, scope)

    def list_assignments(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.TARIFFS_READ)
        scope = "tariffs/assignments"
        page = self.tariffs.assignment_page(limit, self.access.start(cursor, scope))
        return self.access.listing([_assignment_view(a) for a in page.items], page, scope)

    def store_tariff(
        self, operator: Operator, request: RequestInfo, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Store (or replace) a tariff, validated by the tariff loader; running sessions keep theirs."""
        require(operator, Permission.TARIFFS_WRITE)
        targets = {"tariff_id": "(not read)"}
        with self.access.audited(operator, request, targets):
            text = parse_body(TariffBody, read_body(), TARIFF_SHAPE).tariff
            try:
                tariff = load_tariff(text)
            except TariffError as error:
                raise BadRequest(str(error)) from None
            targets["tariff_id"] = tariff.id
            self.tariffs.store(tariff.id, tariff.model_dump_json(exclude_none=True), self.clock())
            return {"tariff_id": tariff.id, "currency": tariff.currency, "elements": len(tariff.elements)}
        raise AssertionError("unreachable")  # pragma: no cover

    def assign_tariff(
        self, operator: Operator, request: RequestInfo, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The tariff in force for a connector, a charger (any connector), or the network."""
        require(operator, Permission.TARIFFS_WRITE)
        targets = {"tariff_id": "(not read)"}
        with self.access.audited(operator, request, targets):
            assignment = parse_body(AssignmentBody, read_body(), ASSIGNMENT_SHAPE)
            targets["tariff_id"] = assignment.tariff_id
            charger_id = assignment.charger_id or ANY
            connector: int | str = assignment.connector_id if assignment.connector_id is not None else ANY
            if assignment.charger_id is not None:
                targets["charger_id"] = charger_target(assignment.charger_id)
                checked_charger_id(assignment.charger_id)
            if self.tariffs.tariff(assignment.tariff_id) is None:
                raise NotFound(
                    f"no tariff {assignment.tariff_id}: store it first with `chargenet tariff set FILE.json`"
                )
            if assignment.charger_id is not None and self.chargers.get(assignment.charger_id) is None:
                raise NotFound(f"no charger {assignment.charger_id}")
            self.tariffs.assign(assignment.tariff_id, charger_id, connector)
            return _assignment_view(TariffAssignment(assignment.tariff_id, charger_id, str(connector)))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ helpers
    def _session(self, session_id: str) -> SessionRecord:
        session = self.sessions.get(_checked_record_id(session_id, "session"))
        if session is None:
            raise NotFound(f"no session {session_id}")
        return session

    def _cdr(self, cdr_id: str) -> BillingRecord:
        record = self.cdrs.get(_checked_record_id(cdr_id, "CDR"))
        if record is None:
            raise NotFound(f"no CDR {cdr_id}")
        return record

    def _tariff_view(self, stored: StoredTariff) -> dict[str, Any]:
        tariff = load_tariff(stored.body)
        shown = describe(price_display(tariff, self.clock(), self.time_zone))
        return {"tariff_id": stored.tariff_id, "currency": tariff.currency, "display": shown}


def _assignment_view(assignment: TariffAssignment) -> dict[str, Any]:
    return {
        "scope": assignment_scope(assignment.charger_id, assignment.connector_id),
        "tariff_id": assignment.tariff_id,
    }


def _checked_record_id(record_id: str, kind: str) -> str:
    if not RECORD_ID.fullmatch(record_id):
        raise BadRequest(f"not a {kind} id")
    return record_id


def _record_target(record_id: str, kind: str) -> str:
    """What the audit trail names: the id, or that it was not one (never the raw text)."""
    return record_id if RECORD_ID.fullmatch(record_id) else f"(not a {kind} id)"
