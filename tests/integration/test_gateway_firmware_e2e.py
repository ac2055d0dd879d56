"""Signed firmware to a real charger behind the gateway, on the real local stack.

`chargenet firmware publish --vendor-signature --signing-certificate` stores the release in moto S3;
`deploy` creates an IoT job whose execution the gateway takes through the local stack's Jobs API on
mosquitto; it downloads the package through the pre-signed URL in the job document, verifies it with the operator key the stack made, and offers
the image to the `ocpp` package's v16 ChargePoint with SignedUpdateFirmware. That charger checks
the manufacturer's signature itself; its SignedFirmwareStatusNotifications reach the backend as
FirmwareStatusNotifications and its job execution's statuses, which `chargenet firmware status` shows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, UpdateFirmwareStatus
from websockets.asyncio.client import connect
from websockets.headers import build_authorization_basic

from chargenet_shim.gateway import GatewayConfig, serve
from tests.integration.conftest import registry
from tests.integration.test_cli import run as cli
from tests.integration.test_firmware_e2e import firmware, job_reaches, store_forged_release, until

PASSWORD = "gateway-firmware-site"
FACTORY_VERSION = "31.0.0"
# The image names its version, so the charger knows what it boots after installing it.
IMAGE_PREFIX = b"\x7fELF real charger firmware " * 400 + b"version "
# The real charger behind the gateway boots as ACME W9: the releases are signed for it.
FOR_W9 = ("--charge-point-vendor", "ACME", "--charge-point-model", "W9")
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)


@dataclass(frozen=True)
class Releases:
    operator_key: Path
    vendor_signed: str
    unsigned_by_vendor: str


@pytest.fixture(scope="module")
def releases(stack, tmp_path_factory) -> Releases:
    """31.1.0 with the manufacturer's signature (RSA-PSS over the image, as the whitepaper has it), 31.2.0 without."""
    folder = tmp_path_factory.mktemp("gateway-firmware")
    manufacturer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = folder / "acme-firmware-signing.pem"
    certificate.write_bytes(_self_signed(manufacturer).public_bytes(serialization.Encoding.PEM))
    for version, vendor in (("31.1.0", True), ("31.2.0", False)):
        image = folder / f"fw-{version}.bin"
        image.write_bytes(IMAGE_PREFIX + version.encode())
        options: list[str] = []
        if vendor:
            signature = folder / f"fw-{version}.sig"
            signature.write_bytes(manufacturer.sign(image.read_bytes(), PSS, hashes.SHA256()))
            options = ["--vendor-signature", str(signature), "--signing-certificate", str(certificate)]
        done = cli(stack.home, "firmware", "publish", str(image), "--version", version, *FOR_W9, *options)
        assert done.returncode == 0, done.stderr
        assert ("with the manufacturer's signature" in done.stdout) == vendor
    return Releases(Path(stack.home) / "firmware" / "operator-key.pub.pem", "31.1.0", "31.2.0")


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME firmware signing")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


