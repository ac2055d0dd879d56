"""The operator API: roles and permissions, claims, cursors, every route's permission, the audit trail.

The handler runs on API Gateway HTTP API v2 events carrying the JWT authorizer's claims; its
services are on in-memory fakes (tests/fakes.py); the DynamoDB audit log on moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chargenet.adapters.tables import TableNames, bind_tables, bound_tables
from chargenet.domain.alerts import AlertKind, AlertRecord
from chargenet.domain.audit import AuditRecord, audit_record
from chargenet.domain.cursors import BadCursor, read_cursor, sign_cursor
from chargenet.domain.faults import ExclusionReason, Fault, FaultState, Severity, exclude
from chargenet.domain.models import Charger, ConnectorStatus
from chargenet.domain.operators import (
    ROLE_PERMISSIONS,
    NotSignedIn,
    Operator,
    Permission,
    Role,
    operator_from_claims,
    parse_groups,
    permissions_of,
    roles_of,
)
from chargenet.domain.uptime import StatusPoint
from chargenet.ports.audit import Key, Page
from chargenet.ports.faults import StoredFault
from chargenet.ports.operators import OperatorAccount, UsernameTaken
from chargenet.services.fault_tracking import FaultTracker
from chargenet.services.operator_access import OperatorAccess
from chargenet.services.operator_api import OperatorConsole
from tests.fakes import InMemoryFaultStore, InMemoryRegistry, RecordingPublisher
from tests.unit.fault_builders import opened
from tests.unit.handler_modules import imported_handler
from tests.unit.operator_sign_outs import checked_in_memory

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SECRET = b"cursor-secret-for-tests"

# ---------------------------------------------------------------- roles and permissions

TECHNICIAN = {
    "chargers.read",
    "chargers.write",
    "commands.send",
    "diagnostics",
    "firmware.read",
    "faults.read",
    "faults.write",
}
FINANCE = {
    "sessions.read",
    "sessions.write",
    "cdrs.read",
    "cdrs.write",
    "payments.read",
    "payments.write",
    "payments.refund",
    "reconcile",
    "subscribers.read",
    "subscribers.write",
    "tags.read",
    "tags.write",
    "plans.write",
    "tariffs.read",
    "tariffs.write",
    "reports.read",
}
VIEWER = {
    "chargers.read",
    "firmware.read",
    "faults.read",
    "sessions.read",
    "cdrs.read",
    "payments.read",
    "subscribers.read",
    "tags.read",
    "tariffs.read",
    "reports.read",
}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.ADMIN, {p.value for p in Permission}),
        (Role.TECHNICIAN, TECHNICIAN),
        (Role.FINANCE, FINANCE),
        (Role.VIEWER, VIEWER),
    ],
)
def test_each_roles_permissions(role: Role, expected: set[str]) -> None:
    assert {p.value for p in ROLE_PERMISSIONS[role]} == expected


def test_admin_has_everything_including_operators_and_audit() -> None:
    assert {Permission.OPERATORS_MANAGE, Permission.AUDIT_READ} <= ROLE_PERMISSIONS[Role.ADMIN]
    assert Permission.AUDIT_READ not in ROLE_PERMISSIONS[Role.VIEWER]


def test_several_groups_give_the_union() -> None:
    both = permissions_of(roles_of(["technician", "finance"]))
    assert {p.value for p in both} == TECHNICIAN | FINANCE


def test_unknown_groups_give_nothing() -> None:
    assert roles_of(["operators", "Admin", "root", ""]) == frozenset()
    assert permissions_of(roles_of(["nobody"])) == frozenset()


# ---------------------------------------------------------------- claims


@pytest.mark.parametrize(
    ("value", "groups"),
    [
        ("[admin technician]", ["admin", "technician"]),
        ("[viewer]", ["viewer"]),
        ("admin", ["admin"]),
        ("[]", []),
        ("", []),
        (None, []),
        (["finance", "viewer"], ["finance", "viewer"]),
        ("[admin, finance]", ["admin", "finance"]),
    ],
)
def test_groups_as_a_string_or_a_list(value: object, groups: list[str]) -> None:
    assert parse_groups(value) == groups


def test_an_access_tokens_operator() -> None:
    operator = operator_from_claims(
        {"sub": "u-1", "username": "ana", "cognito:groups": "[technician finance]"}
    )
    assert (operator.subject, operator.username, operator.email) == ("u-1", "ana", None)
    assert operator.roles == {Role.TECHNICIAN, Role.FINANCE}


def test_an_id_tokens_operator() -> None:
    operator = operator_from_claims(
        {"sub": "u-2", "cognito:username": "bo", "email": "bo@example.com", "cognito:groups": ["viewer"]}
    )
    assert (operator.username, operator.email, operator.roles) == ("bo", "bo@example.com", {Role.VIEWER})


@pytest.mark.parametrize("claims", [None, {}, {"username": "ana"}, {"sub": ""}])
def test_no_claims_is_not_signed_in(claims: dict[str, str] | None) -> None:
    with pytest.raises(NotSignedIn):
        operator_from_claims(claims)


# ---------------------------------------------------------------- cursors


def test_a_cursor_round_trips() -> None:
    key = {"charger_id": {"S": "CP-7"}, "sk": {"S": "charger"}}
    cursor = sign_cursor(key, "chargers?site=", SECRET)
    assert read_cursor(cursor, "chargers?site=", SECRET) == key


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"),  # the signature
        lambda c: "e" + c[1:] if c[0] != "e" else "f" + c[1:],  # the payload
        lambda c: c.replace(".", ""),
        lambda c: "",
        lambda c: "x" * 5000,
        lambda c: "not.base64!",
    ],
)
def test_a_tampered_cursor_is_refused(tamper: Any) -> None:
    cursor = sign_cursor({"fault_id": {"S": "f-1"}}, "faults?open=False", SECRET)
    with pytest.raises(BadCursor):
        read_cursor(tamper(cursor), "faults?open=False", SECRET)


def test_a_cursor_of_another_listing_or_key_is_refused() -> None:
    cursor = sign_cursor({"fault_id": {"S": "f-1"}}, "faults?open=False", SECRET)
    with pytest.raises(BadCursor):
        read_cursor(cursor, "faults?open=True", SECRET)
    with pytest.raises(BadCursor):
        read_cursor(cursor, "faults?open=False", b"another secret")


# ---------------------------------------------------------------- the handler on fakes


class FakeViews:
    """One page of `limit` items after `start`, in id order, like a Scan's pages."""

    def __init__(self, registry: InMemoryRegistry, faults: InMemoryFaultStore) -> None:
        self.registry, self.fault_store = registry, faults

    @staticmethod
    def _page(items: list[Any], key: str, limit: int, start: Key | None) -> Page[Any]:
        after = start["id"] if start else ""
        rest = [i for i in sorted(items, key=lambda i: getattr(i, key)) if getattr(i, key) > after]
        page = rest[:limit]
        return Page(page, {"id": getattr(page[-1], key)} if len(rest) > limit else None)

    def chargers(self, site_id: str | None, limit: int, start: Key | None) -> Page[Charger]:
        chargers = [c for c in self.registry.chargers.values() if site_id is None or c.site_id == site_id]
        return self._page(chargers, "charger_id", limit, start)

    def chargers_with_connectors(
        self, site_id: str | None, limit: int, start: Key | None
    ) -> Page[tuple[Charger, list[ConnectorStatus]]]:
        page = self.chargers(site_id, limit, start)
        return Page([(c, self.connectors(c.charger_id)) for c in page.items], page.next_key)

    def charger(self, charger_id: str) -> Charger | None:
        return self.registry.get(charger_id)

    def connectors(self, charger_id: str) -> list[ConnectorStatus]:
        return self.registry.connectors(charger_id)

    def faults(self, open_only: bool, limit: int, start: Key | None) -> Page[Fault]:
        faults = [f for f, _ in self.fault_store.faults.values()]
        faults = [f for f in faults if not open_only or f.state is not FaultState.RESOLVED]
        return self._page(faults, "fault_id", limit, start)

    def fault(self, fault_id: str) -> StoredFault | None:
        return self.fault_store.get(fault_id)

    def faults_of_charger(self, charger_id: str) -> list[Fault]:
        return [f for f, _ in self.fault_store.of_charger(charger_id)]

    def alerted_faults(self, limit: int, start: Key | None) -> Page[StoredFault]:
        alerted = [(f, a) for f, a in self.fault_store.faults.values() if a]
        after = start["id"] if start else ""
        rest = sorted((entry for entry in alerted if entry[0].fault_id > after), key=lambda e: e[0].fault_id)
        page = rest[:limit]
        return Page(page, {"id": page[-1][0].fault_id} if len(rest) > limit else None)


