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
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, UpdateFirmwareStatus

from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import registry
from tests.integration.signed_firmware import (
    IMAGE_PREFIX,
    InstallsSignedImages,
    Releases,
    behind_the_gateway,
    publish_releases,
    release_to_refuse,
    rolled_out,
)

PASSWORD = "gateway-firmware-site"
FACTORY_VERSION = "31.0.0"
# The real charger behind the gateway boots as ACME W9: the releases are signed for it.
FOR_W9 = ("--charge-point-vendor", "ACME", "--charge-point-model", "W9")


@pytest.fixture(scope="module")
def releases(stack, tmp_path_factory) -> Releases:
    """31.1.0 with the manufacturer's signature, 31.2.0 without (signed_firmware.py)."""
    return publish_releases(
        stack.home, tmp_path_factory.mktemp("gateway-firmware"), "31.1.0", "31.2.0", "ACME", "W9"
    )


class RealCharger(InstallsSignedImages, ChargePoint):
    """A charger with the security extension: downloads the offered image, checks the manufacturer's
    signature with the certificate that came with it, installs, reboots into it and says so."""

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(self, **_: Any) -> call_result.SignedUpdateFirmware:
        return call_result.SignedUpdateFirmware(status=UpdateFirmwareStatus.accepted)

    @after(Action.signed_update_firmware)
    async def install(self, request_id: int, firmware: dict[str, Any], **_: Any) -> None:
        await self.install_offered(request_id, firmware)

    async def _boot_into(self, version: str, request_id: int) -> None:
        await self.call(
            call.BootNotification(
                charge_point_model="W9", charge_point_vendor="ACME", firmware_version=version
            )
        )

    async def _status(self, status: str, request_id: int) -> None:
        await self.call(call.SignedFirmwareStatusNotification(status=status, request_id=request_id))


@contextlib.asynccontextmanager
async def real_charger(home: str, charger_id: str, operator_key: Path) -> AsyncIterator[RealCharger]:
    """The gateway, pinning the operator key, and a RealCharger booted through it on FACTORY_VERSION."""
    async with behind_the_gateway(
        home, charger_id, PASSWORD, operator_key, "ocpp1.6", RealCharger
    ) as charger:
        await charger.call(
            call.BootNotification(
                charge_point_model="W9", charge_point_vendor="ACME", firmware_version=FACTORY_VERSION
            )
        )
        yield charger


def test_a_vendor_signed_release_is_offered_to_a_real_charger_and_installed(stack, new_charger, releases):
    credentials = new_charger(site="SITE-GWFW", password=PASSWORD)
    charger_id, version = credentials.charger_id, releases.vendor_signed

    async def scenario() -> tuple[RealCharger, dict[str, Any]]:
        async with real_charger(stack.home, charger_id, releases.operator_key) as charger:
            return charger, await rolled_out(stack.home, charger_id, version, "installed", "Installed")

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


@pytest.mark.parametrize("refused", ["tampered", "no-vendor-signature"])
def test_a_release_the_gateway_refuses_never_reaches_the_real_charger(stack, new_charger, releases, refused):
    credentials = new_charger(site="SITE-GWFW", password=PASSWORD)
    charger_id = credentials.charger_id
    version = release_to_refuse(stack, releases, refused, forged_version="31.3.0")

    async def scenario() -> tuple[RealCharger, dict[str, Any]]:
        async with real_charger(stack.home, charger_id, releases.operator_key) as charger:
            return charger, await rolled_out(stack.home, charger_id, version, "refused", "InstallationFailed")

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
