"""The operator API's chargers routes: provision from a CSR, certificates, revoke, rotate, sites,
claim certificates and the factory allow-list; every route for every role, the audit trail, bad
input, cursors.

The handler (functions/operator_chargers) runs on API Gateway HTTP API v2 events with the JWT
authorizer's claims; its service on in-memory fakes, certificates signed by a throwaway local CA.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from chargenet.domain.certificates import CertificateStatus, ChargerCertificate
from chargenet.domain.models import SessionRecord, TagStatus
from chargenet.domain.ocpp201_messages import DeviceModel, DeviceModelEntry
from chargenet.domain.operators import Role
from chargenet.domain.provisioning import CLAIM_COMMON_NAME, AllowedSerial
from chargenet.domain.sessions import EventKind, SessionEvent
from chargenet.ports.audit import Key, Page
from chargenet.ports.provisioning import IssuedClaimCertificate, NotAClaimCertificate, UnknownCertificate
from chargenet.services.operator_access import OperatorAccess
from chargenet.services.operator_chargers import ChargerAdministration
from chargenet_local.pki import LocalCA
from chargenet_shim.keystore import FileKeyStore
from tests.fakes import InMemoryRegistry, InMemorySessionStore
from tests.unit.handler_modules import imported_handler
from tests.unit.operator_sign_outs import checked_in_memory
from tests.unit.test_operator_api import NOW, SECRET, MemoryAuditLog, call, claims_of

BATCH = "ab" * 32
CLAIM_ID = "cd" * 32  # a claim certificate issued before each test
TEMPLATE = "chargenet-chargers"


class Registry(InMemoryRegistry):
    def register(
        self,
        charger_id: str,
        site_id: str,
        at: datetime,
        rated_power_w: int | None = None,
        certificate_not_after: datetime | None = None,
        time_zone: str | None = None,
    ) -> bool:
        if charger_id in self.chargers:
            return False
        self.add(charger_id, at, site_id, time_zone)
        self._update(charger_id, rated_power_w=rated_power_w, certificate_not_after=certificate_not_after)
        return True

    def record_revocation(self, charger_id: str, at: datetime, reason: str | None) -> None:
        self._update(charger_id, revoked_at=at, revocation_reason=reason)

    def site_time_zone(self, site_id: str) -> str | None:
        return self.site_zones.get(site_id)

    def set_site_time_zone(self, site_id: str, time_zone: str) -> None:
        self.site_zones[site_id] = time_zone


class Identities:
    """IoT's registry: things, certificates signed by a local CA, their statuses."""

    def __init__(self, ca: LocalCA) -> None:
        self.ca = ca
        self.things: dict[str, str] = {}
        self.certificates: dict[str, list[ChargerCertificate]] = {}
        self.revoked: list[str] = []

    def create_thing(self, charger_id: str, site_id: str) -> None:
        self.things[charger_id] = site_id

    def issue(self, charger_id: str, csr_pem: str) -> ChargerCertificate:
        pem = self.ca.sign_csr(csr_pem, expected_cn=charger_id).pem
        der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
        issued = ChargerCertificate(hashlib.sha256(der).hexdigest(), pem, CertificateStatus.ACTIVE, NOW)
        self.certificates.setdefault(charger_id, []).append(issued)
        return issued

    def certificates_of(self, charger_id: str) -> list[ChargerCertificate]:
        return list(self.certificates.get(charger_id, []))

    def _set(self, certificate_id: str, status: CertificateStatus) -> None:
        for charger_id, found in self.certificates.items():
            self.certificates[charger_id] = [
                replace(c, status=status) if c.certificate_id == certificate_id else c for c in found
            ]

    def retire(self, certificate_id: str) -> None:
        self._set(certificate_id, CertificateStatus.INACTIVE)

    def revoke(self, charger_id: str, certificate_id: str) -> None:
        self._set(certificate_id, CertificateStatus.REVOKED)
        self.revoked.append(certificate_id)
        self.certificates[charger_id] = [
            c for c in self.certificates[charger_id] if c.certificate_id != certificate_id
        ]

    def broker(self) -> dict[str, Any]:
        return {"mqtt_host": "abc-ats.iot.example", "mqtt_port": 8883, "ingest_rule": "ocpp_ingest"}


