"""The operator API's sessions area: sessions, CDRs, RFID tags and tariffs, every route for every role,
the audit trail of each change, bad input and cursors.

The handler (functions/operator_sessions) runs on API Gateway HTTP API v2 events with the JWT
authorizer's claims; its service is on in-memory fakes behind the ports.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import SessionRecord, TagStatus
from chargenet.domain.operators import ROLE_PERMISSIONS, Permission, Role
from chargenet.ports.audit import Key, Page
from chargenet.ports.operator_sessions import OrphanStop, StoredTariff, TagEntry, TariffAssignment
from chargenet.services.operator_access import OperatorAccess
from chargenet.services.operator_sessions import OperatorSessions
from tests.fakes import InMemoryRegistry, InMemorySessionStore
from tests.unit.fault_builders import session_record
from tests.unit.handler_modules import imported_handler
from tests.unit.operator_sign_outs import checked_in_memory
from tests.unit.test_operator_api import NOW, SECRET, MemoryAuditLog, call, claims_of
from tests.unit.test_sessions import meter, start, status, stop

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_TARIFF = (ROOT / "docs" / "tariffs" / "example-tariff.json").read_text()
FULL_TAG = "04A2B9C1D0E5F6"
REQUEST_IDS = itertools.count(1)


def _page(items: list[Any], key: Any, limit: int, start_key: Key | None) -> Page[Any]:
    """One page of `limit` items after `start_key`, in key order, like a Scan's pages."""
    after = start_key["id"] if start_key else ""
    rest = sorted((i for i in items if key(i) > after), key=key)
    page = rest[:limit]
    return Page(page, {"id": key(page[-1])} if len(rest) > limit else None)


class MemorySessions(InMemorySessionStore):
    def page(
        self, state: str | None, charger_id: str | None, limit: int, start: Key | None
    ) -> Page[SessionRecord]:
        found = [
            s
            for s in self.records.values()
            if state in (None, s.state) and charger_id in (None, s.charger_id)
        ]
        return _page(found, lambda s: s.session_id, limit, start)

    def orphan_page(self, limit: int, start: Key | None) -> Page[OrphanStop]:
        orphans = [OrphanStop(c, tx, NOW, p) for c, tx, p in self.orphans]
        return _page(orphans, lambda o: f"{o.charger_id}#{o.transaction_id}", limit, start)

    def peaks(self, session_ids: list[str]) -> dict[str, int]:
        return {i: self.records[i].peak_power_w for i in session_ids if i in self.records}


class MemoryCdrs:
    def __init__(self) -> None:
        self.records: dict[str, BillingRecord] = {}

    def get(self, cdr_id: str) -> BillingRecord | None:
        return self.records.get(cdr_id)

    def create(self, record: BillingRecord) -> bool:
        if record.cdr_id in self.records:
            return False
        self.records[record.cdr_id] = record
        return True

    def page(self, limit: int, start: Key | None) -> Page[BillingRecord]:
        return _page(list(self.records.values()), lambda r: r.cdr_id, limit, start)


class MemoryTags:
    def __init__(self) -> None:
        self.tags: dict[str, TagEntry] = {}

    def put(self, id_tag: str, status: TagStatus, max_concurrent: int, expires_at: datetime | None) -> None:
        self.tags[id_tag] = TagEntry(id_tag, status.value, max_concurrent, expires_at, 0)

    def page(self, limit: int, start: Key | None) -> Page[TagEntry]:
        return _page(list(self.tags.values()), lambda t: t.id_tag, limit, start)


class MemoryTariffs:
    def __init__(self) -> None:
        self.bodies: dict[str, str] = {}
        self.assignments: dict[tuple[str, str], str] = {}

    def store(self, tariff_id: str, body: str, at: datetime) -> None:
        self.bodies[tariff_id] = body

    def assign(self, tariff_id: str, charger_id: str, connector_id: int | str) -> None:
        self.assignments[(charger_id, str(connector_id))] = tariff_id

    def tariff(self, tariff_id: str) -> str | None:
        return self.bodies.get(tariff_id)

    def tariff_page(self, limit: int, start: Key | None) -> Page[StoredTariff]:
        stored = [StoredTariff(i, b) for i, b in self.bodies.items()]
        return _page(stored, lambda t: t.tariff_id, limit, start)

    def assignment_page(self, limit: int, start: Key | None) -> Page[TariffAssignment]:
        assigned = [TariffAssignment(t, c, n) for (c, n), t in self.assignments.items()]
        return _page(assigned, lambda a: f"{a.charger_id}#{a.connector_id}", limit, start)


