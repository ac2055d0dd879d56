"""Certificate lifecycle on the local stack: revocation, rotation, expiry (security negatives)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509

from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory
from chargenet.domain.models import TagStatus
from chargenet_local.pki import LocalCA
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.link import ChargerLink, LinkError
from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import RawCharger, eventually, registry
from tests.integration.local_issuer import LocalIssuer, thing_certificates
from tests.integration.test_sessions_e2e import Driver, session

TAG = "CERT-TAG-1"


@pytest.fixture(scope="module")
def tag(stack):
    DynamoTagDirectory().put(TAG, TagStatus.ACCEPTED, 10, None)
    return TAG


def now_iso(minutes: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def revoke(stack, charger_id: str, *extra: str) -> dict:
    result = cli(stack.home, "charger", "revoke", charger_id, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def stays_offline(link: ChargerLink, seconds: float) -> None:
    """awscrt keeps reconnecting in the background: none of its attempts may succeed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not link.online
        await asyncio.sleep(0.2)


def test_revoked_charger_that_is_connected_is_dropped_and_cannot_reconnect(stack, new_charger):
    credentials = new_charger()

    async def run() -> dict[str, Any]:
        link = ChargerLink(credentials)
        await link.connect()
        try:
            done = await asyncio.to_thread(revoke, stack, credentials.charger_id, "--reason", "stolen")
            assert len(done["certificate_ids"]) == 1
            await asyncio.wait_for(link.wait_offline(), 10)
            await stays_offline(link, 4)  # reconnects every 1-2 s; the CRL refuses each
        finally:
            await link.close()
        with pytest.raises(LinkError):
            await ChargerLink(credentials).connect(timeout=8)
        return done

    done = asyncio.run(run())
    charger = registry().get(credentials.charger_id)
    assert charger.revoked_at is not None and charger.revocation_reason == "stolen"
    eventually(lambda: not registry().get(credentials.charger_id).online)
    iot = boto3.client("iot")
    assert iot.list_thing_principals(thingName=credentials.charger_id)["principals"] == []
    (certificate_id,) = done["certificate_ids"]
    description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    assert description["status"] == "REVOKED"
    assert iot.list_attached_policies(target=description["certificateArn"])["policies"] == []


def test_revoked_chargers_open_session_is_closed_from_its_last_reading_for_review(stack, new_charger, tag):
    credentials = new_charger()

    async def run() -> int:
        async with RawCharger(credentials) as charger:
            driver = Driver(charger)
            started = await driver.call(
                "StartTransaction",
                {"connectorId": 1, "idTag": tag, "meterStart": 5_000, "timestamp": now_iso(-20)},
            )
            tx = started["transactionId"]
            await driver.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": tx,
                    "meterValue": [{"timestamp": now_iso(-1), "sampledValue": [{"value": "7500"}]}],
                },
            )
            return tx

    tx = str(asyncio.run(run()))
    eventually(lambda: session(tx).state == "active" and session(tx).energy_wh == 2_500)
    done = revoke(stack, credentials.charger_id)
    assert done["sessions_for_review"] == [tx]
    reviewed = session(tx)
    assert reviewed.state == "needs_review"
    assert "certificate revoked" in reviewed.review_reasons[0]
    assert reviewed.energy_wh == 2_500 and reviewed.stopped_at is not None
    again = cli(stack.home, "charger", "revoke", credentials.charger_id)
    assert again.returncode == 1 and "already revoked" in again.stderr


def test_expired_certificate_is_refused(stack, new_charger, tmp_path):
    credentials = new_charger()
    keystore = FileKeyStore(credentials.key_path.parent)
    expired = LocalCA(Path(stack.home) / "ca").sign_csr(
        keystore.create_csr(credentials.charger_id),
        expected_cn=credentials.charger_id,
        not_after=datetime.now(UTC) - timedelta(hours=1),
    )
    cert_path = tmp_path / "expired.pem"
    cert_path.write_text(expired.pem)
    with pytest.raises(LinkError):
        asyncio.run(ChargerLink(credentials.model_copy(update={"cert_path": cert_path})).connect(timeout=8))

    async def valid_still_connects() -> None:
        async with RawCharger(credentials):
            pass

    asyncio.run(valid_still_connects())  # the same key with its valid certificate


def certificate_statuses(charger_id: str) -> dict[str, str]:
    return {d["certificatePem"].strip(): d["status"] for d in thing_certificates(charger_id)}