def certificate_id(pem: str) -> str:
    """As IoT's: the SHA-256 of the DER."""
    return hashlib.sha256(x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)).hexdigest()


class Claims:
    """IoT's registry for claim certificates: signed by the local CA, a status each; the chargers'
    certificates (Identities) exist there too, without the claim policy."""

    def __init__(self, ca: LocalCA, identities: Identities) -> None:
        self.ca = ca
        self.identities = identities
        self.status: dict[str, str] = {CLAIM_ID: "ACTIVE"}

    def issue(self, csr_pem: str) -> IssuedClaimCertificate:
        pem = self.ca.sign_csr(csr_pem, expected_cn=CLAIM_COMMON_NAME).pem
        self.status[certificate_id(pem)] = "ACTIVE"
        return IssuedClaimCertificate(certificate_id(pem), pem)

    def revoke(self, certificate_id: str) -> None:
        chargers = {c.certificate_id for found in self.identities.certificates.values() for c in found}
        if certificate_id in chargers:
            raise NotAClaimCertificate(certificate_id)
        if certificate_id not in self.status:
            raise UnknownCertificate(certificate_id)
        self.status[certificate_id] = "REVOKED"


class AllowList:
    def __init__(self) -> None:
        self.entries: dict[str, AllowedSerial] = {}

    def allow(self, serial_number: str, site_id: str, at: datetime, claim_certificate_id: str) -> bool:
        if serial_number in self.entries:
            return False
        self.entries[serial_number] = AllowedSerial(
            serial_number, site_id, at, claim_certificate_id=claim_certificate_id
        )
        return True

    def page(self, limit: int, start: Key | None) -> Page[AllowedSerial]:
        names = sorted(n for n in self.entries if not start or n > start["serial_number"])
        page = names[:limit]
        more = {"serial_number": page[-1]} if len(names) > limit else None
        return Page([self.entries[n] for n in page], more)


class World:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.registry = Registry()
        self.identities = Identities(LocalCA(folder / "ca").ensure())
        self.claims = Claims(self.identities.ca, self.identities)
        self.sessions = InMemorySessionStore()
        self.allow_list = AllowList()
        self.audit = MemoryAuditLog()
        self.service = ChargerAdministration(
            access=OperatorAccess(self.audit, lambda: SECRET),
            registry=self.registry,
            identities=self.identities,  # type: ignore[arg-type]
            sessions=self.sessions,
            allow_list=self.allow_list,
            claims=self.claims,
            provisioning_template=TEMPLATE,
            deployment_time_zone="UTC",
            clock=lambda: NOW,
        )
        self.provisioned("CP-1", "S-1")

    def csr(self, charger_id: str) -> str:
        return FileKeyStore(self.folder / "keys" / charger_id).create_pending_csr(charger_id)

    def claim_csr(self) -> str:
        return FileKeyStore(self.folder / "claim").create_pending_csr(CLAIM_COMMON_NAME)

    def provisioned(self, charger_id: str, site: str) -> None:
        self.registry.add(charger_id, NOW - timedelta(days=3), site_id=site)
        self.identities.create_thing(charger_id, site)
        self.identities.issue(charger_id, self.csr(charger_id))

    def snapshot(self) -> Any:
        return (
            dict(self.registry.chargers),
            dict(self.registry.site_zones),
            {k: list(v) for k, v in self.identities.certificates.items()},
            dict(self.identities.things),
            dict(self.allow_list.entries),
            dict(self.claims.status),
            dict(self.audit.records),
            {k: dict(v) for k, v in self.sessions.event_log.items()},
        )


@pytest.fixture(scope="module")
def app() -> Iterator[Any]:
    yield from imported_handler("operator_chargers")


