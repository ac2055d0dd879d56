"""The local fleet provisioning API: IoT's replies and error codes, the template applied, stray certificates revoked."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chargenet_local.broker import BACKEND_USER
from chargenet_local.fleet_provisioning import (
    CREATE_FROM_CSR_TOPIC,
    FleetProvisioning,
    ProvisioningTemplateSpec,
    register_thing_topic,
)
from chargenet_local.pki import LocalCA
from chargenet_local.template import load
from chargenet_shim.keystore import FileKeyStore

ROOT = Path(__file__).resolve().parents[2]
SPEC = ProvisioningTemplateSpec.from_template(
    load(ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"})
)
REGISTER = register_thing_topic(SPEC.name)


class FakeIot:
    class exceptions:
        class ResourceAlreadyExistsException(Exception):
            pass

    def __init__(self) -> None:
        self.certificates: dict[str, str] = {}  # id -> status
        self.things: dict[str, dict[str, str]] = {}
        self.policies: list[tuple[str, str]] = []
        self.principals: list[tuple[str, str]] = []

    def register_certificate_without_ca(self, certificatePem: str, status: str) -> dict[str, str]:
        certificate_id = f"{len(self.certificates):064d}"
        self.certificates[certificate_id] = status
        return {"certificateId": certificate_id, "certificateArn": f"arn:aws:iot:::cert/{certificate_id}"}

    def create_thing(self, thingName: str, attributePayload: dict[str, Any]) -> None:
        if thingName in self.things:
            raise self.exceptions.ResourceAlreadyExistsException(thingName)
        self.things[thingName] = attributePayload["attributes"]

    def update_thing(self, thingName: str, attributePayload: dict[str, Any]) -> None:
        self.things[thingName] = attributePayload["attributes"]

    def update_certificate(self, certificateId: str, newStatus: str) -> None:
        self.certificates[certificateId] = newStatus

    def attach_policy(self, policyName: str, target: str) -> None:
        self.policies.append((policyName, target))

    def attach_thing_principal(self, thingName: str, principal: str) -> None:
        self.principals.append((thingName, principal))


BATCH = "b" * 64  # the claim certificate SN-1 is allowed under


class FakeAllowListTable:
    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        self.items = items

    def get_item(self, TableName: str, Key: dict[str, Any], ConsistentRead: bool) -> dict[str, Any]:
        item = self.items.get(Key["serial_number"]["S"])
        return {"Item": item} if item is not None else {}


class World:
    def __init__(self, tmp_path: Path, hook: Any = None) -> None:
        self.tmp_path = tmp_path
        self.ca = LocalCA(tmp_path / "ca").ensure()
        self.iot = FakeIot()
        self.table = FakeAllowListTable(
            {"SN-1": {"serial_number": {"S": "SN-1"}, "claim_certificate_id": {"S": BATCH}}}
        )
        self.published: list[tuple[str, dict[str, Any]]] = []
        self._answered = threading.Event()
        self.crl_reloads = 0
        self.hook_events: list[dict[str, Any]] = []
        self.hook = hook or (
            lambda event: {"allowProvisioning": True, "parameterOverrides": {"SiteId": "S1"}}
        )

    def invoke_hook(self, event: dict[str, Any]) -> Any:
        self.hook_events.append(event)
        return self.hook(event)

    def ask(self, topic: str, body: Any) -> tuple[str, dict[str, Any]]:
        """One request, answered on the component's worker thread."""
        self._answered.clear()
        self.api.on_message(topic, body if isinstance(body, bytes) else json.dumps(body).encode())
        assert self._answered.wait(10), "no reply"
        return self.published[-1]

    def _publish(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, json.loads(payload)))
        self._answered.set()

    def _reload(self) -> None:
        self.crl_reloads += 1

    def start(self) -> World:
        self.api = FleetProvisioning(
            SPEC,
            ca=self.ca,
            iot=self.iot,
            dynamodb=self.table,
            allow_list_table="ProvisioningAllowListTable",
            invoke_hook=self.invoke_hook,
            publish=self._publish,
            reload_crl=self._reload,
            template_arn=f"arn:aws:iot:us-east-1:123456789012:provisioningtemplate/{SPEC.name}",
        )
        return self

    def csr(self, name: str, common_name: str = "SN-1") -> str:
        return FileKeyStore(self.tmp_path / name).create_csr(common_name)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path).start()
    yield world
    world.api.stop()


def test_the_spec_is_read_from_the_template():
    assert SPEC.enabled and SPEC.hook_function == "ProvisioningHookFunction"
    assert SPEC.body["DeviceConfiguration"] == {"IngestRule": "chargenet_ocpp_ingest"}


def test_a_csr_becomes_a_pending_certificate_with_an_ownership_token(world):
    topic, reply = world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d1")})

    assert topic == f"{CREATE_FROM_CSR_TOPIC}/accepted"
    assert set(reply) == {"certificateId", "certificatePem", "certificateOwnershipToken"}
    assert world.iot.certificates[reply["certificateId"]] == "PENDING_ACTIVATION"


