"""The claim client: reading IoT's provisioning replies and the flow around them, without a broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargenet_shim import claim as claim_module
from chargenet_shim.claim import (
    CREATE_FROM_CSR_TOPIC,
    ClaimBundle,
    ClaimConnection,
    ClaimRejected,
    claim,
    read_certificate_reply,
    read_registration_reply,
    register_thing_topic,
)
from chargenet_shim.credentials import ChargerCredentials

REGISTER = register_thing_topic("chargenet-chargers")


def test_an_accepted_certificate_reply_carries_the_certificate_and_token():
    payload = json.dumps(
        {"certificateId": "abc", "certificatePem": "PEM", "certificateOwnershipToken": "tok"}
    ).encode()

    signed = read_certificate_reply(f"{CREATE_FROM_CSR_TOPIC}/accepted", payload)

    assert (signed.certificate_id, signed.certificate_pem, signed.ownership_token) == ("abc", "PEM", "tok")


def test_a_rejected_reply_is_an_error_with_iots_code_and_message():
    payload = json.dumps(
        {"statusCode": 403, "errorCode": "AccessDenied", "errorMessage": "the hook refused the request"}
    ).encode()

    with pytest.raises(ClaimRejected, match=r"registration rejected: AccessDenied \(403\): the hook refused"):
        read_registration_reply(f"{REGISTER}/rejected", payload)


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'{"certificateId": "abc"}'])
def test_an_unreadable_or_incomplete_certificate_reply_is_an_error(payload):
    with pytest.raises(ClaimRejected, match="certificate request"):
        read_certificate_reply(f"{CREATE_FROM_CSR_TOPIC}/accepted", payload)


def test_an_accepted_registration_names_the_thing_and_the_device_configuration():
    payload = json.dumps(
        {"thingName": "SN-1", "deviceConfiguration": {"IngestRule": "chargenet_ocpp_ingest"}}
    )

    registration = read_registration_reply(f"{REGISTER}/accepted", payload.encode())

    assert registration.thing_name == "SN-1"
    assert registration.device_configuration == {"IngestRule": "chargenet_ocpp_ingest"}


def test_a_registration_without_a_thing_name_is_an_error():
    with pytest.raises(ClaimRejected, match="thingName"):
        read_registration_reply(f"{REGISTER}/accepted", b'{"deviceConfiguration": {}}')


class FakeCloud:
    """Answers like IoT's provisioning API; `lose_registrations` drops that many RegisterThing replies."""

    def __init__(
        self, ca_key: ec.EllipticCurvePrivateKey, *, refuse: bool = False, lose_registrations: int = 0
    ):
        self.ca_key = ca_key
        self.refuse = refuse
        self.lose_registrations = lose_registrations
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def connection(self, claim_dir: Path, bundle: ClaimBundle) -> FakeConnection:
        return FakeConnection(self)


class FakeConnection:
    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    async def __aenter__(self) -> FakeConnection:
        return self

    async def __aexit__(self, *_: object) -> None:
        pass

    async def request(self, topic: str, body: dict[str, Any]) -> tuple[str, bytes]:
        self.cloud.requests.append((topic, body))
        if topic == CREATE_FROM_CSR_TOPIC:
            csr = x509.load_pem_x509_csr(body["certificateSigningRequest"].encode())
            reply = {"certificateId": "cert-1", "certificatePem": _sign(csr, self.cloud.ca_key)}
            return f"{topic}/accepted", json.dumps({**reply, "certificateOwnershipToken": "tok-1"}).encode()
        if self.cloud.lose_registrations:
            self.cloud.lose_registrations -= 1
            raise TimeoutError
        if self.cloud.refuse:
            refusal = {"statusCode": 403, "errorCode": "AccessDenied", "errorMessage": "refused"}
            return f"{topic}/rejected", json.dumps(refusal).encode()
        accepted = {
            "thingName": body["parameters"]["SerialNumber"],
            "deviceConfiguration": {"IngestRule": "ingest"},
        }
        return f"{topic}/accepted", json.dumps(accepted).encode()