@pytest.fixture
def world(app: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    world = World(tmp_path)
    monkeypatch.setattr(app, "charger_administration", lambda: world.service)
    checked_in_memory(app, monkeypatch)
    return world


def provision_body(world: World, charger_id: str = "CP-new", **extra: Any) -> str:
    return json.dumps({"charger_id": charger_id, "site": "S-1", "csr": world.csr(charger_id), **extra})


# route -> (method, path, body maker, permission's writers or readers)
WRITERS = {Role.ADMIN, Role.TECHNICIAN}
READERS = {Role.ADMIN, Role.TECHNICIAN, Role.VIEWER}
ROUTES: dict[str, tuple[str, str, Any, set[Role], int]] = {
    "provision": ("POST", "/ops/v1/chargers", provision_body, WRITERS, 201),
    "certificates": ("GET", "/ops/v1/chargers/CP-1/certificates", None, READERS, 200),
    "revoke": ("POST", "/ops/v1/chargers/CP-1/revoke", lambda w: '{"reason": "stolen"}', WRITERS, 200),
    "rotate": (
        "POST",
        "/ops/v1/chargers/CP-1/rotate",
        lambda w: json.dumps({"csr": w.csr("CP-1")}),
        WRITERS,
        200,
    ),
    "site": ("GET", "/ops/v1/sites/S-1", None, READERS, 200),
    "site_time_zone": (
        "PUT",
        "/ops/v1/sites/S-1/time-zone",
        lambda w: '{"time_zone": "Europe/Stockholm"}',
        WRITERS,
        200,
    ),
    "allow": (
        "POST",
        "/ops/v1/provisioning/serials",
        lambda w: json.dumps({"serials": ["SN-1"], "claim_certificate_id": BATCH}),
        WRITERS,
        200,
    ),
    "serials": ("GET", "/ops/v1/provisioning/serials", None, READERS, 200),
    "issue_claim_certificate": (
        "POST",
        "/ops/v1/provisioning/claim-certificates",
        lambda w: json.dumps({"csr": w.claim_csr()}),
        WRITERS,
        201,
    ),
    "revoke_claim_certificate": (
        "POST",
        f"/ops/v1/provisioning/claim-certificates/{CLAIM_ID}/revoke",
        None,
        WRITERS,
        200,
    ),
}


def route_call(
    app: Any, world: World, route: str, claims: dict[str, Any] | None
) -> tuple[int, dict[str, Any]]:
    method, path, body, _, _ = ROUTES[route]
    return call(app, method, path, claims, body=body(world) if body else None)


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("role", list(Role))
def test_every_routes_permission(app: Any, world: World, route: str, role: Role) -> None:
    _, _, _, allowed, ok = ROUTES[route]
    before = world.snapshot()
    status, answer = route_call(app, world, route, claims_of(role.value))
    if role in allowed:
        assert status == ok, answer
        return
    assert (status, answer["error"]) == (403, "forbidden")
    assert world.snapshot() == before  # nothing changed, nothing audited


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_without_claims_every_route_is_401_and_nothing_changes(app: Any, world: World, route: str) -> None:
    before = world.snapshot()
    assert route_call(app, world, route, None)[0] == 401
    assert world.snapshot() == before


def test_provision_signs_the_csr_creates_the_thing_and_the_record_audited_once(
    app: Any, world: World
) -> None:
    body = provision_body(world, time_zone="Europe/Stockholm", rated_power_w=11_000)
    status, answer = call(app, "POST", "/ops/v1/chargers", claims_of("technician"), body=body)

    assert status == 201, answer
    certificate = x509.load_pem_x509_certificate(answer["certificate_pem"].encode())
    assert "CN=CP-new" in certificate.subject.rfc4514_string()
    assert answer["mqtt_host"] == "abc-ats.iot.example" and answer["ingest_rule"] == "ocpp_ingest"
    charger = world.registry.get("CP-new")
    assert charger is not None
    assert (charger.site_id, charger.time_zone, charger.rated_power_w) == ("S-1", "Europe/Stockholm", 11_000)
    assert charger.certificate_not_after == certificate.not_valid_after_utc
    assert world.identities.things["CP-new"] == "S-1"
    [record] = world.audit.records.values()
    assert (record.route, record.status, record.username) == ("/ops/v1/chargers", 201, "ana")
    assert record.targets == {
        "charger_id": "CP-new",
        "site_id": "S-1",
        "certificate_id": answer["certificate_id"],
    }
    assert "BEGIN" not in json.dumps(record.model_dump(mode="json"))  # no CSR or certificate in the trail


def test_provisioning_an_existing_charger_is_409_and_issues_nothing(app: Any, world: World) -> None:
    status, answer = call(
        app, "POST", "/ops/v1/chargers", claims_of("admin"), body=provision_body(world, "CP-1")
    )
    assert (status, answer["message"]) == (409, "charger CP-1 already exists")
    assert len(world.identities.certificates["CP-1"]) == 1
    assert [r.status for r in world.audit.records.values()] == [409]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"charger_id": "../etc"}, "not a charger id"),
        ({"site": "a b"}, "site is"),
        ({"time_zone": "Mars/Olympus"}, ""),
        ({"rated_power_w": 0}, "rated_power_w"),
        ({"rated_power_w": True}, "rated_power_w"),
        ({"csr": "not a csr"}, "certificate request refused"),
    ],
)
def test_bad_provisioning_input_is_400_audited_and_creates_nothing(
    app: Any, world: World, change: dict[str, Any], message: str
) -> None:
    body = {**json.loads(provision_body(world)), **change}
    status, answer = call(app, "POST", "/ops/v1/chargers", claims_of("admin"), body=json.dumps(body))
    assert (status, answer["error"]) == (400, "bad_request") and message in answer["message"]
    assert "CP-new" not in world.registry.chargers and "CP-new" not in world.identities.things
    assert [r.status for r in world.audit.records.values()] == [400]