def cdr(cdr_id: str, total: str = "10.00") -> BillingRecord:
    return BillingRecord(
        cdr_id=cdr_id,
        session_id=cdr_id,
        charger_id="CP-1",
        connector_id=1,
        start_date_time=NOW - timedelta(hours=2),
        end_date_time=NOW - timedelta(hours=1),
        currency="EUR",
        total_excl_vat=Decimal(total),
        total_incl_vat=Decimal(total) * Decimal("1.25"),
        energy_wh=12_345,
        ocpi={"id": cdr_id, "start_date_time": "2026-11-26T07:00:00Z", "total_cost": {"excl_vat": total}},
    )


class World:
    def __init__(self) -> None:
        self.sessions = MemorySessions()
        self.cdrs = MemoryCdrs()
        self.tags = MemoryTags()
        self.tariffs = MemoryTariffs()
        self.audit = MemoryAuditLog()
        self.registry = InMemoryRegistry()
        self.registry.add("CP-1", NOW - timedelta(days=3), site_id="S-1")
        # Session 7: a register below the start one, under review; session 8 billed.
        self.sessions.records["7"] = session_record(
            NOW - timedelta(hours=3), state="needs_review", peak_power_w=7_400
        ).model_copy(update={"id_tag": FULL_TAG})
        for event in [start(100_000), meter(10, 100_500), stop(20, 90_000), status(21, "Available")]:
            self.sessions.append("7", event)
        self.sessions.records["8"] = session_record(NOW, state="billed").model_copy(
            update={"session_id": "8", "charger_id": "CP-2"}
        )
        self.sessions.orphans.append(("CP-1", 987654, {"transactionId": 987654, "meterStop": 5}))
        self.cdrs.records["7"] = cdr("7")
        self.tags.put(FULL_TAG, TagStatus.ACCEPTED, 1, None)
        self.tariffs.store("example-day-night", EXAMPLE_TARIFF, NOW)
        self.tariffs.assign("example-day-night", "*", "*")
        self.service = OperatorSessions(
            access=OperatorAccess(self.audit, lambda: SECRET),
            sessions=self.sessions,
            cdrs=self.cdrs,
            tags=self.tags,
            tariffs=self.tariffs,
            chargers=self.registry,
            clock=lambda: NOW,
            time_zone="Europe/Amsterdam",
        )

    def snapshot(self) -> Any:
        return (
            dict(self.sessions.records),
            {k: dict(v) for k, v in self.sessions.event_log.items()},
            dict(self.cdrs.records),
            dict(self.tags.tags),
            dict(self.tariffs.bodies),
            dict(self.tariffs.assignments),
            dict(self.audit.records),
        )


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    yield from imported_handler("operator_sessions")


