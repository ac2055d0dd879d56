"""UpdateFirmware on a simulated charger, in process: what the backend sees, from the answer to the reboot."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools

import pytest
from booted import until
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fake_link import FakeLink, credentials
from plans import typical_plan
from test_firmware import FORCED, IMAGE, TARGET, package_server

from chargenet_firmware_format import OperatorKey, pack, sign
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import SimulatedCharger

pytestmark = pytest.mark.timeout(15)

OPERATOR = ec.generate_private_key(ec.SECP256R1())
OPERATOR_PEM = OPERATOR.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
PINNED = OperatorKey.from_pem(
    OPERATOR.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
)
_ids = itertools.count(1)


@contextlib.asynccontextmanager
async def booted(**options):
    link = FakeLink()
    charger = SimulatedCharger(credentials(), link=link, firmware="1.0.0", **options)
    charger.firmware_key = PINNED
    await charger.start()
    try:
        await charger.run_boot()
        yield charger, link
    finally:
        await charger.stop()


async def update_firmware(link: FakeLink, location: str, retrieve_date: dt.datetime | None = None) -> list:
    unique_id = f"backend-{next(_ids)}"
    moment = ocpp_timestamp(retrieve_date or dt.datetime.now(dt.UTC))
    link.push([2, unique_id, "UpdateFirmware", {"location": location, "retrieveDate": moment}])
    return await until(lambda: link.answer_to(unique_id))


def firmware_statuses(link: FakeLink) -> list[str]:
    return [payload["status"] for _, _, _, payload in link.calls("FirmwareStatusNotification")]


def boot_versions(link: FakeLink) -> list[str]:
    return [payload["firmwareVersion"] for _, _, _, payload in link.calls("BootNotification")]


def package(version: str, image: bytes = IMAGE, *, force: bool = False) -> bytes:
    return pack(sign(image, version, OPERATOR_PEM, target=FORCED if force else TARGET, force=force), image)


def test_an_update_is_answered_installed_and_the_new_version_boots():
    async def scenario():
        with package_server() as packages:
            async with booted() as (charger, link):
                answer = await update_firmware(link, packages.publish("fw", package("1.1.0")))
                await until(lambda: "Installed" in firmware_statuses(link))
                return answer, link, charger

    answer, link, charger = asyncio.run(scenario())

    assert answer[2] == {}
    assert firmware_statuses(link) == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert boot_versions(link) == ["1.0.0", "1.1.0"]
    actions = [action for _, _, action, _ in link.calls()]
    # The reboot's BootNotification comes between Installing and Installed.
    assert actions.index("BootNotification", 1) > actions.index("FirmwareStatusNotification", 2)
    assert charger.boot_request.firmware_version == "1.1.0"


def test_a_tampered_image_is_refused_and_reported_as_a_security_event():
    forged = package("1.1.0").replace(b"firmware", b"backdoor")

    async def scenario():
        with package_server() as packages:
            async with booted() as (_, link):
                await update_firmware(link, packages.publish("fw", forged))
                await until(lambda: "InstallationFailed" in firmware_statuses(link))
                return link

    link = asyncio.run(scenario())

    assert firmware_statuses(link) == ["Downloading", "Downloaded", "InstallationFailed"]
    [event] = [payload for _, _, _, payload in link.calls("SecurityEventNotification")]
    assert event["type"] == "InvalidFirmwareSignature"
    assert "SHA-256 differs" in event["techInfo"]
    assert boot_versions(link) == ["1.0.0"]


def test_a_firmware_that_does_not_boot_is_rolled_back_and_the_old_version_boots():
    async def scenario():
        with package_server() as packages:
            async with booted() as (charger, link):
                charger.unbootable_firmware = frozenset({"1.1.0"})
                await update_firmware(link, packages.publish("fw", package("1.1.0")))
                await until(lambda: "InstallationFailed" in firmware_statuses(link))
                return link, charger

    link, charger = asyncio.run(scenario())

    assert firmware_statuses(link) == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert boot_versions(link) == ["1.0.0", "1.0.0"]
    assert charger.boot_request.firmware_version == "1.0.0"


def test_an_older_image_is_refused_unless_its_signed_manifest_forces_it():
    async def scenario():
        with package_server() as packages:
            async with booted() as (charger, link):
                await update_firmware(link, packages.publish("old", package("0.9.0")))
                await until(lambda: "InstallationFailed" in firmware_statuses(link))
                # One update at a time: the next is dropped while this one's task is still ending.
                await until(lambda: charger._firmware_update.done())
                refused_boots = boot_versions(link)
                await update_firmware(link, packages.publish("forced", package("0.9.0", force=True)))
                await until(lambda: "Installed" in firmware_statuses(link))
                return link, refused_boots

    link, refused_boots = asyncio.run(scenario())

    assert refused_boots == ["1.0.0"]
    assert firmware_statuses(link) == [
        *["Downloading", "Downloaded", "InstallationFailed"],
        *["Downloading", "Downloaded", "Installing", "Installed"],
    ]
    assert boot_versions(link) == ["1.0.0", "0.9.0"]
    assert not link.calls("SecurityEventNotification")


def test_a_charger_of_another_model_or_past_the_expiry_refuses_a_forced_package():
    """The charger checks the signed statement against its own BootNotification and its own clock."""
    expired = SimClock(start=FORCED.expires_at + dt.timedelta(hours=1), speed=1)

    async def scenario(**options):
        with package_server() as packages:
            async with booted(**options) as (charger, link):
                await update_firmware(link, packages.publish("forced", package("0.9.0", force=True)))
                await until(lambda: "InstallationFailed" in firmware_statuses(link))
                await until(lambda: charger._firmware_update.done())
                return link

    for options in ({"model": "Volt-22"}, {"vendor": "ACME"}, {"clock": expired}):
        link = asyncio.run(scenario(**options))
        assert firmware_statuses(link) == ["Downloading", "Downloaded", "InstallationFailed"], options
        assert boot_versions(link) == ["1.0.0"], options


def test_the_reboot_waits_for_the_running_session_to_end():
    async def scenario():
        with package_server() as packages:
            async with booted() as (charger, link):
                session = asyncio.create_task(charger.run_session(typical_plan(), SimClock(speed=3000)))
                await until(lambda: link.calls("MeterValues"))
                await update_firmware(link, packages.publish("fw", package("1.1.0")))
                truth = await session
                await until(lambda: "Installed" in firmware_statuses(link))
                return link, truth

    link, truth = asyncio.run(scenario())

    # The driver ended it (not the HardReset a reboot would have forced).
    assert truth.stop_reason == "EVDisconnected"
    actions = [action for _, _, action, _ in link.calls()]
    assert actions.index("StopTransaction") < actions.index("BootNotification", 1)


def test_simulate_pins_the_firmware_key_given_and_refuses_one_that_is_not_p256(tmp_path, monkeypatch, capsys):
    from test_cli import _charger_folder
    from test_firmware import public_pem

    from chargenet_shim.cli import main

    monkeypatch.setattr(SimulatedCharger, "firmware_key", None)  # restored after the test
    (tmp_path / "chargers").mkdir()
    _charger_folder(tmp_path / "chargers")
    good, bad = tmp_path / "operator.pem", tmp_path / "p384.pem"
    good.write_bytes(public_pem(OPERATOR))
    bad.write_bytes(public_pem(ec.generate_private_key(ec.SECP384R1())))
    simulate = ["simulate", "--credentials-dir", str(tmp_path / "chargers"), "--sessions", "0"]

    # --sessions 0 stops the run after the configuration is read, before anything connects.
    assert main([*simulate, "--firmware-key", str(good)]) == 2
    assert SimulatedCharger.firmware_key == PINNED
    capsys.readouterr()
    assert main([*simulate, "--firmware-key", str(bad)]) == 2
    assert "--firmware-key" in (error := capsys.readouterr().err) and "P-256" in error