class FakeHistory:
    """Statuses per (charger, connector) and archived episodes per charger, as DynamoHistory reads them."""

    def __init__(self) -> None:
        self.statuses: dict[tuple[str, int], list[StatusPoint]] = {}
        self.archived: dict[str, list[Fault]] = {}

    def timeline(
        self, charger_id: str, connector_id: int, start: datetime, end: datetime
    ) -> list[StatusPoint]:
        points = sorted(self.statuses.get((charger_id, connector_id), []), key=lambda p: p.at)
        before = [p for p in points if p.at <= start][-1:]
        return before + [p for p in points if start < p.at < end]

    def episodes(self, charger_id: str) -> list[Fault]:
        return self.archived.get(charger_id, [])


class MemoryAuditLog:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], AuditRecord] = {}

    def record(self, record: AuditRecord) -> None:
        self.records.setdefault((record.day, record.entry), record)

    def of_day(self, day: str, limit: int, start: Key | None) -> Page[AuditRecord]:
        entries = sorted(
            (r for (d, _), r in self.records.items() if d == day), key=lambda r: r.entry, reverse=True
        )
        if start:
            entries = [r for r in entries if r.entry < start["entry"]]
        page = entries[:limit]
        return Page(page, {"entry": page[-1].entry} if len(entries) > limit else None)


class MemoryDirectory:
    """Accounts by user name, paged in name order; `temporary` as the local stack answers."""

    def __init__(self, temporary: str | None = None) -> None:
        self.accounts_by_name: dict[str, OperatorAccount] = {
            "bob": OperatorAccount("bob", "bob@example.com", ["technician"], "CONFIRMED", True, NOW)
        }
        self.temporary = temporary

    def accounts(self, limit: int, start: Key | None) -> Page[OperatorAccount]:
        names = sorted(n for n in self.accounts_by_name if not start or n > start["token"])
        page = names[:limit]
        return Page(
            [self.accounts_by_name[n] for n in page], {"token": page[-1]} if len(names) > limit else None
        )

    def invite(self, username: str, email: str, role: Role) -> str | None:
        if username in self.accounts_by_name:
            raise UsernameTaken(username)
        account = OperatorAccount(username, email, [role.value], "FORCE_CHANGE_PASSWORD", True, NOW)
        self.accounts_by_name[username] = account
        return self.temporary

    def set_role(self, username: str, role: Role) -> bool:
        account = self.accounts_by_name.get(username)
        if account is None:
            return False
        self.accounts_by_name[username] = OperatorAccount(
            username, account.email, [role.value], account.status, account.enabled, account.created_at
        )
        return True

    def remove(self, username: str) -> bool:
        return self.accounts_by_name.pop(username, None) is not None