@pytest.fixture
def world(api: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(api, "operator_sessions", lambda: world.service)
    checked_in_memory(api, monkeypatch)
    return world


def as_role(role: Role) -> dict[str, str]:
    return claims_of(role.value)


ADMIN = as_role(Role.ADMIN)
FINANCE = as_role(Role.FINANCE)

# Each route, its permission (the roles follow from the one table), the body a change sends.
ROUTES: dict[str, tuple[Permission, dict[str, Any] | None]] = {
    "GET /ops/v1/sessions": (Permission.SESSIONS_READ, None),
    "GET /ops/v1/sessions/orphans": (Permission.SESSIONS_READ, None),
    "GET /ops/v1/sessions/7": (Permission.SESSIONS_READ, None),
    "POST /ops/v1/sessions/7/settle": (Permission.SESSIONS_WRITE, {"use_reading_wh": 100_800}),
    "GET /ops/v1/cdrs": (Permission.CDRS_READ, None),
    "GET /ops/v1/cdrs/export": (Permission.CDRS_READ, None),
    "GET /ops/v1/cdrs/7": (Permission.CDRS_READ, None),
    "POST /ops/v1/cdrs/7/credit": (Permission.CDRS_WRITE, {"reason": "driver complaint"}),
    "GET /ops/v1/tags": (Permission.TAGS_READ, None),
    "POST /ops/v1/tags": (Permission.TAGS_WRITE, {"id_tag": "NEWTAG0001", "max_concurrent_sessions": 2}),
    "GET /ops/v1/tariffs": (Permission.TARIFFS_READ, None),
    "POST /ops/v1/tariffs": (Permission.TARIFFS_WRITE, {"tariff": EXAMPLE_TARIFF}),
    "GET /ops/v1/tariffs/assignments": (Permission.TARIFFS_READ, None),
    "POST /ops/v1/tariffs/assignments": (
        Permission.TARIFFS_WRITE,
        {"tariff_id": "example-day-night", "charger_id": "CP-1", "connector_id": 2},
    ),
}


def send(
    api: Any, route: str, claims: dict[str, Any] | None, body: Any = None, query: str = ""
) -> tuple[int, Any]:
    """One request, with its own request id: the audit trail keeps each request once."""
    method, path = route.split(" ", 1)
    encoded = None if body is None else json.dumps(body)
    return call(api, method, path, claims, query=query, body=encoded, request_id=f"r-{next(REQUEST_IDS)}")


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_routes_permission(api: Any, world: World, route: str, role: Role) -> None:
    permission, body = ROUTES[route]
    before = world.snapshot()
    status_code, answer = send(api, route, as_role(role), body)

    if permission in ROLE_PERMISSIONS[role]:
        assert status_code == (201 if route.endswith("/credit") else 200), answer
        assert len(world.audit.records) == (0 if route.startswith("GET") else 1)
    else:
        assert (status_code, answer["error"]) == (403, "forbidden"), answer
        assert world.snapshot() == before  # nothing changed, nothing audited


def test_no_signed_in_operator_is_401(api: Any, world: World) -> None:
    assert send(api, "GET /ops/v1/sessions", None)[0] == 401


# ---------------------------------------------------------------- sessions


def test_sessions_list_masks_tags_and_filters_by_state_and_charger(api: Any, world: World) -> None:
    _, page = send(api, "GET /ops/v1/sessions", FINANCE, query="state=needs_review")
    [session] = page["items"]
    assert session["session_id"] == "7" and session["id_tag"] == "04A2**********"
    assert "tariff_json" not in session and FULL_TAG not in json.dumps(page)
    _, other = send(api, "GET /ops/v1/sessions", FINANCE, query="charger=CP-2")
    assert [s["session_id"] for s in other["items"]] == ["8"]


def test_settling_bills_the_chosen_reading_once_and_is_audited(api: Any, world: World) -> None:
    status_code, settled = send(api, "POST /ops/v1/sessions/7/settle", FINANCE, {"use_reading_wh": 100_800})
    assert (status_code, settled) == (200, {"session_id": "7", "state": "completed", "energy_wh": 800})
    [record] = world.audit.records.values()
    assert record.targets == {"session_id": "7", "choice": "reading 100800 Wh"}
    assert (record.route, record.status) == ("/ops/v1/sessions/{session_id}/settle", 200)

    again, answer = send(api, "POST /ops/v1/sessions/7/settle", FINANCE, {"void": True}, query="")
    assert (again, answer["error"]) == (409, "conflict") and "not needs_review" in answer["message"]


def test_voiding_a_session(api: Any, world: World) -> None:
    status_code, settled = send(api, "POST /ops/v1/sessions/7/settle", ADMIN, {"void": True})
    assert (status_code, settled["state"], settled["energy_wh"]) == (200, "voided", 0)
    assert [r.targets["choice"] for r in world.audit.records.values()] == ["void"]


def test_orphan_stops_are_listed(api: Any, world: World) -> None:
    _, page = send(api, "GET /ops/v1/sessions/orphans", FINANCE)
    assert page["items"][0] == {
        "charger_id": "CP-1",
        "transaction_id": 987654,
        "received_at": NOW.isoformat(),
        "payload": {"transactionId": 987654, "meterStop": 5},
    }


# ---------------------------------------------------------------- CDRs


def test_crediting_a_cdr_adds_a_credit_record_with_the_reason_as_the_audit_note(
    api: Any, world: World
) -> None:
    status_code, credit = send(api, "POST /ops/v1/cdrs/7/credit", FINANCE, {"reason": "driver complaint"})
    assert status_code == 201
    assert (credit["cdr_id"], credit["total_incl_vat"], credit["credit_reference_id"]) == (
        "7-CREDIT",
        "-12.5000",
        "7",
    )
    assert world.cdrs.records["7"] == cdr("7")  # the CDR itself never changes
    [record] = world.audit.records.values()
    assert (
        record.targets == {"cdr_id": "7", "credit_cdr_id": "7-CREDIT"} and record.note == "driver complaint"
    )

    twice, answer = send(api, "POST /ops/v1/cdrs/7/credit", FINANCE, {"reason": "again"})
    assert twice == 409 and "already has a credit record" in answer["message"]
    of_credit, answer = send(api, "POST /ops/v1/cdrs/7-CREDIT/credit", FINANCE, {"reason": "again"})
    assert of_credit == 409 and "itself a credit record" in answer["message"]
    assert [r.status for r in sorted(world.audit.records.values(), key=lambda r: r.entry)] == [201, 409, 409]


def test_the_csv_export_carries_each_sessions_peak_power(api: Any, world: World) -> None:
    _, page = send(api, "GET /ops/v1/cdrs/export", FINANCE, query="format=csv")
    assert page["items"] == [
        {
            "session": "7",
            "charger": "CP-1",
            "port": "1",
            "start": (NOW - timedelta(hours=2)).isoformat(),
            "end": (NOW - timedelta(hours=1)).isoformat(),
            "energy_kwh": "12.345",
            "peak_kw": "7.4",
            "cost_incl_vat": "12.5000",
            "currency": "EUR",
        }
    ]
    _, ocpi = send(api, "GET /ops/v1/cdrs/export", FINANCE)
    assert ocpi["items"] == [cdr("7").ocpi]


def test_listings_follow_their_cursor_and_refuse_a_tampered_one(api: Any, world: World) -> None:
    for n in range(3):
        world.cdrs.records[f"9{n}"] = cdr(f"9{n}")
    _, first = send(api, "GET /ops/v1/cdrs", FINANCE, query="limit=2")
    _, second = send(api, "GET /ops/v1/cdrs", FINANCE, query=f"limit=2&next={first['next']}")
    assert [r["cdr_id"] for r in first["items"] + second["items"]] == ["7", "90", "91", "92"]
    assert second["next"] is None
    tampered = first["next"][:-2] + ("AA" if first["next"][-2:] != "AA" else "BB")
    status_code, answer = send(api, "GET /ops/v1/cdrs", FINANCE, query=f"next={tampered}")
    assert (status_code, answer["error"]) == (400, "bad_cursor")
    # A cursor of one listing is refused by another (the CSV export here).
    foreign, answer = send(api, "GET /ops/v1/cdrs/export", FINANCE, query=f"format=csv&next={first['next']}")
    assert (foreign, answer["error"]) == (400, "bad_cursor")


# ---------------------------------------------------------------- tags and tariffs


def test_a_tag_id_travels_in_the_body_and_leaves_masked(api: Any, world: World) -> None:
    body = {"id_tag": "ABCDEFGH12", "status": "Blocked", "expires_at": "2027-01-01T00:00:00+00:00"}
    status_code, tag = send(api, "POST /ops/v1/tags", FINANCE, body)
    assert (status_code, tag["id_tag"], tag["status"]) == (200, "ABCD******", "Blocked")
    assert world.tags.tags["ABCDEFGH12"].status == "Blocked"
    [record] = world.audit.records.values()
    assert record.targets == {"id_tag": "ABCD******"} and "ABCDEFGH12" not in record.model_dump_json()
    _, page = send(api, "GET /ops/v1/tags", FINANCE)
    assert FULL_TAG not in json.dumps(page) and "ABCDEFGH12" not in json.dumps(page)


def test_a_stored_tariff_is_listed_with_the_prices_drivers_see(api: Any, world: World) -> None:
    status_code, stored = send(api, "POST /ops/v1/tariffs", FINANCE, {"tariff": EXAMPLE_TARIFF})
    assert (status_code, stored) == (
        200,
        {"tariff_id": "example-day-night", "currency": "EUR", "elements": 4},
    )
    assert [r.targets for r in world.audit.records.values()] == [{"tariff_id": "example-day-night"}]
    _, page = send(api, "GET /ops/v1/tariffs", FINANCE)
    [tariff] = page["items"]
    assert tariff["tariff_id"] == "example-day-night" and any("kWh" in line for line in tariff["display"])
    _, assigned = send(api, "GET /ops/v1/tariffs/assignments", FINANCE)
    assert assigned["items"] == [{"scope": "* / *", "tariff_id": "example-day-night"}]


def test_assigning_a_tariff_to_a_connector(api: Any, world: World) -> None:
    body = {"tariff_id": "example-day-night", "charger_id": "CP-1", "connector_id": 2}
    status_code, assigned = send(api, "POST /ops/v1/tariffs/assignments", FINANCE, body)
    assert (status_code, assigned) == (200, {"scope": "CP-1 / 2", "tariff_id": "example-day-night"})
    assert world.tariffs.assignments[("CP-1", "2")] == "example-day-night"
    [record] = world.audit.records.values()
    assert record.targets == {"tariff_id": "example-day-night", "charger_id": "CP-1"}


@pytest.mark.parametrize(
    ("body", "status_code", "message"),
    [
        ({"tariff_id": "NOPE", "default": True}, 404, "no tariff NOPE"),
        ({"tariff_id": "example-day-night", "charger_id": "CP-ghost"}, 404, "no charger CP-ghost"),
        ({"tariff_id": "example-day-night"}, 400, "charger_id"),
        ({"tariff_id": "example-day-night", "default": True, "connector_id": 2}, 400, "connector_id"),
    ],
)
def test_assignments_that_cannot_be(
    api: Any, world: World, body: dict[str, Any], status_code: int, message: str
) -> None:
    before = dict(world.tariffs.assignments)
    answer_status, answer = send(api, "POST /ops/v1/tariffs/assignments", FINANCE, body)
    assert answer_status == status_code and message in answer["message"], answer
    assert world.tariffs.assignments == before
    assert [r.status for r in world.audit.records.values()] == [status_code]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("route", "body", "query", "message"),
    [
        ("GET /ops/v1/sessions", None, "state=parked", "state is one of"),
        ("GET /ops/v1/sessions", None, "charger=../x", "not a charger id"),
        ("GET /ops/v1/sessions", None, "limit=0", "limit"),
        ("GET /ops/v1/sessions/a%20b", None, "", "not a session id"),
        ("GET /ops/v1/cdrs/export", None, "format=xml", "format is ocpi or csv"),
        ("POST /ops/v1/sessions/7/settle", {"use_reading_wh": -1}, "", "use_reading_wh"),
        ("POST /ops/v1/sessions/7/settle", {"use_reading_wh": 5, "void": True}, "", "not both"),
        ("POST /ops/v1/sessions/7/settle", {}, "", "not both"),
        ("POST /ops/v1/cdrs/7/credit", {"reason": ""}, "", "reason"),
        ("POST /ops/v1/cdrs/7/credit", {"reason": "x" * 256}, "", "reason"),
        ("POST /ops/v1/tags", {"id_tag": "X" * 21}, "", "id_tag"),
        ("POST /ops/v1/tags", {"id_tag": "T1", "max_concurrent_sessions": 0}, "", "max_concurrent_sessions"),
        ("POST /ops/v1/tags", {"id_tag": "T1", "status": "ConcurrentTx"}, "", "status"),
        ("POST /ops/v1/tags", {"id_tag": "T1", "expires_at": "2027-01-01T00:00:00"}, "", "expires_at"),
        ("POST /ops/v1/tags", {"id_tag": "T1", "extra": 1}, "", "extra"),
        ("POST /ops/v1/tariffs", {"tariff": "not json"}, "", "invalid tariff: not valid JSON"),
        ("POST /ops/v1/tariffs", {"tariff": json.dumps({"id": "x"})}, "", "invalid tariff ("),
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(
    api: Any, world: World, route: str, body: Any, query: str, message: str
) -> None:
    before = world.snapshot()[:-1]
    status_code, answer = send(api, route, ADMIN, body, query=query)
    assert (status_code, answer["error"]) == (400, "bad_request"), answer
    assert message in answer["message"]
    assert world.snapshot()[:-1] == before
    if route.startswith("POST"):  # an authorized change is audited with how it ended
        assert [r.status for r in world.audit.records.values()] == [400]


def test_unknown_records_are_404(api: Any, world: World) -> None:
    assert send(api, "GET /ops/v1/sessions/404", FINANCE)[0] == 404
    assert send(api, "GET /ops/v1/cdrs/404", FINANCE)[1]["message"] == "no CDR 404"
    status_code, _ = send(api, "POST /ops/v1/cdrs/404/credit", FINANCE, {"reason": "x"})
    assert status_code == 404 and [r.targets for r in world.audit.records.values()] == [{"cdr_id": "404"}]
