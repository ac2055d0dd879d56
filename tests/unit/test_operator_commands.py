"""The operator API's commands, diagnostics and firmware routes (OperatorCommandsFunction): every
route's permission, the audit trail of each change, bad input, cursors, rollouts.

The handler runs on API Gateway HTTP API v2 events carrying the JWT authorizer's claims; its
service is on in-memory fakes behind the ports (the IoT job document is the real one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chargenet.domain.firmware import Execution, Release, in_rollout, package_key
from chargenet.domain.models import PendingCall
from chargenet.domain.operators import Role
from chargenet.ports.audit import Key, Page
from chargenet.ports.firmware import StoredFile, StoredRelease
from chargenet.services.commands import ChargerCommands, request_id
from chargenet.services.operator_access import OperatorAccess
from chargenet.services.operator_commands import FirmwareSettings, OperatorCommands
from chargenet_local.template import _CfnLoader
from tests.fakes import InMemoryPendingCalls, InMemoryRegistry, RecordingChannel
from tests.unit.handler_modules import imported_handler
from tests.unit.operator_sign_outs import checked_in_memory
from tests.unit.test_operator_api import NOW, SECRET, MemoryAuditLog, call, claims_of

ROOT = Path(__file__).resolve().parents[2]
FILE = "20261126T085000Z.log"
JOBS_ROLE = "arn:aws:iam::123456789012:role/FirmwareJobsRole"


class PagedPendingCalls(InMemoryPendingCalls):
    def page_of_charger(
        self, charger_id: str, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[PendingCall], dict[str, Any] | None]:
        ids = sorted(m for c, m in self.calls if c == charger_id and (not start or m > start["message_id"]))
        page = ids[:limit]
        calls = [c for m in page if (c := self.get(charger_id, m))]
        return calls, {"charger_id": charger_id, "message_id": page[-1]} if len(ids) > limit else None


class FakeDiagnostics:
    def __init__(self) -> None:
        self.uploads: dict[str, int] = {}

    def upload_url(self, key: str) -> str:
        return f"https://diagnostics.example/{key}?X-Amz-Signature=secret"

    def files(self, prefix: str, limit: int, start: Key | None) -> Page[StoredFile]:
        keys = sorted(k for k in self.uploads if k.startswith(prefix) and (not start or k > start["token"]))
        page = keys[:limit]
        found = [StoredFile(k, self.uploads[k], NOW.isoformat()) for k in page]
        return Page(found, {"token": page[-1]} if len(keys) > limit else None)

    def file(self, key: str) -> StoredFile | None:
        return StoredFile(key, self.uploads[key], NOW.isoformat()) if key in self.uploads else None

    def download_url(self, key: str) -> str:
        return f"https://diagnostics.example/{key}?X-Amz-Expires=300"


class FakePackages:
    def __init__(self) -> None:
        self.stored: dict[str, StoredRelease] = {}
        self.forced_versions: set[str] = set()

    def release(self, version: str) -> StoredRelease | None:
        return self.stored.get(version)

    def releases(self, limit: int, start: Key | None) -> Page[Release]:
        versions = sorted(v for v in self.stored if not start or v > start["token"])
        page = versions[:limit]
        return Page(
            [self.stored[v].release for v in page], {"token": page[-1]} if len(versions) > limit else None
        )

    def has_version(self, key: str, version_id: str) -> bool:
        return key.endswith("/forced-package") and version_id in self.forced_versions


class FakeRollouts:
    def __init__(self, things: set[str]) -> None:
        self.things = things
        self.created: list[dict[str, Any]] = []

    def thing_arns(self, charger_ids: list[str]) -> list[str]:
        missing = [c for c in charger_ids if c not in self.things]
        if missing:
            raise LookupError(", ".join(missing))
        return [f"arn:aws:iot:us-east-1:123456789012:thing/{c}" for c in charger_ids]

    def create(
        self, job: str, document: dict[str, Any], targets: list[str], role_arn: str, max_per_minute: int
    ) -> None:
        self.created.append(
            {"job": job, "document": document, "targets": targets, "role": role_arn, "rate": max_per_minute}
        )

    def executions(
        self, version: str | None, limit: int, token: str | None
    ) -> tuple[list[Execution], str | None]:
        found = [
            Execution(
                "CP-1",
                "1.1.0",
                "firmware-1_1_0-1",
                "2026-11-26T08:00:00+00:00",
                False,
                "IN_PROGRESS",
                {"firmwareStatus": "Installing"},
                "2026-11-26T08:00:01+00:00",
            ),
        ]
        return [e for e in found if version in (None, e.version)], None


def release(version: str, expires_at: str = "") -> StoredRelease:
    return StoredRelease(
        Release(version, "ab" * 32, 1234, "cd" * 32, "2026-11-20T09:00:00+00:00", "ACME", "W1", expires_at),
        f"v-{version}",
    )


class World:
    def __init__(self) -> None:
        self.registry = InMemoryRegistry()
        for n in range(1, 21):
            self.registry.add(f"CP-{n}", NOW - timedelta(days=3), site_id="S-1")
        self.pending = PagedPendingCalls()
        self.channel = RecordingChannel()
        self.audit = MemoryAuditLog()
        self.diagnostics = FakeDiagnostics()
        self.diagnostics.uploads[f"diagnostics/CP-1/{FILE}"] = 2048
        self.packages = FakePackages()
        self.packages.stored["1.1.0"] = release("1.1.0")
        self.rollouts = FakeRollouts({f"CP-{n}" for n in range(1, 21)})
        ids = iter(f"m-{n:04d}" for n in range(1000))
        commands = ChargerCommands(self.registry, self.pending, self.channel, lambda: NOW, lambda: next(ids))
        self.pending.add("CP-1", "m-old", "Reset", {"type": "Soft"}, NOW - timedelta(minutes=5))
        self.service = OperatorCommands(
            access=OperatorAccess(self.audit, lambda: SECRET),
            commands=commands,
            history=self.pending,
            diagnostics=self.diagnostics,
            packages=self.packages,
            rollouts=self.rollouts,
            firmware=FirmwareSettings("fw-bucket", "eu-west-1", JOBS_ROLE),
            clock=lambda: NOW,
        )

    def snapshot(self) -> Any:
        return (
            {k: dict(v) for k, v in self.pending.calls.items()},
            list(self.channel.sent),
            dict(self.audit.records),
            list(self.rollouts.created),
        )


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    yield from imported_handler("operator_commands")


@pytest.fixture
def world(api: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(api, "operator_commands", lambda: world.service)
    checked_in_memory(api, monkeypatch)
    return world


# ---------------------------------------------------------------- every route x every role
READ = {Role.ADMIN, Role.TECHNICIAN, Role.VIEWER}
SEND = {Role.ADMIN, Role.TECHNICIAN}
ROUTES = {
    "POST /ops/v1/chargers/{charger_id}/commands": SEND,
    "GET /ops/v1/chargers/{charger_id}/commands": READ,
    "GET /ops/v1/chargers/{charger_id}/commands/{message_id}": READ,
    "POST /ops/v1/chargers/{charger_id}/commands/{message_id}/timeout": SEND,
    "POST /ops/v1/chargers/{charger_id}/diagnostics": SEND,
    "GET /ops/v1/chargers/{charger_id}/diagnostics": SEND,
    "GET /ops/v1/chargers/{charger_id}/diagnostics/{name}": SEND,
    "GET /ops/v1/firmware/releases": READ,
    "GET /ops/v1/firmware/releases/{version}": READ,
    "POST /ops/v1/firmware/releases/{version}": {Role.ADMIN},
    "POST /ops/v1/firmware/deployments": {Role.ADMIN},
    "GET /ops/v1/firmware/status": READ,
}
BODIES = {
    "POST /ops/v1/chargers/{charger_id}/commands": {"action": "Reset", "payload": {"type": "Soft"}},
    "POST /ops/v1/firmware/deployments": {"version": "1.1.0", "chargers": ["CP-1", "CP-2"]},
}
TARGETS = {
    "POST /ops/v1/chargers/{charger_id}/commands": {
        "charger_id": "CP-1",
        "action": "Reset",
        "message_id": "m-0000",
    },
    "POST /ops/v1/chargers/{charger_id}/commands/{message_id}/timeout": {
        "charger_id": "CP-1",
        "message_id": "m-old",
    },
    "POST /ops/v1/chargers/{charger_id}/diagnostics": {
        "charger_id": "CP-1",
        "action": "GetDiagnostics",
        "message_id": "m-0000",
    },
    "POST /ops/v1/firmware/releases/{version}": {"version": "1.1.0"},
}


def route_call(api: Any, route: str, claims: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    method, path = route.split(" ", 1)
    for name, value in {
        "charger_id": "CP-1",
        "message_id": "m-old",
        "name": FILE,
        "version": "1.1.0",
    }.items():
        path = path.replace("{" + name + "}", value)
    body = json.dumps(BODIES[route]) if route in BODIES else None
    return call(api, method, path, claims, body=body)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_routes_permission(api: Any, world: World, route: str, role: Role) -> None:
    before = world.snapshot()
    status, body = route_call(api, route, claims_of(role.value))

    if role in ROUTES[route]:
        assert status in (200, 201), body
    else:
        assert (status, body["error"]) == (403, "forbidden")
        assert world.snapshot() == before, "a refused request changes nothing and is not audited"


@pytest.mark.parametrize("route", sorted(r for r in ROUTES if r.startswith("POST")))
def test_each_change_is_audited_once_with_its_targets(api: Any, world: World, route: str) -> None:
    status, _ = route_call(api, route, claims_of("admin"))

    [record] = world.audit.records.values()
    assert (record.status, record.username, record.route) == (status, "ana", route.split(" ", 1)[1])
    expected = TARGETS.get(route)
    if expected is not None:
        assert record.targets == expected


def test_reads_are_not_audited(api: Any, world: World) -> None:
    for route in (r for r in ROUTES if r.startswith("GET")):
        route_call(api, route, claims_of("admin"))
    assert world.audit.records == {}


def test_without_claims_every_route_is_401(api: Any, world: World) -> None:
    for route in ROUTES:
        status, body = route_call(api, route, None)
        assert (status, body["error"]) == (401, "unauthorized"), route


def test_the_template_routes_exactly_these_to_the_function() -> None:
    document = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    events = document["Resources"]["OperatorCommandsFunction"]["Properties"]["Events"].values()
    routed = {f"{e['Properties']['Method']} {e['Properties']['Path']}" for e in events}
    assert routed == set(ROUTES)
    assert all(e["Properties"]["Auth"] == {"Authorizer": "OperatorJwt"} for e in events)


# ---------------------------------------------------------------- commands
def test_a_command_is_sent_the_way_the_backend_calls_a_charger(api: Any, world: World) -> None:
    status, sent = route_call(api, "POST /ops/v1/chargers/{charger_id}/commands", claims_of("technician"))

    assert status == 201
    assert (sent["action"], sent["message_id"], sent["outcome"], sent["upload_key"]) == (
        "Reset",
        "m-0000",
        None,
        None,
    )
    [(charger_id, frame)] = world.channel.sent
    assert charger_id == "CP-1" and json.loads(frame) == [2, "m-0000", "Reset", {"type": "Soft"}]
    assert world.pending.get("CP-1", "m-0000") is not None


def test_the_answer_is_read_back_and_a_silent_charger_is_recorded_as_timed_out(
    api: Any, world: World
) -> None:
    world.pending.resolve("CP-1", "m-old", {"result": {"status": "Accepted"}}, NOW)
    status, answered = call(api, "GET", "/ops/v1/chargers/CP-1/commands/m-old", claims_of("viewer"))
    assert (status, answered["outcome"]) == (200, {"result": {"status": "Accepted"}})

    route_call(api, "POST /ops/v1/chargers/{charger_id}/commands", claims_of("admin"))
    status, timed_out = call(api, "POST", "/ops/v1/chargers/CP-1/commands/m-0000/timeout", claims_of("admin"))
    assert (status, timed_out["outcome"]) == (200, {"timeout": True})
    status, kept = call(api, "POST", "/ops/v1/chargers/CP-1/commands/m-old/timeout", claims_of("admin"))
    assert kept["outcome"] == {"result": {"status": "Accepted"}}  # an answered call stays answered


def test_get_diagnostics_without_a_location_uploads_through_a_presigned_url(api: Any, world: World) -> None:
    body = json.dumps({"action": "GetDiagnostics", "payload": {}})
    status, sent = call(api, "POST", "/ops/v1/chargers/CP-1/commands", claims_of("admin"), body=body)

    assert status == 201
    assert sent["upload_key"] == "diagnostics/CP-1/20261126T090000Z.log"
    [(_, frame)] = world.channel.sent
    assert "X-Amz-Signature=secret" in json.loads(frame)[3]["location"]  # the charger gets it whole
    assert "secret" not in json.dumps(sent)  # the history and the answer never hold the signature


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/ops/v1/chargers/CP-1/commands", "not json", 400),
        ("/ops/v1/chargers/CP-1/commands", json.dumps({"action": "Reset", "payload": []}), 400),
        ("/ops/v1/chargers/CP-1/commands", json.dumps({"action": "SelfDestruct"}), 400),
        (
            "/ops/v1/chargers/CP-1/commands",
            json.dumps({"action": "Reset", "payload": {"type": "Hard!"}}),
            400,
        ),
        ("/ops/v1/chargers/CP-1/commands", json.dumps({"action": "Reset", "extra": 1}), 400),
        (
            "/ops/v1/chargers/no%20such/commands",
            json.dumps({"action": "Reset", "payload": {"type": "Soft"}}),
            400,
        ),
        (
            "/ops/v1/chargers/CP-99/commands",
            json.dumps({"action": "Reset", "payload": {"type": "Soft"}}),
            404,
        ),
    ],
)
def test_bad_commands_are_refused_sent_nowhere_and_audited(
    api: Any, world: World, path: str, body: str, status: int
) -> None:
    answered, error = call(api, "POST", path, claims_of("technician"), body=body)

    assert answered == status and set(error) == {"error", "message"}
    assert world.channel.sent == []
    [record] = world.audit.records.values()
    assert record.status == status


def test_the_history_is_paged_with_a_signed_cursor(api: Any, world: World) -> None:
    for _ in range(3):
        route_call(api, "POST /ops/v1/chargers/{charger_id}/commands", claims_of("admin"))
    status, first = call(api, "GET", "/ops/v1/chargers/CP-1/commands", claims_of("viewer"), "limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["next"]
    status, rest = call(
        api, "GET", "/ops/v1/chargers/CP-1/commands", claims_of("viewer"), f"limit=2&next={first['next']}"
    )
    assert {c["message_id"] for c in first["items"] + rest["items"]} == {
        "m-old",
        "m-0000",
        "m-0001",
        "m-0002",
    }

    tampered = first["next"][:-2] + ("AA" if not first["next"].endswith("AA") else "BB")
    status, error = call(
        api, "GET", "/ops/v1/chargers/CP-1/commands", claims_of("viewer"), f"next={tampered}"
    )
    assert (status, error["error"]) == (400, "bad_cursor")
    status, error = call(
        api, "GET", "/ops/v1/chargers/CP-2/commands", claims_of("viewer"), f"next={first['next']}"
    )
    assert (status, error["error"]) == (400, "bad_cursor")  # another charger's cursor


# ---------------------------------------------------------------- diagnostics
def test_a_file_is_handed_out_as_a_short_lived_url_and_an_oversized_one_is_refused(
    api: Any, world: World
) -> None:
    status, found = call(api, "GET", f"/ops/v1/chargers/CP-1/diagnostics/{FILE}", claims_of("technician"))
    assert status == 200 and found["bytes"] == 2048 and "X-Amz-Expires=300" in found["url"]

    world.diagnostics.uploads[f"diagnostics/CP-1/{FILE}"] = 16 * 1024 * 1024 + 1
    status, error = call(api, "GET", f"/ops/v1/chargers/CP-1/diagnostics/{FILE}", claims_of("technician"))
    assert status == 409 and "over the 16777216-byte limit" in error["message"]

    status, _ = call(api, "GET", "/ops/v1/chargers/CP-1/diagnostics/20200101T000000Z.log", claims_of("admin"))
    assert status == 404
    status, _ = call(api, "GET", "/ops/v1/chargers/CP-1/diagnostics/..%2Fsecret", claims_of("admin"))
    assert status in (400, 404)


def test_the_files_are_listed_a_page_at_a_time(api: Any, world: World) -> None:
    world.diagnostics.uploads["diagnostics/CP-1/20261126T095000Z.log"] = 10
    world.diagnostics.uploads["diagnostics/CP-10/20261126T095000Z.log"] = 10  # another charger's prefix
    _, first = call(api, "GET", "/ops/v1/chargers/CP-1/diagnostics", claims_of("admin"), "limit=1")
    _, rest = call(
        api, "GET", "/ops/v1/chargers/CP-1/diagnostics", claims_of("admin"), f"next={first['next']}"
    )

    assert [f["name"] for f in first["items"] + rest["items"]] == [FILE, "20261126T095000Z.log"]
    assert rest["next"] is None


# ---------------------------------------------------------------- OCPP 2.0.1 chargers
def speaking_2_0_1(world: World, charger_id: str = "CP-2") -> str:
    world.registry._update(charger_id, ocpp_version="ocpp2.0.1")
    return charger_id


def test_a_2_0_1_charger_gets_get_base_report_and_its_command_record_is_2_0_1(api: Any, world: World) -> None:
    speaking_2_0_1(world)
    body = json.dumps({"action": "GetBaseReport", "payload": {"requestId": 1, "reportBase": "FullInventory"}})
    status, sent = call(api, "POST", "/ops/v1/chargers/CP-2/commands", claims_of("technician"), body=body)

    assert (status, sent["action"], sent["payload"]) == (
        201,
        "GetBaseReport",
        {"requestId": 1, "reportBase": "FullInventory"},
    )
    [(charger_id, frame)] = world.channel.sent
    assert (charger_id, json.loads(frame)[2]) == ("CP-2", "GetBaseReport")


@pytest.mark.parametrize(
    ("charger_id", "action", "payload", "message"),
    [
        ("CP-2", "GetDiagnostics", {}, "CP-2 speaks OCPP 2.0.1: send GetLog instead of GetDiagnostics"),
        ("CP-2", "Reset", {"type": "Soft"}, "Reset payload refused by the OCPP 2.0.1 schema"),
        ("CP-1", "GetVariables", {"getVariableData": []}, "CP-1 speaks OCPP 1.6: send GetConfiguration"),
    ],
)
def test_a_command_in_the_other_version_is_a_400_naming_the_right_one(
    api: Any, world: World, charger_id: str, action: str, payload: dict[str, Any], message: str
) -> None:
    speaking_2_0_1(world)
    body = json.dumps({"action": action, "payload": payload})
    status, error = call(
        api, "POST", f"/ops/v1/chargers/{charger_id}/commands", claims_of("admin"), body=body
    )

    assert status == 400 and message in error["message"]
    assert world.channel.sent == [] and world.diagnostics.uploads.keys() == {f"diagnostics/CP-1/{FILE}"}
    [record] = world.audit.records.values()
    assert (record.status, record.targets["action"]) == (400, action)


def test_diagnostics_for_a_2_0_1_charger_are_get_log_with_a_presigned_url(api: Any, world: World) -> None:
    speaking_2_0_1(world)
    status, sent = call(api, "POST", "/ops/v1/chargers/CP-2/diagnostics", claims_of("technician"))

    assert (status, sent["action"], sent["upload_key"]) == (
        201,
        "GetLog",
        "diagnostics/CP-2/20261126T090000Z.log",
    )
    [(_, frame)] = world.channel.sent
    get_log = json.loads(frame)[3]
    assert (get_log["logType"], get_log["requestId"]) == ("DiagnosticsLog", request_id(sent["upload_key"]))
    assert "X-Amz-Signature=secret" in get_log["log"]["remoteLocation"]  # the charger gets it whole
    assert "secret" not in json.dumps(sent)
    [record] = world.audit.records.values()
    assert record.targets == {"charger_id": "CP-2", "action": "GetLog", "message_id": "m-0000"}


def test_get_log_without_a_log_uploads_through_a_presigned_url(api: Any, world: World) -> None:
    speaking_2_0_1(world)
    body = json.dumps({"action": "GetLog", "payload": {"logType": "SecurityLog", "requestId": 5}})
    status, sent = call(api, "POST", "/ops/v1/chargers/CP-2/commands", claims_of("admin"), body=body)

    assert (status, sent["upload_key"]) == (201, "diagnostics/CP-2/20261126T090000Z.log")
    assert sent["payload"] == {
        "logType": "SecurityLog",
        "requestId": 5,
        "log": {"remoteLocation": "https://diagnostics.example/diagnostics/CP-2/20261126T090000Z.log"},
    }


# ---------------------------------------------------------------- firmware
def test_a_deployment_is_one_job_for_the_chargers_in_the_rollout(api: Any, world: World) -> None:
    fleet = [f"CP-{n}" for n in range(1, 21)]
    body = json.dumps({"version": "1.1.0", "chargers": fleet, "rollout_percent": 30, "max_per_minute": 7})
    status, deployed = call(api, "POST", "/ops/v1/firmware/deployments", claims_of("admin"), body=body)

    assert status == 201
    expected = sorted(c for c in fleet if in_rollout(c, "1.1.0", 30))
    assert deployed["chargers"] == expected and 0 < len(expected) < len(fleet)
    [job] = world.rollouts.created
    assert (job["role"], job["rate"], len(job["targets"])) == (JOBS_ROLE, 7, len(expected))
    assert job["document"]["version"] == "1.1.0" and not job["document"]["force"]
    assert "fw-bucket/firmware/1.1.0/package%3FversionId%3Dv-1.1.0" in job["document"]["location"]
    [record] = world.audit.records.values()
    assert record.targets["version"] == "1.1.0" and record.targets["job_id"] == job["job"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"version": "1.1.0", "chargers": ["CP-1", "CP-99"]}, 400, "no charger CP-99"),
        ({"version": "9.9.9", "chargers": ["CP-1"]}, 404, "no firmware 9.9.9"),
        ({"version": "v1", "chargers": ["CP-1"]}, 400, "semantic version"),
        ({"version": "1.1.0", "chargers": []}, 400, "list of charger ids"),
        ({"version": "1.1.0", "chargers": ["CP-1"], "rollout_percent": 0}, 400, "rollout_percent"),
        ({"version": "1.1.0", "chargers": ["CP-1"], "force": True}, 400, "forced package"),
        (
            {"version": "1.1.0", "chargers": ["CP-1"], "force": True, "forced_package_version": "x"},
            400,
            "forced",
        ),
        ({"version": "1.1.0", "chargers": ["CP-1"], "sign": True}, 400, "unknown fields"),
    ],
)
def test_a_bad_deployment_creates_no_job(
    api: Any, world: World, body: dict[str, Any], status: int, message: str
) -> None:
    answered, error = call(
        api, "POST", "/ops/v1/firmware/deployments", claims_of("admin"), body=json.dumps(body)
    )

    assert answered == status and message in error["message"]
    assert world.rollouts.created == []


def test_an_expired_release_or_a_charger_without_a_thing_creates_no_job(api: Any, world: World) -> None:
    world.packages.stored["1.0.0"] = release("1.0.0", expires_at=(NOW - timedelta(days=1)).isoformat())
    body = {"version": "1.0.0", "chargers": ["CP-1"]}
    status, error = call(
        api, "POST", "/ops/v1/firmware/deployments", claims_of("admin"), body=json.dumps(body)
    )
    assert status == 409 and "expired" in error["message"]

    world.rollouts.things.discard("CP-1")
    body = {"version": "1.1.0", "chargers": ["CP-1"]}
    status, error = call(
        api, "POST", "/ops/v1/firmware/deployments", claims_of("admin"), body=json.dumps(body)
    )
    assert status == 400 and "provision it first" in error["message"]
    assert world.rollouts.created == []


def test_a_forced_deployment_pins_the_forced_package_the_operator_signed(api: Any, world: World) -> None:
    world.packages.forced_versions.add("forced-v7")
    body = {"version": "1.1.0", "chargers": ["CP-1"], "force": True, "forced_package_version": "forced-v7"}
    status, deployed = call(
        api, "POST", "/ops/v1/firmware/deployments", claims_of("admin"), body=json.dumps(body)
    )

    assert status == 201 and deployed["force"] is True
    [job] = world.rollouts.created
    assert package_key("1.1.0", force=True) in job["document"]["location"]
    assert "versionId%3Dforced-v7" in job["document"]["location"]


def test_status_reads_the_executions_with_the_chargers_running_version(api: Any, world: World) -> None:
    world.registry.chargers["CP-1"] = world.registry.chargers["CP-1"].model_copy(
        update={"firmware_version": "1.0.0", "firmware_status": "InstallRebooting"}
    )
    status, page = call(api, "GET", "/ops/v1/firmware/status", claims_of("viewer"), "version=1.1.0")

    assert status == 200 and page["next"] is None
    [record] = page["items"]
    assert (record["state"], record["running_version"], record["firmware_status"]) == (
        "installing",
        "1.0.0",
        "Installing",
    )
    assert record["charger_firmware_status"] == "InstallRebooting"  # its own word, 2.0.1's


def test_releases_are_listed_and_registered(api: Any, world: World) -> None:
    status, listed = call(api, "GET", "/ops/v1/firmware/releases", claims_of("viewer"))
    assert status == 200 and [r["version"] for r in listed["items"]] == ["1.1.0"]

    status, error = call(api, "POST", "/ops/v1/firmware/releases/2.0.0", claims_of("admin"))
    assert status == 404 and "firmware publish" in error["message"]
    [record] = world.audit.records.values()
    assert (record.status, record.targets) == (404, {"version": "2.0.0"})
