"""Signed firmware end to end: `chargenet firmware publish|deploy|status` to simulated chargers over mTLS.

The releases live in the stack's firmware bucket (moto S3); `deploy` creates an IoT job (moto's
IoT, the local stack answering the Jobs API on mosquitto); chargers take their execution, download
the release through the pre-signed URL in the job document, verify them against the operator key they pin, install,
reboot and report the new version in their BootNotification.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from chargenet.domain.firmware import Release, in_rollout, package_key
from chargenet_cli.firmware_cmd import show_status
from chargenet_cli.provisioning import provision
from chargenet_firmware_format import OperatorKey, pack, unpack
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.sim.simulator import SimulatedCharger
from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import eventually, registry

FACTORY_VERSION = "1.0.0"
IMAGE = b"\x7fELF chargenet simulated firmware " * 500
# A SimulatedCharger's BootNotification: what the releases here are signed for.
FOR_SIMCHARGER = ("--charge-point-vendor", "chargenet", "--charge-point-model", "SimCharger")


@pytest.fixture(scope="module")
def operator_key(stack, tmp_path_factory) -> OperatorKey:
    """Releases 1.1.0 and 0.9.0, signed with the stack's operator key (made by the first publish)."""
    folder = tmp_path_factory.mktemp("images")
    for version in ("1.1.0", "0.9.0"):
        image = folder / f"fw-{version}.bin"
        image.write_bytes(IMAGE + version.encode())
        done = cli(stack.home, "firmware", "publish", str(image), "--version", version, *FOR_SIMCHARGER)
        assert done.returncode == 0, done.stderr
    key_file = Path(stack.home) / "firmware" / "operator-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    return OperatorKey.from_pem((key_file.parent / "operator-key.pub.pem").read_bytes())


@contextlib.asynccontextmanager
async def charger_running(
    credentials: ChargerCredentials, key: OperatorKey
) -> AsyncIterator[SimulatedCharger]:
    charger = SimulatedCharger(credentials, firmware=FACTORY_VERSION)
    charger.firmware_key = key
    await charger.start()
    try:
        await charger.run_boot()
        yield charger
    finally:
        await charger.stop()


async def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """`eventually` off the event loop, so the charger goes on answering while we wait."""
    return await asyncio.to_thread(eventually, check, timeout)


