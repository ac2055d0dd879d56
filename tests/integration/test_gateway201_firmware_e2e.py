"""Signed firmware to a real OCPP 2.0.1 charger behind the gateway, on the real local stack.

As test_gateway_firmware_e2e.py (1.6), in 2.0.1's words: `chargenet firmware publish
--vendor-signature --signing-certificate` stores the release; `deploy` creates an IoT job whose
execution the gateway takes on the charger's MQTT link; it downloads the package, verifies it with
the operator key the stack made, and offers the image to the `ocpp` package's v201 ChargePoint
(subprotocol ocpp2.0.1) as a 2.0.1 UpdateFirmware, the manufacturer's signingCertificate and
signature in the message (L01). The station checks the signature itself, reboots into the image
and reports each step with FirmwareStatusNotification{status, requestId}; the backend records the
statuses, the job and the version the station boots. A package that fails the gateway's check
never reaches the station: the backend hears SecurityEventNotification InvalidFirmwareSignature
and FirmwareStatusNotification InvalidSignature, and the job ends unsuccessful.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import eventually, registry
from tests.integration.signed_firmware import (
    IMAGE_PREFIX,
    InstallsSignedImages,
    Releases,
    behind_the_gateway,
    publish_releases,
    release_to_refuse,
    rolled_out,
)

PASSWORD = "gateway-201-firmware-site"
VENDOR, MODEL = "Vendo", "Wallbox 201"
FACTORY_VERSION = "41.0.0"


@pytest.fixture(scope="module")
def releases(stack, tmp_path_factory) -> Releases:
    """41.1.0 with the manufacturer's signature, 41.2.0 without, for the Vendo Wallbox 201."""
    return publish_releases(
        stack.home, tmp_path_factory.mktemp("gateway201-firmware"), "41.1.0", "41.2.0", VENDOR, MODEL
    )


class Station(InstallsSignedImages, ChargePoint):
    """A 2.0.1 station that takes UpdateFirmware (L01), checks the manufacturer's signature with the
    certificate in the message, installs, reboots into the image and says so."""

    @on(Action.update_firmware)
    def on_update_firmware(self, **_: Any) -> call_result.UpdateFirmware:
        return call_result.UpdateFirmware(status="Accepted")

    @after(Action.update_firmware)
    async def install(self, request_id: int, firmware: dict[str, Any], **_: Any) -> None:
        await self.install_offered(request_id, firmware)

    async def _boot_into(self, version: str, request_id: int) -> None:
        # A station that must reboot to activate the image says so first (2.0.1's InstallRebooting).
        await self._report(request_id, "InstallRebooting")
        await self.call(_boot(version, reason="FirmwareUpdate"))

    async def _status(self, status: str, request_id: int) -> None:
        await self.call(call.FirmwareStatusNotification(status=status, request_id=request_id))


def _boot(version: str, reason: str = "PowerUp") -> call.BootNotification:
    station = {"model": MODEL, "vendor_name": VENDOR, "firmware_version": version}
    return call.BootNotification(charging_station=station, reason=reason)


@contextlib.asynccontextmanager
async def station(home: str, charger_id: str, operator_key: Path) -> AsyncIterator[Station]:
    """A Station through the gateway (pinning the operator key), booted on FACTORY_VERSION."""
    async with behind_the_gateway(home, charger_id, PASSWORD, operator_key, "ocpp2.0.1", Station) as charger:
        await charger.call(_boot(FACTORY_VERSION))
        yield charger


def test_a_vendor_signed_release_reaches_a_201_station_as_update_firmware_and_is_installed(
    stack, new_charger, releases
):
    credentials = new_charger(site="SITE-GW201FW", password=PASSWORD)
    charger_id, version = credentials.charger_id, releases.vendor_signed

    async def scenario() -> tuple[Station, dict[str, Any]]:
        async with station(stack.home, charger_id, releases.operator_key) as charger:
            return charger, await rolled_out(stack.home, charger_id, version, "installed", "Installed")

    charger, done = asyncio.run(scenario())

    assert charger.image == IMAGE_PREFIX + version.encode()
    [offer] = charger.offers
    # A v201 ChargePoint validated the offer against 2.0.1's UpdateFirmware schema before taking it.
    assert set(offer) >= {"location", "retrieve_date_time", "signing_certificate", "signature"}
    assert offer["location"].startswith("http://127.0.0.1:") and "/firmware/" in offer["location"]
    assert charger.reported == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "InstallRebooting",
        "Installed",
    ]
    assert (done["state"], done["running_version"], done["firmware_status"]) == (
        "installed",
        version,
        "Installed",
    )
    recorded = registry().get(charger_id)
    assert (recorded.ocpp_version, recorded.firmware_version, recorded.firmware_status) == (
        "ocpp2.0.1",
        version,
        "Installed",
    )


@pytest.mark.parametrize(
    ("refused", "heard", "security_events"),
    [
        ("tampered", "InvalidSignature", ["InvalidFirmwareSignature"]),
        # A release without the manufacturer's signature is a mistake, not an attack: no security event.
        ("no-vendor-signature", "InstallationFailed", []),
    ],
)
def test_a_release_the_gateway_refuses_never_reaches_the_201_station_and_the_job_fails(
    stack, new_charger, releases, refused, heard, security_events
):
    credentials = new_charger(site="SITE-GW201FW", password=PASSWORD)
    charger_id = credentials.charger_id
    version = release_to_refuse(stack, releases, refused, forged_version="41.3.0")

    async def scenario() -> tuple[Station, dict[str, Any]]:
        async with station(stack.home, charger_id, releases.operator_key) as charger:
            # The job's statuses are in the seven words both versions share (jobs.core_status):
            # 2.0.1's InvalidSignature ends it as InstallationFailed, its reason the security event.
            return charger, await rolled_out(stack.home, charger_id, version, "refused", "InstallationFailed")

    charger, done = asyncio.run(scenario())

    assert charger.offers == [] and charger.image is None, "nothing reaches the station"
    assert (done["state"], done["running_version"]) == ("refused", FACTORY_VERSION)
    if security_events:
        assert done["reason"] == "InvalidFirmwareSignature"
    # The backend heard FirmwareStatusNotification in 2.0.1's own word (the gateway's, for the station).
    recorded = eventually(lambda: (c := registry().get(charger_id)).firmware_status == heard and c)
    assert recorded.firmware_version == FACTORY_VERSION
    faults = json.loads(cli(stack.home, "fault", "list", "--json").stdout)
    security = [f["code"] for f in faults if f["charger_id"] == charger_id and f["kind"] == "security_event"]
    assert security == security_events