def test_a_csr_for_another_charger_is_refused(app: Any, world: World) -> None:
    body = {**json.loads(provision_body(world)), "csr": world.csr("CP-other")}
    status, answer = call(app, "POST", "/ops/v1/chargers", claims_of("admin"), body=json.dumps(body))
    assert status == 400 and "common name" in answer["message"]


def test_revoke_revokes_every_certificate_closes_open_sessions_and_marks_the_record(
    app: Any, world: World
) -> None:
    world.identities.issue("CP-1", world.csr("CP-1"))  # a second one, e.g. mid-rotation
    world.sessions.open(
        SessionRecord(
            session_id="S-open",
            transaction_id=1,
            charger_id="CP-1",
            connector_id=1,
            id_tag="TAG",
            tag_status=TagStatus.ACCEPTED,
            started_at=NOW - timedelta(hours=1),
        )
    )
    world.sessions.append(
        "S-open",
        SessionEvent(kind=EventKind.START, at=NOW - timedelta(hours=1), connector_id=1, meter_start_wh=0),
    )
    status, answer = call(
        app, "POST", "/ops/v1/chargers/CP-1/revoke", claims_of("admin"), body='{"reason": "stolen"}'
    )

    assert status == 200, answer
    assert len(answer["certificate_ids"]) == 2 and answer["sessions_for_review"] == ["S-open"]
    assert sorted(world.identities.revoked) == sorted(answer["certificate_ids"])
    assert world.identities.certificates["CP-1"] == []  # detached from the thing
    charger = world.registry.get("CP-1")
    assert charger is not None and (charger.revoked_at, charger.revocation_reason) == (NOW, "stolen")
    [record] = world.audit.records.values()
    assert (record.targets, record.note) == ({"charger_id": "CP-1"}, "stolen")

    again = call(app, "POST", "/ops/v1/chargers/CP-1/revoke", claims_of("admin"))
    assert again[0] == 409 and "already revoked" in again[1]["message"]


