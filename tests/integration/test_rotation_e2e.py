"""Certificate rotation started by the shim over the charger's own link, on the real local stack.

The simulator's renewal sends SignCertificate through mosquitto to the ingest function, which
signs with IoT CreateCertificateFromCsr (moto, the local CA), sends CertificateSigned back, and
on the shim's CertificateInstalled retires the old certificate (INACTIVE, and the broker's CRL).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargenet.adapters.faults_dynamodb import DynamoFaultStore
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.link import ChargerLink, LinkError
from chargenet_shim.rotation import not_after, rotate
from chargenet_shim.sim.simulator import SimulatedCharger
from tests.integration.conftest import RawCharger, eventually, registry


def certificate_statuses(charger_id: str) -> dict[str, str]:
    iot = boto3.client("iot")
    statuses = {}
    for arn in iot.list_thing_principals(thingName=charger_id)["principals"]:
        description = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])["certificateDescription"]
        statuses[description["certificatePem"].strip()] = description["status"]
    return statuses


async def renewed(cert_path: Path, beyond: timedelta) -> None:
    while not_after(cert_path) - datetime.now(UTC) < beyond:
        await asyncio.sleep(0.2)


def test_the_simulator_renews_a_certificate_about_to_expire_over_its_own_link(stack, new_charger, tmp_path):
    from tests.integration.local_issuer import LocalIssuer

    credentials = new_charger()
    keystore = FileKeyStore(credentials.cert_path.parent)
    short_cert, short_key = tmp_path / "short.pem", tmp_path / "short.key"

    async def run() -> str:
        # A certificate a day from expiry, put in place as the operator would.
        link = ChargerLink(credentials)
        await link.connect()
        try:
            await rotate(link, keystore, LocalIssuer(stack, days=1))
        finally:
            await link.close()
        short_cert.write_text(credentials.cert_path.read_text())
        short_key.write_bytes(credentials.key_path.read_bytes())
        short_pem = short_cert.read_text().strip()

        charger = SimulatedCharger(credentials)
        charger.renew_before = timedelta(days=30)
        charger.renew_check_every_s = 0.5
        await charger.start()
        try:
            await charger.run_boot()
            await asyncio.wait_for(renewed(credentials.cert_path, timedelta(days=300)), 30)
            await asyncio.to_thread(
                eventually, lambda: certificate_statuses(credentials.charger_id)[short_pem] == "INACTIVE"
            )
            assert charger.link.online
            await asyncio.wait_for(charger.heartbeat(), 15)  # answered over the new certificate
        finally:
            await charger.stop()
        old = credentials.model_copy(update={"cert_path": short_cert, "key_path": short_key})
        with pytest.raises(LinkError):
            await ChargerLink(old).connect(timeout=8)  # INACTIVE in IoT, on the broker's CRL
        return short_pem

    short_pem = asyncio.run(run())
    new_pem = credentials.cert_path.read_text().strip()
    statuses = certificate_statuses(credentials.charger_id)
    assert statuses[new_pem] == "ACTIVE" and statuses[short_pem] == "INACTIVE"
    assert [status for status in statuses.values() if status == "ACTIVE"] == ["ACTIVE"]
    expiry = registry().get(credentials.charger_id).certificate_not_after
    assert expiry == not_after(credentials.cert_path)
    new_serial = x509.load_pem_x509_certificate(new_pem.encode()).serial_number
    assert new_serial != x509.load_pem_x509_certificate(short_pem.encode()).serial_number


def csr_for(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode()


def test_a_sign_certificate_for_another_charger_is_rejected_and_signs_nothing(stack, new_charger):
    credentials, other = new_charger(), new_charger()

    async def run() -> None:
        async with RawCharger(credentials) as charger:
            await charger.send([2, "sc-1", "SignCertificate", {"csr": csr_for(other.charger_id)}])
            assert await charger.reply() == [3, "sc-1", {"status": "Rejected"}]
            await charger.no_reply(2.0)  # no CertificateSigned follows

    asyncio.run(run())
    assert len(certificate_statuses(credentials.charger_id)) == 1
    assert len(certificate_statuses(other.charger_id)) == 1
    eventually(lambda: _security_fault(credentials.charger_id))


def _security_fault(charger_id: str) -> bool:
    return any(
        fault.code == "InvalidChargePointCertificate"
        for fault, _ in DynamoFaultStore().of_charger(charger_id)
    )


def test_a_real_chargers_own_sign_certificate_through_the_gateway_is_refused_and_signs_nothing(
    stack, new_charger
):
    """The cloud certificate is the shim's: a charger holding one of its own could reach IoT Core
    directly, past the gateway's filters."""
    from websockets.asyncio.client import connect
    from websockets.headers import build_authorization_basic

    from chargenet_shim.gateway import GatewayConfig, serve
    from tests.integration.test_gateway_e2e import PASSWORD

    credentials = new_charger(password=PASSWORD)

    async def run() -> list:
        chargers = Path(stack.home) / "chargers"
        gateway = await serve(GatewayConfig(port=0, credentials_dir=chargers, allow_plain_ws=True))
        authorization = {"Authorization": build_authorization_basic(credentials.charger_id, PASSWORD)}
        url = f"ws://127.0.0.1:{gateway.port}/ocpp/{credentials.charger_id}"
        try:
            async with connect(url, subprotocols=["ocpp1.6"], additional_headers=authorization) as ws:
                await ws.send(
                    json.dumps([2, "sc-1", "SignCertificate", {"csr": csr_for(credentials.charger_id)}])
                )
                refusal = json.loads(await asyncio.wait_for(ws.recv(), 15))
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 2.0)  # no CertificateSigned follows
                return refusal
        finally:
            await gateway.close()

    assert asyncio.run(run())[:3] == [4, "sc-1", "NotSupported"]
    assert list(certificate_statuses(credentials.charger_id).values()) == ["ACTIVE"]  # the shim's alone


