"""Firmware signed by a KMS key (moto's KMS in server mode), verified by a simulated charger.

`chargenet firmware publish --kms-key-id` has KMS sign the release statement; the charger pins
the PEM `chargenet firmware public-key --kms-key-id` writes from KMS GetPublicKey, downloads the
package through a pre-signed URL and installs it only if KMS's signature verifies with that key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from ocpp.v16.enums import FirmwareStatus

from chargenet_cli.firmware_cmd import package_key
from chargenet_cli.firmware_signing import KMS_KEY_VARIABLE, KmsSigner
from chargenet_firmware_format import OperatorKey, unpack
from chargenet_shim.sim.firmware_install import FirmwareInstaller, FirmwareSlots
from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.cli_in_process import chargenet

FACTORY_VERSION = "1.0.0"
IMAGE = b"\x7fELF chargenet firmware signed in KMS " * 300
FOR_SIMCHARGER = ("--charge-point-vendor", "chargenet", "--charge-point-model", "SimCharger")


def new_kms_key(alias: str) -> str:
    """A P-256 signing key in the stack's KMS (moto), named by an alias; its ARN."""
    kms = boto3.client("kms")
    arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def pinned_key(home: str, key_option: list[str], out: Path) -> OperatorKey:
    done = cli(home, "firmware", "public-key", *key_option, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return OperatorKey.from_pem(out.read_bytes())


def download_url(stack, version: str) -> str:
    s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": stack.buckets["FirmwareBucket"], "Key": package_key(version)}
    )


def charger_update(location: str, key: OperatorKey) -> tuple[FirmwareStatus, str, list[str]]:
    """A charger pinning `key` takes the package at `location`: its last status, running version, log."""
    slots = FirmwareSlots(FACTORY_VERSION)
    reported: list[str] = []

    async def report(status: FirmwareStatus, detail: str) -> None:
        reported.append(f"{status} {detail}".strip())

    async def boot(version: str) -> bool:
        return True

    installer = FirmwareInstaller(
        slots, key, report, boot, identity=("chargenet", "SimCharger"), now=lambda: dt.datetime.now(dt.UTC)
    )
    status = asyncio.run(installer.update(location))
    return status, slots.running_version, reported


def test_a_release_signed_in_kms_installs_on_a_charger_pinning_the_kms_key_and_no_other(stack, tmp_path):
    alias = f"alias/chargenet-firmware-{uuid.uuid4().hex[:8]}"
    new_kms_key(alias)
    image = tmp_path / "fw.bin"
    image.write_bytes(IMAGE)
    version = f"7.0.0-kms.{uuid.uuid4().hex[:8]}"

    published = cli(
        stack.home,
        "firmware",
        "publish",
        str(image),
        "--version",
        version,
        *FOR_SIMCHARGER,
        "--kms-key-id",
        alias,
    )
    assert published.returncode == 0, published.stderr
    assert f"firmware public-key --kms-key-id {alias}" in published.stdout

    kms_key = pinned_key(stack.home, ["--kms-key-id", alias], tmp_path / "kms.pub.pem")
    assert b"PRIVATE" not in (tmp_path / "kms.pub.pem").read_bytes()
    package = boto3.client("s3").get_object(Bucket=stack.buckets["FirmwareBucket"], Key=package_key(version))
    manifest, _ = unpack(package["Body"].read())
    assert manifest.signer_key_id == kms_key.key_id == package["Metadata"]["key-id"]

    location = download_url(stack, version)
    installed, running, _ = charger_update(location, kms_key)
    assert (installed, running) == (FirmwareStatus.installed, version)

    other_alias = f"alias/chargenet-other-{uuid.uuid4().hex[:8]}"
    new_kms_key(other_alias)
    other_key = pinned_key(stack.home, ["--kms-key-id", other_alias], tmp_path / "other.pub.pem")
    refused, running, reported = charger_update(location, other_key)
    assert (refused, running) == (FirmwareStatus.invalid_signature, FACTORY_VERSION)
    assert any("not the pinned operator key" in line for line in reported)


def test_the_environment_names_the_default_kms_key_and_a_missing_key_is_a_clear_error(stack, tmp_path):
    alias = f"alias/chargenet-firmware-env-{uuid.uuid4().hex[:8]}"
    new_kms_key(alias)
    image = tmp_path / "fw.bin"
    image.write_bytes(IMAGE + b"env")
    version = f"7.1.0-kms.{uuid.uuid4().hex[:8]}"
    env = {"CHARGENET_HOME": str(stack.home), KMS_KEY_VARIABLE: alias}

    published = chargenet(
        "firmware", "publish", str(image), "--version", version, *FOR_SIMCHARGER, "--json", env=env
    )
    assert published.returncode == 0, published.stderr
    kms_key = KmsSigner(alias, boto3.client("kms")).operator_key
    assert json.loads(published.stdout)["key_id"] == kms_key.key_id
    installed, running, _ = charger_update(download_url(stack, version), kms_key)
    assert (installed, running) == (FirmwareStatus.installed, version)

    missing = cli(
        stack.home,
        "firmware",
        "publish",
        str(image),
        "--version",
        "7.2.0",
        *FOR_SIMCHARGER,
        "--kms-key-id",
        "alias/nobody",
    )
    assert missing.returncode == 1
    assert "KMS GetPublicKey with key alias/nobody failed: NotFoundException" in missing.stderr
    stored = boto3.client("s3").list_objects_v2(
        Bucket=stack.buckets["FirmwareBucket"], Prefix=package_key("7.2.0")
    )
    assert stored["KeyCount"] == 0  # nothing stored unsigned