def test_a_rotation_signs_then_confirms_and_retires_the_old_certificate(app: Any, world: World) -> None:
    [old] = world.identities.certificates["CP-1"]
    path = "/ops/v1/chargers/CP-1/rotate"
    status, signed = call(
        app, "POST", path, claims_of("technician"), body=json.dumps({"csr": world.csr("CP-1")})
    )
    assert status == 200, signed
    assert {c.status for c in world.identities.certificates["CP-1"]} == {
        CertificateStatus.ACTIVE
    }  # old one too

    new_id = signed["certificate_id"]
    status, confirmed = call(
        app,
        "POST",
        path,
        claims_of("technician"),
        body=json.dumps({"installed": new_id}),
        request_id="r-2",
    )
    assert status == 200, confirmed
    statuses = {c.certificate_id: c.status for c in world.identities.certificates["CP-1"]}
    assert statuses == {old.certificate_id: CertificateStatus.INACTIVE, new_id: CertificateStatus.ACTIVE}
    charger = world.registry.get("CP-1")
    assert charger is not None and charger.certificate_not_after is not None
    assert [r.targets["certificate_id"] for r in world.audit.records.values()] == [new_id, new_id]


def test_abandoning_keeps_the_last_active_certificate(app: Any, world: World) -> None:
    [only] = world.identities.certificates["CP-1"]
    path = "/ops/v1/chargers/CP-1/rotate"
    status, answer = call(
        app, "POST", path, claims_of("admin"), body=json.dumps({"abandoned": only.certificate_id})
    )
    assert status == 409 and "last active" in answer["message"]
    assert world.identities.certificates["CP-1"][0].status is CertificateStatus.ACTIVE


@pytest.mark.parametrize(
    "body", ['{"csr": "x", "installed": "y"}', "{}", '{"installed": "nothex"}', '{"csr": "x", "days": 3}']
)
def test_a_bad_rotation_step_is_400(app: Any, world: World, body: str) -> None:
    status, answer = call(app, "POST", "/ops/v1/chargers/CP-1/rotate", claims_of("admin"), body=body)
    assert (status, answer["error"]) == (400, "bad_request")


def test_a_revoked_charger_is_not_rotated(app: Any, world: World) -> None:
    world.registry.record_revocation("CP-1", NOW, None)
    status, _ = call(app, "POST", "/ops/v1/chargers/CP-1/rotate", claims_of("admin"), body='{"csr": "x"}')
    assert status == 409


def test_unknown_charger_is_404(app: Any, world: World) -> None:
    for method, path in (
        ("GET", "/ops/v1/chargers/CP-x/certificates"),
        ("POST", "/ops/v1/chargers/CP-x/revoke"),
    ):
        assert call(app, method, path, claims_of("admin"))[0] == 404


def test_certificates_and_the_wall_clock_the_charger_keeps(app: Any, world: World) -> None:
    world.registry.set_site_time_zone("S-1", "Europe/Oslo")
    status, answer = call(app, "GET", "/ops/v1/chargers/CP-1/certificates", claims_of("viewer"))
    assert status == 200
    assert answer["time_zone"] == "Europe/Oslo"
    assert [c["status"] for c in answer["certificates"]] == ["ACTIVE"]
    # booted before versions were recorded: written to in 1.6, no device model
    assert (answer["ocpp_version"], answer["device_model"]) == ("ocpp1.6", None)