class World:
    def __init__(self) -> None:
        self.registry = InMemoryRegistry()
        self.store = InMemoryFaultStore()
        self.audit = MemoryAuditLog()
        self.registry.add("CP-1", NOW - timedelta(days=3), site_id="S-1")
        self.registry.add("CP-2", NOW - timedelta(days=3), site_id="S-2")
        self.registry.add("CP-3", NOW - timedelta(days=3), site_id="S-1")
        self.fault = opened(0)
        self.store.faults[self.fault.fault_id] = (self.fault, [])
        self.directory = MemoryDirectory()
        self.history = FakeHistory()
        tracker = FaultTracker(self.store, RecordingPublisher(), lambda: NOW)
        self.console = OperatorConsole(
            OperatorAccess(self.audit, lambda: SECRET),
            FakeViews(self.registry, self.store),
            tracker,
            lambda: NOW,
            self.directory,
            self.history,
        )

    def snapshot(self) -> Any:
        return dict(self.store.faults), dict(self.audit.records), dict(self.directory.accounts_by_name)


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    yield from imported_handler("operator_api")


@pytest.fixture
def world(api: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(api, "operator_console", lambda: world.console)
    checked_in_memory(api, monkeypatch)
    return world


class Context:
    function_name = "OperatorApiFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:OperatorApiFunction"
    aws_request_id = "req-1"


def claims_of(*groups: str) -> dict[str, str]:
    return {
        "sub": "sub-1",
        "username": "ana",
        "email": "ana@example.com",
        "iat": str(int(NOW.timestamp()) - 60),  # a minute old: API Gateway passes claims as strings
        "cognito:groups": f"[{' '.join(groups)}]",
    }


def call(
    api: Any,
    method: str,
    path: str,
    claims: dict[str, Any] | None,
    query: str = "",
    body: str | None = None,
    request_id: str = "r-1",
) -> tuple[int, dict[str, Any]]:
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api",
        "domainName": "ops.example",
        "domainPrefix": "ops",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "1.2.3.4",
            "userAgent": "t",
        },
        "requestId": request_id,
        "routeKey": "ANY /ops/v1/{proxy+}",
        "stage": "$default",
        "time": "26/Nov/2026:09:00:00 +0000",
        "timeEpoch": int(NOW.timestamp() * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    event = {
        "version": "2.0",
        "routeKey": "ANY /ops/v1/{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
        "headers": {"host": "ops.example", "content-type": "application/json"},
        "requestContext": context,
        "body": body,
        "isBase64Encoded": False,
    }
    response = api.lambda_handler(event, Context())
    assert response["headers"]["Content-Type"].startswith("application/json")
    return response["statusCode"], json.loads(response["body"])


def route_call(
    api: Any, world: World, route: str, claims: dict[str, Any] | None
) -> tuple[int, dict[str, Any]]:
    fault = world.fault.fault_id
    method, path = route.split(" ", 1)
    path = path.replace("{charger_id}", "CP-1").replace("{fault_id}", fault).replace("{username}", "bob")
    bodies = {
        "POST /ops/v1/faults/{fault_id}/ack": {"note": "on my way"},
        "POST /ops/v1/faults/{fault_id}/exclude": {"reason": "utility_outage", "note": "grid down"},
        "POST /ops/v1/operators": {"username": "carol", "email": "carol@example.com", "role": "finance"},
        "PUT /ops/v1/operators/{username}/role": {"role": "viewer"},
    }
    body = json.dumps(bodies[route]) if route in bodies else None
    query = "month=2026-11" if route == "GET /ops/v1/reports/uptime" else ""
    return call(api, method, path, claims, query, body=body)


ROUTES = {
    "GET /ops/v1/whoami": set(Role),
    "GET /ops/v1/chargers": {Role.ADMIN, Role.TECHNICIAN, Role.VIEWER},
    "GET /ops/v1/chargers/{charger_id}": {Role.ADMIN, Role.TECHNICIAN, Role.VIEWER},
    "GET /ops/v1/faults": {Role.ADMIN, Role.TECHNICIAN, Role.VIEWER},
    "GET /ops/v1/faults/{fault_id}": {Role.ADMIN, Role.TECHNICIAN, Role.VIEWER},
    "POST /ops/v1/faults/{fault_id}/ack": {Role.ADMIN, Role.TECHNICIAN},
    "POST /ops/v1/faults/{fault_id}/resolve": {Role.ADMIN, Role.TECHNICIAN},
    "POST /ops/v1/faults/{fault_id}/exclude": {Role.ADMIN, Role.TECHNICIAN},
    "GET /ops/v1/alerts": {Role.ADMIN, Role.TECHNICIAN, Role.VIEWER},
    "GET /ops/v1/fleet/health": {Role.ADMIN, Role.TECHNICIAN, Role.VIEWER},
    "GET /ops/v1/reports/uptime": {Role.ADMIN, Role.FINANCE, Role.VIEWER},
    "GET /ops/v1/audit": {Role.ADMIN},
    "GET /ops/v1/operators": {Role.ADMIN},
    "POST /ops/v1/operators": {Role.ADMIN},
    "PUT /ops/v1/operators/{username}/role": {Role.ADMIN},
    "DELETE /ops/v1/operators/{username}": {Role.ADMIN},
}
CHANGES = {r for r in ROUTES if not r.startswith("GET")}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_routes_permission(api: Any, world: World, route: str, role: Role) -> None:
    before = world.snapshot()
    status, body = route_call(api, world, route, claims_of(role.value))

    if role in ROUTES[route]:
        assert status == (201 if route == "POST /ops/v1/operators" else 200), body
        assert len(world.audit.records) == (1 if route in CHANGES else 0)
    else:
        assert (status, body["error"]) == (403, "forbidden"), body
        assert world.snapshot() == before  # nothing changed, nothing audited


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_without_claims_every_route_is_401_and_nothing_is_recorded(
    api: Any, world: World, route: str
) -> None:
    before = world.snapshot()
    status, body = route_call(api, world, route, None)
    assert (status, body["error"]) == (401, "unauthorized")
    assert world.snapshot() == before


def test_a_group_that_is_no_role_gives_no_permission(api: Any, world: World) -> None:
    assert route_call(api, world, "GET /ops/v1/chargers", claims_of("operators"))[0] == 403
    status, me = call(api, "GET", "/ops/v1/whoami", claims_of("operators"))
    assert (status, me["roles"], me["permissions"]) == (200, [], [])


def test_whoami(api: Any, world: World) -> None:
    status, me = call(api, "GET", "/ops/v1/whoami", claims_of("technician", "finance"))
    assert status == 200
    assert me == {
        "subject": "sub-1",
        "username": "ana",
        "email": "ana@example.com",
        "roles": ["finance", "technician"],
        "permissions": sorted(TECHNICIAN | FINANCE),
    }


def test_chargers_as_the_cli_lists_them_filtered_by_site(api: Any, world: World) -> None:
    status, listing = call(api, "GET", "/ops/v1/chargers", claims_of("viewer"), "site=S-1")
    assert status == 200 and listing["next"] is None
    assert [c["charger_id"] for c in listing["items"]] == ["CP-1", "CP-3"]
    assert set(listing["items"][0]) == {*Charger.model_fields, "connectors"}
    assert call(api, "GET", "/ops/v1/chargers/CP-9", claims_of("viewer"))[0] == 404
    assert call(api, "GET", "/ops/v1/chargers/bad%20id", claims_of("viewer"))[0] in (400, 404)


def test_pages_follow_their_cursor(api: Any, world: World) -> None:
    seen, query = [], "limit=2"
    for _ in range(3):
        status, listing = call(api, "GET", "/ops/v1/chargers", claims_of("viewer"), query)
        assert status == 200
        seen += [c["charger_id"] for c in listing["items"]]
        if listing["next"] is None:
            break
        query = f"limit=2&next={listing['next']}"
    assert seen == ["CP-1", "CP-2", "CP-3"]


def test_a_tampered_cursor_is_400_bad_cursor(api: Any, world: World) -> None:
    listing = call(api, "GET", "/ops/v1/chargers", claims_of("viewer"), "limit=1")[1]
    forged = listing["next"][:-3] + ("AAA" if not listing["next"].endswith("AAA") else "BBB")
    status, body = call(api, "GET", "/ops/v1/chargers", claims_of("viewer"), f"next={forged}")
    assert (status, body["error"]) == (400, "bad_cursor")
    # A cursor of another listing (the site filter is part of it) is refused too.
    status, body = call(
        api, "GET", "/ops/v1/chargers", claims_of("viewer"), f"site=S-1&next={listing['next']}"
    )
    assert (status, body["error"]) == (400, "bad_cursor")


@pytest.mark.parametrize(
    ("limit", "status"), [("0", 400), ("1", 200), ("200", 200), ("201", 400), ("x", 400), ("-1", 400)]
)
def test_limit_bounds(api: Any, world: World, limit: str, status: int) -> None:
    assert call(api, "GET", "/ops/v1/faults", claims_of("viewer"), f"limit={limit}")[0] == status


def test_faults_open_filter(api: Any, world: World) -> None:
    assert len(call(api, "GET", "/ops/v1/faults", claims_of("viewer"), "open=true")[1]["items"]) == 1
    call(api, "POST", f"/ops/v1/faults/{world.fault.fault_id}/resolve", claims_of("technician"))
    assert call(api, "GET", "/ops/v1/faults", claims_of("viewer"), "open=true")[1]["items"] == []
    [item] = call(api, "GET", "/ops/v1/faults", claims_of("viewer"))[1]["items"]
    assert item["state"] == "resolved"


def test_ack_records_who_what_when_and_the_outcome(api: Any, world: World) -> None:
    fault_id = world.fault.fault_id
    status, fault = call(
        api,
        "POST",
        f"/ops/v1/faults/{fault_id}/ack",
        claims_of("technician"),
        body='{"note": "on my way"}',
        request_id="req-9",
    )
    assert status == 200 and fault["acknowledged_by"] == "ana" and fault["changed"] is True
    [record] = world.audit.records.values()
    assert record.model_dump(mode="json") == {
        "day": "2026-11-26",
        "entry": "2026-11-26T09:00:00.000+00:00#req-9",
        "at": "2026-11-26T09:00:00Z",
        "request_id": "req-9",
        "subject": "sub-1",
        "username": "ana",
        "email": "ana@example.com",
        "method": "POST",
        "route": "/ops/v1/faults/{fault_id}/ack",
        "targets": {"fault_id": fault_id},
        "status": 200,
        "note": "on my way",
    }
    # The same request again is the same record.
    call(api, "POST", f"/ops/v1/faults/{fault_id}/ack", claims_of("technician"), request_id="req-9")
    assert len(world.audit.records) == 1


def test_an_allowed_change_that_fails_is_recorded_with_its_status(api: Any, world: World) -> None:
    status, body = call(api, "POST", "/ops/v1/faults/nosuchfault/resolve", claims_of("admin"), request_id="a")
    assert (status, body["error"]) == (404, "not_found")
    status, body = call(
        api,
        "POST",
        f"/ops/v1/faults/{world.fault.fault_id}/ack",
        claims_of("admin"),
        body="{not json",
        request_id="b",
    )
    assert (status, body["error"]) == (400, "bad_request")
    assert sorted(r.status for r in world.audit.records.values()) == [400, 404]


def test_audit_is_listed_by_day_newest_first_for_admins(api: Any, world: World) -> None:
    for n in range(3):
        call(
            api, "POST", f"/ops/v1/faults/{world.fault.fault_id}/ack", claims_of("admin"), request_id=f"r-{n}"
        )
    status, listing = call(api, "GET", "/ops/v1/audit", claims_of("admin"), "limit=2")
    assert status == 200 and len(listing["items"]) == 2 and listing["next"]
    rest = call(api, "GET", "/ops/v1/audit", claims_of("admin"), f"limit=2&next={listing['next']}")[1]
    ids = [r["request_id"] for r in listing["items"] + rest["items"]]
    assert ids == ["r-2", "r-1", "r-0"] and rest["next"] is None
    assert call(api, "GET", "/ops/v1/audit", claims_of("admin"), "day=2026-11-25")[1]["items"] == []
    assert call(api, "GET", "/ops/v1/audit", claims_of("admin"), "day=2026-13-01")[0] == 400


def test_an_audit_record_holds_no_raw_target_text() -> None:
    operator = Operator(subject="s", username="u")
    record = audit_record(
        operator, method="post", route="/r", targets={}, status=200, request_id="x", at=NOW, note="n" * 900
    )
    assert record.method == "POST" and record.note is not None and len(record.note) == 500


def test_an_unknown_route_is_404_for_an_operator(api: Any, world: World) -> None:
    status, body = call(api, "GET", "/ops/v1/nothing", claims_of("viewer"))
    assert (status, body["error"]) == (404, "not_found")


# ---------------------------------------------------------------- faults, alerts, fleet health, uptime

VIEWER_CLAIMS, TECHNICIAN_CLAIMS = claims_of("viewer"), claims_of("technician")


def _alert(fault: Fault, kind: AlertKind, minutes: int, published: bool = True) -> AlertRecord:
    return AlertRecord(
        fault_id=fault.fault_id,
        episode=fault.episode,
        kind=kind,
        at=NOW - timedelta(minutes=minutes),
        published=published,
    )


def test_a_fault_is_shown_with_its_alerts(api: Any, world: World) -> None:
    fault = world.fault
    world.store.faults[fault.fault_id] = (fault, [_alert(fault, AlertKind.RAISED, 50)])
    status, shown = call(api, "GET", f"/ops/v1/faults/{fault.fault_id}", VIEWER_CLAIMS)
    assert status == 200 and shown["code"] == "GroundFailure"
    assert [(a["kind"], a["published"]) for a in shown["alerts"]] == [("raised", True)]
    assert call(api, "GET", "/ops/v1/faults/ffffffffffffffffffff", VIEWER_CLAIMS)[0] == 404
    assert call(api, "GET", "/ops/v1/faults/bad%20id", VIEWER_CLAIMS)[0] == 400


def test_an_exclusion_is_audited_with_its_reason_and_note_and_can_be_withdrawn(
    api: Any, world: World
) -> None:
    fault_id = world.fault.fault_id
    path = f"/ops/v1/faults/{fault_id}/exclude"
    body = json.dumps({"reason": "utility_outage", "note": "grid down, ticket 42"})
    status, excluded = call(api, "POST", path, TECHNICIAN_CLAIMS, body=body, request_id="x-1")
    assert (status, excluded["excluded_reason"], excluded["changed"]) == (200, "utility_outage", True)
    assert world.store.faults[fault_id][0].excluded_reason == "utility_outage"
    status, cleared = call(api, "POST", path, TECHNICIAN_CLAIMS, body='{"reason": null}', request_id="x-2")
    assert (status, cleared["excluded_reason"]) == (200, None)
    records = sorted(world.audit.records.values(), key=lambda r: r.request_id)
    assert [(r.route, r.targets, r.note, r.status) for r in records] == [
        (
            "/ops/v1/faults/{fault_id}/exclude",
            {"fault_id": fault_id, "reason": "utility_outage"},
            "grid down, ticket 42",
            200,
        ),
        ("/ops/v1/faults/{fault_id}/exclude", {"fault_id": fault_id, "reason": "(cleared)"}, None, 200),
    ]


@pytest.mark.parametrize(
    "body", ['{"reason": "bad_weather"}', '{"reason": 7}', '{"reason": "vandalism", "note": 5}', "[]", ""]
)
def test_a_bad_exclusion_is_400_recorded_and_changes_nothing(api: Any, world: World, body: str) -> None:
    before = dict(world.store.faults)
    status, answer = call(
        api, "POST", f"/ops/v1/faults/{world.fault.fault_id}/exclude", TECHNICIAN_CLAIMS, body=body
    )
    assert (status, answer["error"]) == (400, "bad_request"), answer
    assert world.store.faults == before
    assert [r.status for r in world.audit.records.values()] == [400]


def test_alerts_are_the_published_ones_since_a_time_as_operators_read_them(api: Any, world: World) -> None:
    fault = world.fault
    alerts = [
        _alert(fault, AlertKind.RAISED, 50),
        _alert(fault, AlertKind.RESOLVED, 10),
        _alert(fault, AlertKind.RAISED, 1, published=False),  # not sent yet: nobody received it
    ]
    world.store.faults[fault.fault_id] = (fault, alerts)
    status, listing = call(api, "GET", "/ops/v1/alerts", VIEWER_CLAIMS)
    assert status == 200 and listing["next"] is None
    raised, resolved = listing["items"]
    assert raised == {
        "received_at": (NOW - timedelta(minutes=50)).isoformat(),
        "subject": "[SAFETY_CRITICAL] GroundFailure on CP-1 connector 1 (site S-1)",
        "message": raised["message"],
        "attributes": {"severity": "safety_critical", "kind": "raised", "fault_id": fault.fault_id},
        "kind": "raised",
        "severity": "safety_critical",
        "episode": 1,
    }
    assert "do not reset" in raised["message"]
    assert resolved["subject"].startswith("[RESOLVED] GroundFailure on CP-1")
    since = (NOW - timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
    later = call(api, "GET", "/ops/v1/alerts", VIEWER_CLAIMS, f"since={since}")[1]["items"]
    assert [a["kind"] for a in later] == ["resolved"]
    assert call(api, "GET", "/ops/v1/alerts", VIEWER_CLAIMS, "since=yesterday")[0] == 400


def test_alert_pages_follow_their_cursor_and_a_foreign_one_is_refused(api: Any, world: World) -> None:
    for minutes in (0, 5):
        fault = opened(minutes, code=f"Code{minutes}")
        world.store.faults[fault.fault_id] = (fault, [_alert(fault, AlertKind.RAISED, 30 - minutes)])
    first = call(api, "GET", "/ops/v1/alerts", VIEWER_CLAIMS, "limit=1")[1]
    rest = call(api, "GET", "/ops/v1/alerts", VIEWER_CLAIMS, f"limit=1&next={first['next']}")[1]
    assert len(first["items"] + rest["items"]) == 2 and rest["next"] is None
    status, body = call(api, "GET", "/ops/v1/alerts", VIEWER_CLAIMS, f"since=2026-11-01&next={first['next']}")
    assert (status, body["error"]) == (400, "bad_cursor")


def _connector_now(world: World, status: str, error_code: str) -> None:
    """CP-1's connector 1 as the registry has it now."""
    world.registry.statuses[("CP-1", 1)] = ConnectorStatus(
        charger_id="CP-1",
        connector_id=1,
        status=status,
        error_code=error_code,
        status_at=NOW,
        received_at=NOW,
    )


def test_fleet_health_gives_each_chargers_link_connectors_and_worst_open_fault(
    api: Any, world: World
) -> None:
    _connector_now(world, "Faulted", "GroundFailure")
    minor = opened(3, code="WeakSignal", severity=Severity.MINOR)
    world.store.faults[minor.fault_id] = (minor, [])
    status, first = call(api, "GET", "/ops/v1/fleet/health", VIEWER_CLAIMS, "limit=2")
    assert status == 200 and first["next"]
    assert first["items"][0] == {
        "charger_id": "CP-1",
        "site_id": "S-1",
        "online": False,
        "connectors": {"1": "Faulted"},
        "open_faults": {"safety_critical": 1, "minor": 1},
        "worst": "GroundFailure (connector 1)",
    }
    assert first["items"][1]["open_faults"] == {} and first["items"][1]["worst"] is None
    rest = call(api, "GET", "/ops/v1/fleet/health", VIEWER_CLAIMS, f"limit=2&next={first['next']}")[1]
    assert [r["charger_id"] for r in rest["items"]] == ["CP-3"] and rest["next"] is None


def _status(connector_id: int, status: str, hour: int, minute: int = 0) -> StatusPoint:
    at = datetime(2026, 11, 26, hour, minute, tzinfo=UTC)
    return StatusPoint(charger_id="CP-1", connector_id=connector_id, status=status, at=at)


def test_uptime_counts_outages_and_exclusions_up_to_now(api: Any, world: World) -> None:
    _connector_now(world, "Available", "NoError")
    world.history.statuses[("CP-1", 1)] = [
        _status(1, "Available", 7),
        _status(1, "Faulted", 8),
        _status(1, "Available", 8, 30),
    ]

    def report(query: str) -> list[dict[str, Any]]:
        status, listing = call(api, "GET", "/ops/v1/reports/uptime", claims_of("finance"), query)
        assert status == 200, listing
        return list(listing["items"])

    # November so far: 43200 minutes in the month, 30 of them out.
    assert report("month=2026-11") == [
        {
            "charger_id": "CP-1",
            "connector_id": 1,
            "period": "2026-11",
            "outage_min": "30.000",
            "excluded_min": "0.000",
            "uptime_percent": "99.931",
            "meets_97": True,
        }
    ]
    world.store.faults[world.fault.fault_id] = (exclude(world.fault, ExclusionReason.VANDALISM), [])
    [row] = report("month=2026-11&twelve_months=true")
    assert (row["period"], row["excluded_min"], row["uptime_percent"]) == (
        "2025-12..2026-11",
        "30.000",
        "100.000",
    )
    assert report("month=2026-10") == []  # no status in October: the connector did not exist yet


@pytest.mark.parametrize(
    ("month", "message"), [("2026-13", "YYYY-MM"), ("", "YYYY-MM"), ("2027-01", "not started")]
)
def test_a_bad_uptime_month_is_400(api: Any, world: World, month: str, message: str) -> None:
    status, body = call(api, "GET", "/ops/v1/reports/uptime", claims_of("viewer"), f"month={month}")
    assert (status, body["error"]) == (400, "bad_request") and message in body["message"]


def test_an_uptime_cursor_is_for_its_month_only(api: Any, world: World) -> None:
    first = call(api, "GET", "/ops/v1/reports/uptime", VIEWER_CLAIMS, "month=2026-11&limit=1")[1]
    assert first["next"]
    query = f"month=2026-10&limit=1&next={first['next']}"
    assert call(api, "GET", "/ops/v1/reports/uptime", VIEWER_CLAIMS, query)[1]["error"] == "bad_cursor"


# ---------------------------------------------------------------- the DynamoDB audit log (moto)


@pytest.fixture
def audit_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    previous = bound_tables()
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="Audit",
            KeySchema=[
                {"AttributeName": "day", "KeyType": "HASH"},
                {"AttributeName": "entry", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "day", "AttributeType": "S"},
                {"AttributeName": "entry", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        bind_tables(TableNames(audit="Audit", region="us-east-1"))
        try:
            yield
        finally:
            if previous is not None:
                bind_tables(previous)


def test_the_dynamodb_audit_log_writes_once_and_pages_newest_first(audit_table: None) -> None:
    from chargenet.adapters.audit_dynamodb import DynamoAuditLog

    log = DynamoAuditLog()
    operator = Operator(subject="s", username="u")
    records = [
        audit_record(
            operator,
            method="POST",
            route="/r",
            targets={},
            status=200,
            request_id=f"r-{n}",
            at=NOW + timedelta(seconds=n),
        )
        for n in range(3)
    ]
    for record in [*records, records[0]]:
        log.record(record)
    first = log.of_day("2026-11-26", 2, None)
    assert [r.request_id for r in first.items] == ["r-2", "r-1"] and first.next_key
    second = log.of_day("2026-11-26", 2, first.next_key)
    assert [r.request_id for r in second.items] == ["r-0"]
    assert log.of_day("2026-11-25", 2, None).items == []


# ---------------------------------------------------------------- operator accounts (admins)

ADMIN = claims_of("admin")


def _add(api: Any, body: Any, request_id: str = "r-add") -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, str) else json.dumps(body)
    return call(api, "POST", "/ops/v1/operators", ADMIN, body=raw, request_id=request_id)


def test_add_set_role_and_remove_are_audited_with_the_user_name_and_role(api: Any, world: World) -> None:
    status, added = _add(api, {"username": "carol", "email": "carol@example.com", "role": "finance"})
    assert status == 201 and added == {
        "username": "carol",
        "email": "carol@example.com",
        "roles": ["finance"],
    }
    body = json.dumps({"role": "viewer"})
    assert call(api, "PUT", "/ops/v1/operators/carol/role", ADMIN, body=body, request_id="r-role")[0] == 200
    assert world.directory.accounts_by_name["carol"].roles == ["viewer"]
    assert call(api, "DELETE", "/ops/v1/operators/carol", ADMIN, request_id="r-del")[0] == 200
    assert "carol" not in world.directory.accounts_by_name

    records = sorted(world.audit.records.values(), key=lambda r: r.request_id)
    assert [(r.method, r.route, r.targets, r.status) for r in records] == [
        ("POST", "/ops/v1/operators", {"username": "carol", "role": "finance"}, 201),
        ("DELETE", "/ops/v1/operators/{username}", {"username": "carol"}, 200),
        ("PUT", "/ops/v1/operators/{username}/role", {"username": "carol", "role": "viewer"}, 200),
    ]
    assert all(r.username == "ana" for r in records)


def test_the_temporary_password_is_answered_only_when_the_directory_gives_one(api: Any, world: World) -> None:
    world.directory.temporary = "Temporary-Passw0rd!"
    status, added = _add(api, {"username": "dan", "email": "dan@example.com", "role": "viewer"})
    assert status == 201 and added["temporary_password"] == "Temporary-Passw0rd!"
    assert "Temporary-Passw0rd!" not in json.dumps(
        [r.model_dump(mode="json") for r in world.audit.records.values()]
    )


@pytest.mark.parametrize(
    "body",
    [
        {"username": "bad name", "email": "x@example.com", "role": "viewer"},
        {"username": "ünï", "email": "x@example.com", "role": "viewer"},
        {"username": "a" * 65, "email": "x@example.com", "role": "viewer"},
        {"username": "x@example.com", "email": "x@example.com", "role": "viewer"},
        {"username": "erin", "email": "not-an-address", "role": "viewer"},
        {"username": "erin", "email": "x@example.com", "role": "superuser"},
        {"username": "erin", "email": "x@example.com"},
        "not json",
        "[1]",
    ],
)
def test_a_bad_add_is_400_recorded_and_creates_nothing(api: Any, world: World, body: Any) -> None:
    status, answer = _add(api, body)
    assert (status, answer["error"]) == (400, "bad_request"), answer
    assert set(world.directory.accounts_by_name) == {"bob"}
    assert [r.status for r in world.audit.records.values()] == [400]


def test_an_existing_user_name_is_409(api: Any, world: World) -> None:
    status, answer = _add(api, {"username": "bob", "email": "b2@example.com", "role": "viewer"})
    assert (status, answer["error"]) == (409, "conflict")
    assert world.directory.accounts_by_name["bob"].email == "bob@example.com"


def test_an_admin_cannot_remove_themselves(api: Any, world: World) -> None:
    world.directory.accounts_by_name["ana"] = world.directory.accounts_by_name["bob"]
    status, answer = call(api, "DELETE", "/ops/v1/operators/ana", ADMIN)
    assert (status, answer["error"]) == (409, "conflict")
    assert "ana" in world.directory.accounts_by_name


def test_an_unknown_operator_is_404(api: Any, world: World) -> None:
    assert call(api, "DELETE", "/ops/v1/operators/nobody", ADMIN)[0] == 404
    body = json.dumps({"role": "viewer"})
    assert call(api, "PUT", "/ops/v1/operators/nobody/role", ADMIN, body=body)[0] == 404
    assert call(api, "PUT", "/ops/v1/operators/bob/role", ADMIN, body='{"role": "root"}')[0] == 400


def test_operators_are_listed_page_by_page(api: Any, world: World) -> None:
    world.directory.invite("carol", "carol@example.com", Role.FINANCE)
    status, first = call(api, "GET", "/ops/v1/operators", ADMIN, query="limit=1")
    assert status == 200 and first["next"]
    assert first["items"] == [
        {
            "username": "bob",
            "email": "bob@example.com",
            "roles": ["technician"],
            "status": "CONFIRMED",
            "enabled": True,
            "created_at": NOW.isoformat(),
        }
    ]
    status, second = call(api, "GET", "/ops/v1/operators", ADMIN, query=f"limit=1&next={first['next']}")
    assert [a["username"] for a in second["items"]] == ["carol"] and second["next"] is None


# ---------------------------------------------------------------- the Cognito adapter, on moto


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(PoolName="OperatorUserPool")["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName="cli", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        for role in Role:
            cognito.create_group(UserPoolId=pool_id, GroupName=role.value)
        yield cognito, pool_id, client_id


def test_the_cognito_directory_invites_lists_changes_roles_and_removes(pool: tuple[Any, str, str]) -> None:
    from chargenet.adapters.operators_cognito import CognitoOperatorDirectory

    cognito, pool_id, client_id = pool
    directory = CognitoOperatorDirectory(pool_id, local_invitations=True, client=cognito)
    password = directory.invite("carol", "carol@example.com", Role.FINANCE)
    assert password is not None
    with pytest.raises(UsernameTaken):
        directory.invite("carol", "other@example.com", Role.VIEWER)

    challenge = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "carol", "PASSWORD": password},
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    directory.invite("dan", "dan@example.com", Role.VIEWER)
    first = directory.accounts(1, None)
    assert len(first.items) == 1 and first.next_key
    accounts = {a.username: a for a in first.items + directory.accounts(60, first.next_key).items}
    assert set(accounts) == {"carol", "dan"}
    carol = accounts["carol"]
    assert (carol.email, carol.roles, carol.status, carol.enabled) == (
        "carol@example.com",
        ["finance"],
        "FORCE_CHANGE_PASSWORD",
        True,
    )

    assert directory.set_role("carol", Role.VIEWER)
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username="carol")["Groups"]
    assert [g["GroupName"] for g in groups] == ["viewer"]
    assert not directory.set_role("nobody", Role.VIEWER)

    assert directory.remove("carol") and not directory.remove("carol")
    assert {a.username for a in directory.accounts(60, None).items} == {"dan"}


def test_the_cloud_directory_has_cognito_email_the_invitation() -> None:
    from chargenet.adapters.operators_cognito import CognitoOperatorDirectory

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def __getattr__(self, name: str) -> Any:
            return lambda **kwargs: self.calls.append((name, kwargs)) or {}

    recorder = Recorder()
    assert (
        CognitoOperatorDirectory("pool", client=recorder).invite("carol", "c@example.com", Role.ADMIN) is None
    )
    (create, created), (add, added) = recorder.calls
    assert create == "admin_create_user" and created["DesiredDeliveryMediums"] == ["EMAIL"]
    assert "TemporaryPassword" not in created and "MessageAction" not in created
    assert {"Name": "email_verified", "Value": "true"} in created["UserAttributes"]
    assert (add, added["GroupName"]) == ("admin_add_user_to_group", "admin")


def test_cognito_failures_are_store_unavailable() -> None:
    from botocore.exceptions import ClientError

    from chargenet.adapters.operators_cognito import CognitoOperatorDirectory
    from chargenet.ports.errors import StoreUnavailable

    class Throttled:
        def list_users(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "TooManyRequestsException"}}, "ListUsers")

    with pytest.raises(StoreUnavailable):
        CognitoOperatorDirectory("pool", client=Throttled()).accounts(10, None)


def test_the_template_never_sets_local_invitations() -> None:
    template = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    assert "CHARGENET_LOCAL_INVITATIONS" not in template
    assert "OPERATOR_USER_POOL_ID: !Ref OperatorUserPool" in template