class RealCharger(ChargePoint):
    """A charger with the security extension: downloads the offered image, checks the manufacturer's
    signature with the certificate that came with it, installs, reboots into it and says so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offers: list[dict[str, Any]] = []
        self.reported: list[str] = []
        self.image: bytes | None = None

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(self, **_: Any) -> call_result.SignedUpdateFirmware:
        return call_result.SignedUpdateFirmware(status=UpdateFirmwareStatus.accepted)

    @after(Action.signed_update_firmware)
    async def install(self, request_id: int, firmware: dict[str, Any], **_: Any) -> None:
        # ocpp hands the payload over in snake_case, nested keys included.
        self.offers.append(firmware)
        await self._status("Downloading", request_id)
        self.image = await asyncio.to_thread(_download, firmware["location"])
        await self._status("Downloaded", request_id)
        certificate = x509.load_pem_x509_certificate(firmware["signing_certificate"].encode())
        try:
            certificate.public_key().verify(
                base64.b64decode(firmware["signature"]), self.image, PSS, hashes.SHA256()
            )
        except InvalidSignature:
            await self._status("InvalidSignature", request_id)
            return
        await self._status("SignatureVerified", request_id)
        await self._status("Installing", request_id)
        version = self.image.removeprefix(IMAGE_PREFIX).decode()
        await self.call(
            call.BootNotification(
                charge_point_model="W9", charge_point_vendor="ACME", firmware_version=version
            )
        )
        await self._status("Installed", request_id)

    async def _status(self, status: str, request_id: int) -> None:
        self.reported.append(status)
        await self.call(call.SignedFirmwareStatusNotification(status=status, request_id=request_id))


def _download(location: str) -> bytes:
    with urllib.request.urlopen(location, timeout=10) as response:
        return response.read()


@contextlib.asynccontextmanager
async def real_charger(home: str, charger_id: str, operator_key: Path) -> AsyncIterator[RealCharger]:
    """The gateway, pinning the operator key, and a RealCharger booted through it on FACTORY_VERSION."""
    gateway = await serve(
        GatewayConfig(
            port=0, credentials_dir=Path(home) / "chargers", allow_plain_ws=True, firmware_key=operator_key
        )
    )
    authorization = {"Authorization": build_authorization_basic(charger_id, PASSWORD)}
    try:
        async with connect(
            f"ws://127.0.0.1:{gateway.port}/ocpp/{charger_id}",
            subprotocols=["ocpp1.6"],
            additional_headers=authorization,
        ) as websocket:
            charger = RealCharger(charger_id, websocket, response_timeout=15)
            receiver = asyncio.create_task(charger.start())
            try:
                await charger.call(
                    call.BootNotification(
                        charge_point_model="W9", charge_point_vendor="ACME", firmware_version=FACTORY_VERSION
                    )
                )
                yield charger
            finally:
                receiver.cancel()
    finally:
        await gateway.close()


def test_a_vendor_signed_release_is_offered_to_a_real_charger_and_installed(stack, new_charger, releases):
    credentials = new_charger(site="SITE-GWFW", password=PASSWORD)
    charger_id, version = credentials.charger_id, releases.vendor_signed

    async def scenario() -> tuple[RealCharger, dict[str, Any]]:
        async with real_charger(stack.home, charger_id, releases.operator_key) as charger:
            await firmware(stack.home, "deploy", version, "--charger", charger_id)
            done = await until(job_reaches(stack.home, charger_id, version, {"installed"}, "Installed"))
            return charger, done

    charger, done = asyncio.run(scenario())

    assert charger.image == IMAGE_PREFIX + version.encode()
    [offer] = charger.offers
    assert offer["location"].startswith("http://127.0.0.1:") and "/firmware/" in offer["location"]
    assert charger.reported == ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
    assert (done["state"], done["running_version"], done["firmware_status"]) == (
        "installed",
        version,
        "Installed",
    )
    assert registry().get(charger_id).firmware_version == version


def _tampered(package: bytes) -> bytes:
    return package.replace(b"real charger firmware", b"real charger backdoor")


@pytest.mark.parametrize("refused", ["tampered", "no-vendor-signature"])
def test_a_release_the_gateway_refuses_never_reaches_the_real_charger(stack, new_charger, releases, refused):
    credentials = new_charger(site="SITE-GWFW", password=PASSWORD)
    charger_id = credentials.charger_id
    if refused == "tampered":
        version = "31.3.0"
        store_forged_release(stack, version, _tampered, genuine_version=releases.vendor_signed)
    else:
        version = releases.unsigned_by_vendor

    async def scenario() -> tuple[RealCharger, dict[str, Any]]:
        async with real_charger(stack.home, charger_id, releases.operator_key) as charger:
            await firmware(stack.home, "deploy", version, "--charger", charger_id)
            done = await until(
                job_reaches(stack.home, charger_id, version, {"refused", "failed"}, "InstallationFailed")
            )
            return charger, done

    charger, done = asyncio.run(scenario())

    assert charger.offers == [] and charger.image is None
    assert (done["state"], done["running_version"]) == ("refused", FACTORY_VERSION)
    faults = json.loads(cli(stack.home, "fault", "list", "--json").stdout)
    security = [f["code"] for f in faults if f["charger_id"] == charger_id and f["kind"] == "security_event"]
    if refused == "tampered":
        assert security == ["InvalidFirmwareSignature"]
    else:
        assert security == [], "a release without the manufacturer's signature is a mistake, not an attack"


def test_publish_refuses_half_a_vendor_signature_or_a_certificate_that_is_not_one(stack, tmp_path):
    image, signature, garbage = tmp_path / "fw.bin", tmp_path / "fw.sig", tmp_path / "not-a-cert.pem"
    image.write_bytes(IMAGE_PREFIX + b"31.9.0")
    signature.write_bytes(b"\x30\x45 a signature")
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
    publish = [
        "firmware",
        "publish",
        str(image),
        "--version",
        "31.9.0",
        *FOR_W9,
        "--vendor-signature",
        str(signature),
    ]

    half = cli(stack.home, *publish)
    bad = cli(stack.home, *publish, "--signing-certificate", str(garbage))

    assert (half.returncode, "go together" in half.stderr) == (2, True)
    assert (bad.returncode, "not a PEM X.509 certificate" in bad.stderr) == (1, True)
    listed = boto3.client("s3").list_objects_v2(
        Bucket=stack.buckets["FirmwareBucket"], Prefix="firmware/31.9.0/"
    )
    assert listed.get("KeyCount") == 0, "nothing was published"