def test_a_2_0_1_chargers_version_and_reported_device_model(
    app: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.registry._update("CP-1", ocpp_version="ocpp2.0.1")
    entry = DeviceModelEntry(
        component="EVSE", evse_id=1, variable="Power", values={"Actual": "0", "MaxSet": "22000"}
    )
    reported = DeviceModel(request_id=1, generated_at=NOW, complete=True, entries=[entry])
    monkeypatch.setattr(world.registry, "device_model", {"CP-1": reported}.get)

    status, answer = call(app, "GET", "/ops/v1/chargers/CP-1/certificates", claims_of("viewer"))

    assert (status, answer["ocpp_version"]) == (200, "ocpp2.0.1")
    assert answer["device_model"]["complete"] is True
    assert answer["device_model"]["entries"] == [
        {
            "component": "EVSE",
            "component_instance": None,
            "evse_id": 1,
            "connector_id": None,
            "variable": "Power",
            "variable_instance": None,
            "values": {"Actual": "0", "MaxSet": "22000"},
            "mutability": None,
        }
    ]


def test_site_time_zone_set_and_shown(app: Any, world: World) -> None:
    status, _ = call(
        app,
        "PUT",
        "/ops/v1/sites/S-1/time-zone",
        claims_of("admin"),
        body='{"time_zone": "Europe/Stockholm"}',
    )
    assert status == 200
    assert call(app, "GET", "/ops/v1/sites/S-1", claims_of("viewer"))[1] == {
        "site_id": "S-1",
        "time_zone": "Europe/Stockholm",
        "deployment_time_zone": "UTC",
    }
    [record] = world.audit.records.values()
    assert record.targets == {"site_id": "S-1"}
    bad = call(
        app, "PUT", "/ops/v1/sites/S-1/time-zone", claims_of("admin"), body='{"time_zone": "Nowhere/X"}'
    )
    assert bad[0] == 400 and world.registry.site_zones["S-1"] == "Europe/Stockholm"


def test_allow_serials_once_each_and_list_them_page_by_page(app: Any, world: World) -> None:
    body = {"serials": ["SN-2", "SN-1", "SN-2"], "claim_certificate_id": BATCH.upper(), "site": "S-9"}
    status, answer = call(
        app, "POST", "/ops/v1/provisioning/serials", claims_of("admin"), body=json.dumps(body)
    )
    assert (status, answer) == (200, {"allowed": ["SN-2", "SN-1"], "already": []})
    again = call(app, "POST", "/ops/v1/provisioning/serials", claims_of("admin"), body=json.dumps(body))[1]
    assert again == {"allowed": [], "already": ["SN-2", "SN-1"]}
    assert world.allow_list.entries["SN-1"].claim_certificate_id == BATCH

    first = call(app, "GET", "/ops/v1/provisioning/serials", claims_of("viewer"), query="limit=1")[1]
    assert [e["serial_number"] for e in first["items"]] == ["SN-1"] and first["next"]
    second = call(
        app, "GET", "/ops/v1/provisioning/serials", claims_of("viewer"), query=f"limit=1&next={first['next']}"
    )[1]
    assert [e["serial_number"] for e in second["items"]] == ["SN-2"] and second["next"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"serials": ["a.b"], "claim_certificate_id": BATCH},
        {"serials": [], "claim_certificate_id": BATCH},
        {"serials": ["SN-1"], "claim_certificate_id": "xyz"},
        {"serials": "SN-1", "claim_certificate_id": BATCH},
    ],
)
def test_bad_serials_are_400_and_allow_nothing(app: Any, world: World, body: dict[str, Any]) -> None:
    status, answer = call(
        app, "POST", "/ops/v1/provisioning/serials", claims_of("admin"), body=json.dumps(body)
    )
    assert (status, answer["error"]) == (400, "bad_request") and world.allow_list.entries == {}