async def firmware(home: str, *args: str) -> Any:
    done = await asyncio.to_thread(cli, home, "firmware", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def job_reaches(
    home: str, charger_id: str, version: str, states: set[str], firmware_status: str
) -> Callable[[], dict[str, Any] | None]:
    """A check: `chargenet firmware status VERSION --json`'s record of the charger is in one of `states`
    with that last firmware status (run in process: a CLI process per poll would take seconds)."""

    def check() -> dict[str, Any] | None:
        shown = show_status(argparse.Namespace(home=Path(home), version=version, json=True))
        [record] = [r for r in json.loads(shown) if r["charger_id"] == charger_id]
        return record if record["state"] in states and record["firmware_status"] == firmware_status else None

    return check


def store_forged_release(
    stack, version: str, forge: Callable[[bytes], bytes], genuine_version: str = "1.1.0"
) -> None:
    """What an attacker who can write the download would serve: a real package, altered."""
    s3 = boto3.client("s3")
    bucket = stack.buckets["FirmwareBucket"]
    genuine = s3.get_object(Bucket=bucket, Key=package_key(genuine_version))
    metadata = Release.from_metadata(genuine["Metadata"])
    forged = forge(genuine["Body"].read())
    s3.put_object(
        Bucket=bucket,
        Key=package_key(version),
        Body=forged,
        Metadata=Release(
            version, metadata.sha256, metadata.size, metadata.key_id, metadata.published_at
        ).metadata(),
    )


def test_a_published_release_is_installed_and_the_charger_boots_it(stack, new_charger, operator_key):
    credentials = new_charger()
    charger_id = credentials.charger_id

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with charger_running(credentials, operator_key) as charger:
            sent = await firmware(stack.home, "deploy", "1.1.0", "--charger", charger_id, "--json")
            done = await until(job_reaches(stack.home, charger_id, "1.1.0", {"installed"}, "Installed"))
            assert charger.boot_request.firmware_version == "1.1.0"
            return sent, done

    sent, done = asyncio.run(scenario())

    assert [(r["charger_id"], r["version"], r["force"]) for r in sent] == [(charger_id, "1.1.0", False)]
    assert (done["running_version"], done["firmware_status"]) == ("1.1.0", "Installed")
    assert registry().get(charger_id).firmware_version == "1.1.0"
    table = cli(stack.home, "firmware", "status", "1.1.0").stdout
    assert any(line.split()[:3] == [charger_id, "1.1.0", "installed"] for line in table.splitlines())


def _tampered(package: bytes) -> bytes:
    return package.replace(b"simulated firmware", b"simulated backdoor")


def _unsigned(package: bytes) -> bytes:
    manifest, image = unpack(package)
    return pack(manifest.model_copy(update={"signature": None, "signer_key_id": None}), image)


@pytest.mark.parametrize(
    ("version", "forge", "reason"),
    [("1.3.0", _tampered, "SHA-256 differs"), ("1.4.0", _unsigned, "not signed")],
    ids=["tampered", "unsigned"],
)
def test_a_forged_package_is_refused_and_raises_a_security_fault(
    stack, new_charger, operator_key, version, forge, reason
):
    store_forged_release(stack, version, forge)
    credentials = new_charger()
    charger_id = credentials.charger_id

    async def scenario() -> dict[str, Any]:
        async with charger_running(credentials, operator_key) as charger:
            await firmware(stack.home, "deploy", version, "--charger", charger_id)
            refused = await until(
                job_reaches(stack.home, charger_id, version, {"refused", "failed"}, "InstallationFailed")
            )
            assert any(reason in entry for entry in charger.journal.lines())
            return refused

    refused = asyncio.run(scenario())

    assert (refused["state"], refused["firmware_status"]) == ("refused", "InstallationFailed")
    assert registry().get(charger_id).firmware_version == FACTORY_VERSION
    faults = json.loads(cli(stack.home, "fault", "list", "--json").stdout)
    assert [
        (f["kind"], f["severity"])
        for f in faults
        if f["charger_id"] == charger_id and f["code"] == "InvalidFirmwareSignature"
    ] == [("security_event", "major")]


def test_a_job_installs_the_package_version_it_was_made_with_not_a_later_write(
    stack, new_charger, operator_key, tmp_path
):
    """Whoever can write the bucket overwrites the package after the job is made: the job's pre-signed
    URL names the version it was made with, so the charger gets the genuine package and installs it."""
    image = tmp_path / "fw-1.6.0.bin"
    image.write_bytes(IMAGE + b"1.6.0")
    published = cli(stack.home, "firmware", "publish", str(image), "--version", "1.6.0", *FOR_SIMCHARGER)
    assert published.returncode == 0, published.stderr
    credentials = new_charger()
    charger_id = credentials.charger_id

    async def scenario() -> dict[str, Any]:
        await firmware(stack.home, "deploy", "1.6.0", "--charger", charger_id)  # queued: charger offline
        s3, bucket = boto3.client("s3"), stack.buckets["FirmwareBucket"]
        stored = s3.get_object(Bucket=bucket, Key=package_key("1.6.0"))
        swapped = _tampered(stored["Body"].read())
        s3.put_object(Bucket=bucket, Key=package_key("1.6.0"), Body=swapped, Metadata=stored["Metadata"])
        async with charger_running(credentials, operator_key):
            return await until(job_reaches(stack.home, charger_id, "1.6.0", {"installed"}, "Installed"))

    done = asyncio.run(scenario())

    assert done["running_version"] == "1.6.0"
    assert registry().get(charger_id).firmware_version == "1.6.0"


def test_a_downgrade_is_refused_unless_forced(stack, new_charger, operator_key):
    credentials = new_charger()
    charger_id = credentials.charger_id

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with charger_running(credentials, operator_key):
            await firmware(stack.home, "deploy", "0.9.0", "--charger", charger_id)
            refused = await until(
                job_reaches(stack.home, charger_id, "0.9.0", {"refused", "failed"}, "InstallationFailed")
            )
            await firmware(stack.home, "deploy", "0.9.0", "--charger", charger_id, "--force")
            forced = await until(job_reaches(stack.home, charger_id, "0.9.0", {"installed"}, "Installed"))
            return refused, forced

    refused, forced = asyncio.run(scenario())

    assert (refused["state"], refused["running_version"], refused["force"]) == (
        "refused",
        FACTORY_VERSION,
        False,
    )
    assert (forced["running_version"], forced["force"]) == ("0.9.0", True)
    assert registry().get(charger_id).firmware_version == "0.9.0"


def test_rollout_percent_sends_to_a_deterministic_subset_of_the_site(stack, operator_key):
    # Fixed ids, so the hash's split of this fleet is known to be a proper subset.
    site = "SITE-FW-ROLLOUT"
    fleet = [f"CP-FWR-{n}" for n in range(1, 9)]
    for charger_id in fleet:
        provision(stack, charger_id, site)
    expected = [cid for cid in fleet if in_rollout(cid, "1.1.0", 50)]

    sent = json.loads(
        cli(
            stack.home, "firmware", "deploy", "1.1.0", "--site", site, "--rollout-percent", "50", "--json"
        ).stdout
    )

    assert 0 < len(expected) < len(fleet)
    assert sorted(r["charger_id"] for r in sent) == expected
    # Nobody is connected: one job, its executions queued at IoT for the chosen chargers only.
    status = json.loads(cli(stack.home, "firmware", "status", "1.1.0", "--json").stdout)
    states = {r["charger_id"]: r["state"] for r in status}
    assert {cid: states.get(cid) for cid in fleet} == {
        cid: "queued" if cid in expected else None for cid in fleet
    }
    assert len({r["job_id"] for r in sent}) == 1