def test_register_thing_consults_the_hook_and_applies_the_template(world):
    _, signed = world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d1")})
    request = {
        "certificateOwnershipToken": signed["certificateOwnershipToken"],
        "parameters": {"SerialNumber": "SN-1"},
    }

    topic, reply = world.ask(REGISTER, request)

    assert topic == f"{REGISTER}/accepted"
    assert reply == {"deviceConfiguration": {"IngestRule": "chargenet_ocpp_ingest"}, "thingName": "SN-1"}
    [event] = world.hook_events
    assert (
        event["parameters"] == {"SerialNumber": "SN-1"} and event["certificateId"] == signed["certificateId"]
    )
    # mosquitto cannot say who published: the serial's batch stands in for the claim certificate.
    assert event["claimCertificateId"] == BATCH
    assert world.iot.things == {"SN-1": {"site": "S1"}}  # the hook's override
    assert world.iot.certificates[signed["certificateId"]] == "ACTIVE"
    arn = f"arn:aws:iot:::cert/{signed['certificateId']}"
    assert world.iot.policies == [("ChargerPolicy", arn)] and world.iot.principals == [("SN-1", arn)]


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (lambda event: {"allowProvisioning": False}, "refused"),
        (lambda event: (_ for _ in ()).throw(RuntimeError("boom")), "failed"),
    ],
)
def test_a_refusing_or_failing_hook_is_access_denied_and_creates_nothing(tmp_path, hook, message):
    world = World(tmp_path, hook).start()
    _, signed = world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d1")})

    topic, reply = world.ask(
        REGISTER,
        {
            "certificateOwnershipToken": signed["certificateOwnershipToken"],
            "parameters": {"SerialNumber": "SN-1"},
        },
    )

    assert topic == f"{REGISTER}/rejected"
    assert (
        reply["statusCode"] == 403
        and reply["errorCode"] == "AccessDenied"
        and message in reply["errorMessage"]
    )
    assert world.iot.things == {} and world.iot.policies == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"certificateOwnershipToken": "forged", "parameters": {"SerialNumber": "SN-1"}},
            "InvalidCertificateOwnershipToken",
        ),
        ({"parameters": {"SerialNumber": "SN-1"}}, "InvalidCertificateOwnershipToken"),
        (b"not json", "InvalidPayload"),
        (b"[]", "InvalidPayload"),
    ],
)
def test_bad_registrations_are_rejected_with_iots_codes(world, body, code):
    topic, reply = world.ask(REGISTER, body)

    assert topic == f"{REGISTER}/rejected"
    assert reply["statusCode"] == 400 and reply["errorCode"] == code
    assert world.hook_events == []


def test_a_missing_required_parameter_is_invalid_parameters(world):
    _, signed = world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d1")})
    world.hook = lambda event: {"allowProvisioning": True}

    _, reply = world.ask(
        REGISTER, {"certificateOwnershipToken": signed["certificateOwnershipToken"], "parameters": {}}
    )

    assert reply["errorCode"] == "InvalidParameters" and "SerialNumber" in reply["errorMessage"]


def test_a_certificate_registered_under_another_serial_is_refused(world):
    world.table.items["SN-2"] = {"serial_number": {"S": "SN-2"}}
    _, signed = world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d1")})

    _, reply = world.ask(
        REGISTER,
        {
            "certificateOwnershipToken": signed["certificateOwnershipToken"],
            "parameters": {"SerialNumber": "SN-2"},
        },
    )

    assert reply["errorCode"] == "InvalidParameters"
    assert world.iot.things == {}


@pytest.mark.parametrize("common_name", ["SN-9", BACKEND_USER, "claim:factory"])
def test_no_certificate_is_signed_for_a_name_that_is_not_a_free_allow_listed_serial(world, common_name):
    world.table.items[BACKEND_USER] = {"serial_number": {"S": BACKEND_USER}}  # even if allow-listed

    topic, reply = world.ask(
        CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d1", common_name)}
    )

    assert topic == f"{CREATE_FROM_CSR_TOPIC}/rejected"
    assert reply["statusCode"] in (400, 403)
    assert world.iot.certificates == {}


def test_a_claimed_serial_gets_certificates_only_for_the_claiming_key(world):
    own_key = x509.load_pem_x509_csr(world.csr("d1").encode()).public_key()
    spki = own_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    world.table.items["SN-1"]["claimed_key"] = {"S": hashlib.sha256(spki).hexdigest()}

    assert world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d1")})[0].endswith(
        "/accepted"
    )
    topic, reply = world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d2")})
    assert topic.endswith("/rejected") and reply["errorCode"] == "AccessDenied"


def test_other_certificates_for_a_registered_serial_are_revoked(world):
    _, first = world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d1")})
    _, second = world.ask(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": world.csr("d2")})

    world.ask(
        REGISTER,
        {
            "certificateOwnershipToken": first["certificateOwnershipToken"],
            "parameters": {"SerialNumber": "SN-1"},
        },
    )

    assert world.iot.certificates[second["certificateId"]] == "REVOKED"
    assert world.iot.certificates[first["certificateId"]] == "ACTIVE"
    assert world.crl_reloads == 1
    crl = x509.load_pem_x509_crl(world.ca.crl_path.read_bytes())
    revoked = {entry.serial_number for entry in crl}
    serial = x509.load_pem_x509_certificate(second["certificatePem"].encode()).serial_number
    assert serial in revoked
    assert x509.load_pem_x509_certificate(first["certificatePem"].encode()).serial_number not in revoked