def test_a_tampered_cursor_is_400_bad_cursor(app: Any, world: World) -> None:
    for serial in ("SN-1", "SN-2"):
        world.allow_list.allow(serial, "", NOW, BATCH)
    cursor = call(app, "GET", "/ops/v1/provisioning/serials", claims_of("admin"), query="limit=1")[1]["next"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    status, answer = call(
        app, "GET", "/ops/v1/provisioning/serials", claims_of("admin"), query=f"next={tampered}"
    )
    assert (status, answer["error"]) == (400, "bad_cursor")


def test_a_claim_certificate_is_signed_from_the_csr_with_its_bundle_and_audited_once(
    app: Any, world: World
) -> None:
    csr = world.claim_csr()
    path = "/ops/v1/provisioning/claim-certificates"
    status, answer = call(app, "POST", path, claims_of("technician"), body=json.dumps({"csr": csr}))

    assert status == 201, answer
    certificate = x509.load_pem_x509_certificate(answer["certificate_pem"].encode())
    assert certificate.public_key() == x509.load_pem_x509_csr(csr.encode()).public_key()
    assert certificate_id(answer["certificate_pem"]) == answer["certificate_id"]
    assert world.claims.status[answer["certificate_id"]] == "ACTIVE"
    # IoT's data endpoint, as `charger add` is answered; the template from the function's environment
    assert (answer["mqtt_host"], answer["mqtt_port"], answer["template_name"]) == (
        "abc-ats.iot.example",
        8883,
        TEMPLATE,
    )
    [record] = world.audit.records.values()
    assert (record.route, record.status) == (path, 201)
    assert record.targets == {"certificate_id": answer["certificate_id"]}
    assert "BEGIN" not in json.dumps(record.model_dump(mode="json"))  # no CSR or certificate in the trail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda w: {}, "csr is required"),
        (lambda w: {"csr": "not a csr"}, "certificate request refused"),
        # a charger's CSR: its certificate would not be the claim user
        (lambda w: {"csr": w.csr("CP-9")}, f"common name must be {CLAIM_COMMON_NAME!r}"),
    ],
)
def test_a_bad_claim_csr_is_400_audited_and_issues_nothing(
    app: Any, world: World, body: Any, message: str
) -> None:
    before = dict(world.claims.status)
    status, answer = call(
        app,
        "POST",
        "/ops/v1/provisioning/claim-certificates",
        claims_of("admin"),
        body=json.dumps(body(world)),
    )
    assert (status, answer["error"]) == (400, "bad_request") and message in answer["message"]
    assert world.claims.status == before
    [record] = world.audit.records.values()
    assert (record.status, record.targets) == (400, {"certificate_id": "(not issued)"})


def test_revoking_a_claim_certificate_and_again_changes_nothing_more(app: Any, world: World) -> None:
    path = f"/ops/v1/provisioning/claim-certificates/{CLAIM_ID.upper()}/revoke"
    status, answer = call(app, "POST", path, claims_of("admin"))
    assert (status, answer) == (200, {"certificate_id": CLAIM_ID, "status": "REVOKED"})
    assert world.claims.status[CLAIM_ID] == "REVOKED"
    again = call(app, "POST", path, claims_of("admin"), request_id="r-2")
    assert again == (200, answer)
    assert [(r.status, r.targets) for r in world.audit.records.values()] == [
        (200, {"certificate_id": CLAIM_ID}),
        (200, {"certificate_id": CLAIM_ID}),
    ]


def test_revoking_an_unknown_or_a_chargers_certificate_is_refused_and_audited(app: Any, world: World) -> None:
    [charger_certificate] = world.identities.certificates["CP-1"]
    unknown = "ef" * 32
    before = world.snapshot()[:-2]  # all but the audit trail and the sessions
    for certificate, expected in ((unknown, 404), (charger_certificate.certificate_id, 409)):
        path = f"/ops/v1/provisioning/claim-certificates/{certificate}/revoke"
        status, answer = call(app, "POST", path, claims_of("admin"), request_id=certificate)
        assert status == expected, answer
    assert "is not a claim certificate" in answer["message"]
    assert world.snapshot()[:-2] == before
    assert [r.status for r in world.audit.records.values()] == [404, 409]


def test_a_malformed_claim_certificate_id_is_400(app: Any, world: World) -> None:
    path = "/ops/v1/provisioning/claim-certificates/not-hex/revoke"
    status, answer = call(app, "POST", path, claims_of("admin"))
    assert (status, answer["error"]) == (400, "bad_request")
    [record] = world.audit.records.values()
    assert record.targets == {"certificate_id": "(not a certificate id)"}
