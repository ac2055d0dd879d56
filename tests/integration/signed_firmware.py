"""Manufacturer-signed firmware for a real charger behind the gateway, in either OCPP version.

Shared by test_gateway_firmware_e2e.py (1.6: SignedUpdateFirmware) and
test_gateway201_firmware_e2e.py (2.0.1: UpdateFirmware with the signature in the message). The
manufacturer signs the image (RSA-PSS over it, as the security whitepaper has it) and ships its
signing certificate; the operator publishes the release with both (`chargenet firmware publish
--vendor-signature --signing-certificate`) and signs the package itself. The charger checks the
manufacturer's signature with the certificate that came with the offer, installs, and boots the
version the image names.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.headers import build_authorization_basic

from chargenet_shim.gateway import GatewayConfig, serve
from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.test_firmware_e2e import firmware, job_reaches, store_forged_release, until

# The image names its version, so the charger knows what it boots after installing it.
IMAGE_PREFIX = b"\x7fELF real charger firmware " * 400 + b"version "
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)


@dataclass(frozen=True)
class Releases:
    operator_key: Path
    vendor_signed: str
    unsigned_by_vendor: str


def publish_releases(
    home: str, folder: Path, vendor_signed: str, unsigned_by_vendor: str, vendor: str, model: str
) -> Releases:
    """Two releases for `vendor` `model`: `vendor_signed` with the manufacturer's signature, the other without."""
    manufacturer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = folder / "manufacturer-firmware-signing.pem"
    certificate.write_bytes(_self_signed(manufacturer).public_bytes(serialization.Encoding.PEM))
    for version, signed in ((vendor_signed, True), (unsigned_by_vendor, False)):
        image = folder / f"fw-{version}.bin"
        image.write_bytes(IMAGE_PREFIX + version.encode())
        options: list[str] = []
        if signed:
            signature = folder / f"fw-{version}.sig"
            signature.write_bytes(manufacturer.sign(image.read_bytes(), PSS, hashes.SHA256()))
            options = ["--vendor-signature", str(signature), "--signing-certificate", str(certificate)]
        target = ("--charge-point-vendor", vendor, "--charge-point-model", model)
        done = cli(home, "firmware", "publish", str(image), "--version", version, *target, *options)
        assert done.returncode == 0, done.stderr
        assert ("with the manufacturer's signature" in done.stdout) == signed
    return Releases(Path(home) / "firmware" / "operator-key.pub.pem", vendor_signed, unsigned_by_vendor)


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Manufacturer firmware signing")])
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


def _tampered(package: bytes) -> bytes:
    """What an attacker who can write the download would make of a real package."""
    return package.replace(b"real charger firmware", b"real charger backdoor")


def release_to_refuse(stack: Any, releases: Releases, refused: str, forged_version: str) -> str:
    """The version to deploy for `refused`: "tampered", the vendor-signed release altered in the
    bucket as `forged_version`; "no-vendor-signature", the release published without it."""
    if refused == "tampered":
        store_forged_release(stack, forged_version, _tampered, genuine_version=releases.vendor_signed)
        return forged_version
    return releases.unsigned_by_vendor


async def rolled_out(home: str, charger_id: str, version: str, state: str, firmware_status: str) -> Any:
    """`chargenet firmware deploy VERSION --charger ID`, then the charger's `firmware status` record
    once the job is in `state` with that last firmware status."""
    await firmware(home, "deploy", version, "--charger", charger_id)
    return await until(job_reaches(home, charger_id, version, {state}, firmware_status))


class InstallsSignedImages:
    """A charger's side of a signed update, whichever OCPP version offered it: download, check the
    manufacturer's signature, install, boot the new version; each step reported by `_status`.

    Mixed into an `ocpp` ChargePoint, whose `@after` handler of the offer calls `install_offered`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offers: list[dict[str, Any]] = []
        self.reported: list[str] = []
        self.image: bytes | None = None

    async def install_offered(self, request_id: int, firmware: dict[str, Any]) -> None:
        # ocpp hands the payload over in snake_case, nested keys included.
        self.offers.append(firmware)
        await self._report(request_id, "Downloading")
        self.image = await asyncio.to_thread(_download, firmware["location"])
        await self._report(request_id, "Downloaded")
        certificate = x509.load_pem_x509_certificate(firmware["signing_certificate"].encode())
        try:
            certificate.public_key().verify(
                base64.b64decode(firmware["signature"]), self.image, PSS, hashes.SHA256()
            )
        except InvalidSignature:
            await self._report(request_id, "InvalidSignature")
            return
        await self._report(request_id, "SignatureVerified", "Installing")
        await self._boot_into(self.image.removeprefix(IMAGE_PREFIX).decode(), request_id)
        await self._report(request_id, "Installed")

    async def _report(self, request_id: int, *statuses: str) -> None:
        for status in statuses:
            self.reported.append(status)
            await self._status(status, request_id)

    async def _status(self, status: str, request_id: int) -> None:
        """The firmware status notification in the charger's OCPP version."""
        raise NotImplementedError

    async def _boot_into(self, version: str, request_id: int) -> None:
        """Restart into `version`: its BootNotification, in the charger's OCPP version."""
        raise NotImplementedError


def _download(location: str) -> bytes:
    with urllib.request.urlopen(location, timeout=10) as response:
        return bytes(response.read())


@contextlib.asynccontextmanager
async def behind_the_gateway(
    home: str,
    charger_id: str,
    password: str,
    operator_key: Path,
    subprotocol: str,
    make_charger: Callable[..., Any],
) -> AsyncIterator[Any]:
    """A gateway pinning `operator_key` (profile 1) and a charger (an `ocpp` ChargePoint made by
    `make_charger`) connected through it in `subprotocol`, receiving."""
    gateway = await serve(
        GatewayConfig(
            port=0, credentials_dir=Path(home) / "chargers", allow_plain_ws=True, firmware_key=operator_key
        )
    )
    try:
        async with connect(
            f"ws://127.0.0.1:{gateway.port}/ocpp/{charger_id}",
            subprotocols=[subprotocol],
            additional_headers={"Authorization": build_authorization_basic(charger_id, password)},
        ) as websocket:
            assert websocket.subprotocol == subprotocol
            charger = make_charger(charger_id, websocket, response_timeout=15)
            receiver = asyncio.create_task(charger.start())
            try:
                yield charger
            finally:
                receiver.cancel()
    finally:
        await gateway.close()