def test_rotated_certificate_connects_and_the_old_one_is_refused(stack, new_charger, tmp_path):
    credentials = new_charger()
    old_cert, old_key = tmp_path / "old.pem", tmp_path / "old.key"
    old_cert.write_text(credentials.cert_path.read_text())
    old_key.write_bytes(credentials.key_path.read_bytes())

    rotated = cli(stack.home, "charger", "rotate", credentials.charger_id)
    assert rotated.returncode == 0, rotated.stderr

    async def run() -> None:
        async with RawCharger(credentials):  # the same charger.json, now the new pair
            pass
        old = credentials.model_copy(update={"cert_path": old_cert, "key_path": old_key})
        with pytest.raises(LinkError):
            await ChargerLink(old).connect(timeout=8)

    asyncio.run(run())
    assert credentials.key_path.read_bytes() != old_key.read_bytes()
    statuses = certificate_statuses(credentials.charger_id)
    assert statuses == {
        old_cert.read_text().strip(): "INACTIVE",
        credentials.cert_path.read_text().strip(): "ACTIVE",
    }
    # The validity is IoT's choice (locally the CA's default); the registry records the new one's.
    new_expiry = x509.load_pem_x509_certificate(credentials.cert_path.read_bytes()).not_valid_after_utc
    assert registry().get(credentials.charger_id).certificate_not_after == new_expiry


def test_shim_rotates_a_short_lived_certificate_before_expiry(stack, new_charger):
    from chargenet_shim.rotation import not_after, renew_before_expiry, rotate

    credentials = new_charger()
    keystore = FileKeyStore(credentials.key_path.parent)

    async def run() -> None:
        link = ChargerLink(credentials)
        await link.connect()
        try:
            # A certificate 10 days from expiry, rotated in as a running shim would.
            await rotate(link, keystore, LocalIssuer(stack, days=10))
            assert not_after(credentials.cert_path) - datetime.now(UTC) < timedelta(days=11)
            short_lived = credentials.cert_path.read_text()
            watch = asyncio.create_task(
                renew_before_expiry(link, keystore, LocalIssuer(stack), check_every_s=0.2)
            )
            try:
                await asyncio.wait_for(_renewed(credentials.cert_path), 30)
                # The shim confirms after it switched: the old certificate goes inactive then.
                await asyncio.to_thread(eventually, lambda: retired(credentials.charger_id, short_lived))
            finally:
                watch.cancel()
            assert link.online
        finally:
            await link.close()

    asyncio.run(run())
    # What the fault sweep's CertificateExpiry reads: renewed, so the fault resolves.
    expiry = registry().get(credentials.charger_id).certificate_not_after
    assert expiry - datetime.now(UTC) > timedelta(days=300)


def retired(charger_id: str, certificate_pem: str) -> bool:
    return certificate_statuses(charger_id)[certificate_pem.strip()] == "INACTIVE"


async def _renewed(cert_path: Path) -> None:
    from chargenet_shim.rotation import not_after

    while not_after(cert_path) - datetime.now(UTC) < timedelta(days=300):
        await asyncio.sleep(0.2)


class RogueIssuer:
    """Signs with a CA the broker does not trust: the new certificate is refused."""

    def __init__(self, folder: Path) -> None:
        self.ca = LocalCA(folder).ensure()
        self.confirmed = False
        self.abandoned: list[str] = []

    def sign(self, charger_id: str, csr_pem: str):
        from chargenet_shim.rotation import SignedCertificate

        issued = self.ca.sign_csr(csr_pem, expected_cn=charger_id)
        return SignedCertificate(issued.pem, self.ca.cert_path.read_text())

    def confirm(self, charger_id: str, new_certificate_pem: str, old_certificate_pem: str) -> None:
        self.confirmed = True

    def abandon(self, charger_id: str, certificate_pem: str) -> None:
        self.abandoned.append(certificate_pem)


def test_a_refused_new_certificate_leaves_the_charger_on_its_old_one(stack, new_charger, tmp_path):
    from chargenet_shim.rotation import rotate

    credentials = new_charger()
    keystore = FileKeyStore(credentials.key_path.parent)
    before = credentials.cert_path.read_text()
    issuer = RogueIssuer(tmp_path / "rogue")

    async def run() -> None:
        link = ChargerLink(credentials)
        await link.connect()
        try:
            with pytest.raises(LinkError):
                await rotate(link, keystore, issuer)
            assert link.online and link.credentials.cert_path == credentials.cert_path
        finally:
            await link.close()

    asyncio.run(run())
    assert not issuer.confirmed and len(issuer.abandoned) == 1
    assert credentials.cert_path.read_text() == before
    assert not keystore.pending_key_path.exists() and not keystore.pending_cert_path.exists()