def _sign(csr: x509.CertificateSigningRequest, ca_key: ec.EllipticCurvePrivateKey) -> str:
    now = dt.datetime.now(dt.UTC)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(issuer)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def claim_dir(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    folder = tmp_path / "claim"
    folder.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    ClaimBundle(mqtt_host="127.0.0.1", mqtt_port=8883, template_name="chargenet-chargers").save(folder)
    return folder, ca_key


def test_the_claim_client_id_is_random_per_connection_not_the_serial(claim_dir, monkeypatch):
    """A predictable client id (claim:<serial>) lets anyone with a claim certificate connect with it
    first and cut the device's claim connection: each connection gets 128 random bits instead."""
    folder, _ = claim_dir
    built: list[dict[str, Any]] = []
    monkeypatch.setattr(claim_module.mqtt_connection_builder, "mtls_from_path", lambda **kw: built.append(kw))
    bundle = ClaimBundle.load(folder)

    first, second = ClaimConnection(folder, bundle), ClaimConnection(folder, bundle)

    assert [b["client_id"] for b in built] == [first.client_id, second.client_id]
    assert first.client_id != second.client_id
    for client_id in (first.client_id, second.client_id):
        assert client_id.startswith("claim:") and len(client_id) == len("claim:") + 32
        int(client_id.removeprefix("claim:"), 16)  # hex: no serial, no other name in it


def test_a_granted_claim_installs_the_certificate_for_the_devices_own_key(claim_dir, tmp_path, monkeypatch):
    folder, ca_key = claim_dir
    cloud = FakeCloud(ca_key)
    monkeypatch.setattr(claim_module, "ClaimConnection", cloud.connection)

    out = asyncio.run(claim(folder, "SN-1", tmp_path / "SN-1"))

    credentials = ChargerCredentials.load(out)
    assert (credentials.charger_id, credentials.ingest_rule, credentials.mqtt_port) == (
        "SN-1",
        "ingest",
        8883,
    )
    assert credentials.key_path.stat().st_mode & 0o077 == 0
    [(_, csr_request), (_, registration)] = cloud.requests
    assert "CERTIFICATE REQUEST" in csr_request["certificateSigningRequest"]
    assert "PRIVATE KEY" not in json.dumps(cloud.requests)  # only the CSR left the device
    assert registration == {"certificateOwnershipToken": "tok-1", "parameters": {"SerialNumber": "SN-1"}}
    certificate = x509.load_pem_x509_certificate(credentials.cert_path.read_bytes())
    key = serialization.load_pem_private_key(credentials.key_path.read_bytes(), password=None)
    assert certificate.public_key() == key.public_key()


def test_a_lost_registration_reply_is_asked_again_with_the_same_token(claim_dir, tmp_path, monkeypatch):
    folder, ca_key = claim_dir
    cloud = FakeCloud(ca_key, lose_registrations=1)
    monkeypatch.setattr(claim_module, "ClaimConnection", cloud.connection)

    asyncio.run(claim(folder, "SN-1", tmp_path / "SN-1"))

    registrations = [body for topic, body in cloud.requests if topic == REGISTER]
    assert len(registrations) == 2 and registrations[0] == registrations[1]


def test_a_refused_claim_leaves_no_credentials(claim_dir, tmp_path, monkeypatch):
    folder, ca_key = claim_dir
    monkeypatch.setattr(claim_module, "ClaimConnection", FakeCloud(ca_key, refuse=True).connection)

    with pytest.raises(ClaimRejected, match="AccessDenied"):
        asyncio.run(claim(folder, "SN-1", tmp_path / "SN-1"))

    assert not (tmp_path / "SN-1" / "charger.json").exists()
    assert not (tmp_path / "SN-1" / "cert.pem").exists()


def test_a_serial_that_cannot_be_a_charger_id_is_refused_before_connecting(claim_dir, tmp_path, monkeypatch):
    folder, ca_key = claim_dir
    cloud = FakeCloud(ca_key)
    monkeypatch.setattr(claim_module, "ClaimConnection", cloud.connection)

    with pytest.raises(ClaimRejected, match="invalid serial"):
        asyncio.run(claim(folder, "SN/1", tmp_path / "x"))

    assert cloud.requests == []


def test_the_cli_reports_a_refusal_with_a_non_zero_exit(claim_dir, tmp_path, monkeypatch, capsys):
    from chargenet_shim.cli import main

    folder, ca_key = claim_dir
    monkeypatch.setattr(claim_module, "ClaimConnection", FakeCloud(ca_key, refuse=True).connection)

    code = main(["claim", "--claim-dir", str(folder), "--serial", "SN-1", "--out", str(tmp_path / "SN-1")])

    assert code == 1
    assert "registration rejected: AccessDenied" in capsys.readouterr().err
