"""Rotation by age: IoT's certificates are valid until 2049, so expiry alone would never rotate them.

The pure decision (rotation_due), the certificate file's dates (renewal_due), the renewal loop
every link runs (renew_before_expiry, with MaximumAge), and the shim's --rotate-after-days.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_link import credentials

from chargenet_local.pki import LocalCA
from chargenet_shim import cli
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.rotation import (
    DEFAULT_ROTATE_AFTER,
    MaximumAge,
    SignedCertificate,
    renew_before_expiry,
    renewal_due,
    rotation_due,
)

ISSUED = datetime(2026, 1, 1, tzinfo=UTC)
IOT_EXPIRY = datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)  # CreateCertificateFromCsr's notAfter
MONTH = timedelta(days=30)
YEAR = timedelta(days=365)


def due(now: datetime, rotate_after: timedelta | None = YEAR, not_after: datetime = IOT_EXPIRY) -> bool:
    return rotation_due(ISSUED, not_after, now, renew_before=MONTH, rotate_after=rotate_after)


def test_a_young_certificate_far_from_expiry_is_kept():
    assert not due(ISSUED + timedelta(days=364))


def test_a_certificate_older_than_the_maximum_age_is_rotated_however_far_its_expiry():
    assert due(ISSUED + YEAR)
    assert due(ISSUED + timedelta(days=3000))


def test_no_maximum_age_leaves_only_the_expiry_rule():
    assert not due(ISSUED + timedelta(days=3000), rotate_after=None)
    assert due(IOT_EXPIRY - timedelta(days=10), rotate_after=None)


def test_near_expiry_is_due_whatever_the_age():
    assert due(ISSUED + timedelta(days=1), not_after=ISSUED + timedelta(days=20))


def test_a_certificate_from_the_future_is_not_old():
    """A charger clock behind the CA's sees notBefore ahead of now: that is no reason to rotate."""
    assert not due(ISSUED - timedelta(days=400))


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA(tmp_path / "ca").ensure()


@pytest.fixture
def store(ca: LocalCA, tmp_path: Path) -> FileKeyStore:
    """A charger's key store holding a certificate valid until 2049, as IoT issues them."""
    keystore = FileKeyStore(tmp_path / "CP-AGE")
    issued = ca.sign_csr(keystore.create_csr("CP-AGE"), expected_cn="CP-AGE", not_after=IOT_EXPIRY)
    keystore.install_certificate(issued.pem, ca.cert_path.read_text())
    return keystore


def test_renewal_due_reads_the_age_from_the_certificate_file(store: FileKeyStore):
    issued_at = datetime.now(UTC)
    assert not renewal_due(store.cert_path, issued_at + timedelta(days=300))
    assert renewal_due(store.cert_path, issued_at + DEFAULT_ROTATE_AFTER + timedelta(days=1))
    assert not renewal_due(store.cert_path, issued_at + timedelta(days=3000), rotate_after=None)


class Issuer:
    """The operator side of a rotation over the charger's link (a LinkIssuer), signed by the local CA."""

    def __init__(self, ca: LocalCA) -> None:
        self._ca = ca
        self.signed: list[str] = []
        self.confirmed = asyncio.Event()

    async def sign(self, charger_id: str, csr_pem: str) -> SignedCertificate:
        issued = self._ca.sign_csr(csr_pem, expected_cn=charger_id, not_after=IOT_EXPIRY)
        self.signed.append(issued.pem)
        return SignedCertificate(issued.pem, self._ca.cert_path.read_text())

    async def confirm(self, charger_id: str, new_certificate_pem: str, old_certificate_pem: str) -> None:
        self.confirmed.set()

    async def abandon(self, charger_id: str, certificate_pem: str) -> None:
        raise AssertionError("the new certificate was refused")


class Link:
    """A link that is up and accepts any certificate it is switched to."""

    online = True

    def __init__(self, keystore: FileKeyStore) -> None:
        self.credentials: ChargerCredentials = credentials("CP-AGE").model_copy(
            update={
                "cert_path": keystore.cert_path,
                "key_path": keystore.key_path,
                "ca_path": keystore.ca_path,
            }
        )

    async def switch_credentials(self, new: ChargerCredentials) -> None:
        self.credentials = new


async def run_checks(store: FileKeyStore, issuer: Issuer, now: datetime, checks: int) -> None:
    """The renewal loop for `checks` checks at `now`, or until a rotation is confirmed."""
    asked = 0
    enough = asyncio.Event()

    def clock() -> datetime:
        nonlocal asked
        asked += 1
        if asked >= checks:
            enough.set()
        return now

    loop = asyncio.create_task(
        renew_before_expiry(Link(store), store, issuer, renew_before=MONTH, check_every_s=0.01, now=clock)
    )
    try:
        done = asyncio.create_task(issuer.confirmed.wait())
        await asyncio.wait({done, asyncio.create_task(enough.wait())}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


def test_the_renewal_loop_rotates_a_certificate_past_the_maximum_age(store, ca, monkeypatch):
    monkeypatch.setattr(MaximumAge, "rotate_after", YEAR)
    old = store.cert_path.read_text()
    issuer = Issuer(ca)

    asyncio.run(run_checks(store, issuer, datetime.now(UTC) + YEAR + timedelta(days=1), checks=50))

    assert issuer.confirmed.is_set()
    assert store.cert_path.read_text() == issuer.signed[0] != old


def test_the_renewal_loop_keeps_an_old_certificate_when_age_rotation_is_off(store, ca, monkeypatch):
    monkeypatch.setattr(MaximumAge, "rotate_after", None)
    old = store.cert_path.read_text()
    issuer = Issuer(ca)

    asyncio.run(run_checks(store, issuer, datetime.now(UTC) + timedelta(days=3000), checks=5))

    assert issuer.signed == [] and store.cert_path.read_text() == old


@pytest.mark.parametrize(("days", "maximum"), [(0, None), (90, timedelta(days=90))])
def test_rotate_after_days_sets_the_shims_maximum_age(days, maximum, monkeypatch):
    monkeypatch.setattr(MaximumAge, "rotate_after", DEFAULT_ROTATE_AFTER)
    cli._configure_maximum_age(argparse.Namespace(rotate_after_days=days))
    assert MaximumAge.rotate_after == maximum


@pytest.mark.parametrize("command", ["simulate", "gateway"])
def test_a_negative_maximum_age_is_a_usage_error(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(MaximumAge, "rotate_after", DEFAULT_ROTATE_AFTER)
    folder = tmp_path / "CP-001"
    folder.mkdir()
    credentials("CP-001").save(folder)
    extra = ["--port", "8180"] if command == "gateway" else []
    assert cli.main([command, "--credentials-dir", str(tmp_path), *extra, "--rotate-after-days", "-1"]) == 2
    assert "--rotate-after-days must be 0 (no maximum age) or more" in capsys.readouterr().err
    assert MaximumAge.rotate_after == DEFAULT_ROTATE_AFTER


@pytest.mark.parametrize("command", ["simulate", "gateway"])
def test_the_help_explains_the_maximum_age(command, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    assert "this many days old, however far its expiry" in " ".join(capsys.readouterr().out.split())