def test_certificate_installed_counts_only_over_a_connection_made_with_the_certificate_it_names(
    stack, new_charger, tmp_path
):
    """principal() end to end: mosquitto stamps the publisher's certificate id, the rule passes it."""
    credentials = new_charger()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, credentials.charger_id)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    old_pem = credentials.cert_path.read_text().strip()

    def installed(message_id: str, pem: str) -> list:
        serial = format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "x")
        data = json.dumps({"serialNumber": serial})
        return [
            2,
            message_id,
            "DataTransfer",
            {"vendorId": "chargenet", "messageId": "CertificateInstalled", "data": data},
        ]

    async def sign_then_confirm_over_the_old_certificate() -> tuple[str, list]:
        async with RawCharger(credentials) as charger:
            pem = request.public_bytes(serialization.Encoding.PEM).decode()
            await charger.send([2, "sc-1", "SignCertificate", {"csr": pem}])
            assert await charger.reply() == [3, "sc-1", {"status": "Accepted"}]
            signed = await charger.reply()
            assert signed[2] == "CertificateSigned"
            await charger.send([3, signed[1], {"status": "Accepted"}])
            new_pem = signed[3]["certificateChain"].strip()
            await charger.send(installed("ci-1", new_pem))
            return new_pem, await charger.reply()

    new_pem, refusal = asyncio.run(sign_then_confirm_over_the_old_certificate())
    assert refusal[:3] == [4, "ci-1", "SecurityError"]
    assert certificate_statuses(credentials.charger_id) == {old_pem: "ACTIVE", new_pem: "ACTIVE"}

    new_cert, new_key = tmp_path / "new.pem", tmp_path / "new.key"
    new_cert.write_text(new_pem + "\n")
    new_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    reconnected = credentials.model_copy(update={"cert_path": new_cert, "key_path": new_key})

    async def confirm_over_the_new_certificate() -> list:
        async with RawCharger(reconnected) as charger:
            await charger.send(installed("ci-2", new_pem))
            return await charger.reply()

    assert asyncio.run(confirm_over_the_new_certificate()) == [3, "ci-2", {"status": "Accepted"}]
    assert certificate_statuses(credentials.charger_id) == {old_pem: "INACTIVE", new_pem: "ACTIVE"}
