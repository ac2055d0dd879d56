"""Firmware signers: which one the operator's options choose, and that chargers accept what each signs.

The KMS signer runs against moto's KMS in process (ECC_NIST_P256 keys, Sign, GetPublicKey);
the same against moto in server mode, through the CLI, is tests/integration/test_firmware_kms.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from moto import mock_aws

from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.firmware_cmd import _publish_forced, package_key
from chargenet_cli.firmware_signing import (
    KMS_KEY_VARIABLE,
    KeyFileSigner,
    KmsSigner,
    public_key_pem,
    select_signer,
    sign_manifest,
)
from chargenet_cli.main import parser
from chargenet_firmware_format import FirmwareRejected, OperatorKey, Target, pack, unpack, verify

REGION = "eu-north-1"
IMAGE = b"\x7fELF firmware image" * 64
TARGET = Target("chargenet", "SimCharger")
FORCED = Target("chargenet", "SimCharger", dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
FOR_SIMCHARGER = ["--charge-point-vendor", "chargenet", "--charge-point-model", "SimCharger"]


def pem_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def stack_key() -> KeyFileSigner:
    return KeyFileSigner.from_pem(pem_of(ec.generate_private_key(ec.SECP256R1())), pin_hint="stack key")


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name=REGION)


def kms_key(kms: Any, spec: str = "ECC_NIST_P256", usage: str = "SIGN_VERIFY") -> str:
    return kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["Arn"]


# ------------------------------------------------------------------ selection
def test_with_no_option_the_stack_key_signs():
    signer = select_signer(key_file=None, kms_key_id=None, default_key=stack_key, environ={})

    assert isinstance(signer, KeyFileSigner) and signer.pin_hint == "stack key"


def test_key_file_signs_and_wins_over_the_environments_kms_key(tmp_path: Path):
    private = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "operator.pem"
    key_file.write_bytes(pem_of(private))

    signer = select_signer(
        key_file=key_file, kms_key_id=None, default_key=stack_key, environ={KMS_KEY_VARIABLE: "alias/fw"}
    )

    assert isinstance(signer, KeyFileSigner)
    assert signer.operator_key.key_id == OperatorKey.from_pem(public_pem(private)).key_id


def test_kms_key_comes_from_the_option_or_else_the_environment():
    clients: list[str] = []

    def client() -> str:
        clients.append("kms")
        return "kms-client"

    chosen = select_signer(
        key_file=None,
        kms_key_id="alias/option",
        default_key=stack_key,
        environ={KMS_KEY_VARIABLE: "alias/env"},
        kms_client=client,
    )
    from_env = select_signer(
        key_file=None,
        kms_key_id=None,
        default_key=stack_key,
        environ={KMS_KEY_VARIABLE: " alias/env "},
        kms_client=client,
    )

    assert isinstance(chosen, KmsSigner) and chosen.key_id == "alias/option"
    assert isinstance(from_env, KmsSigner) and from_env.key_id == "alias/env"
    assert "--kms-key-id alias/env" in from_env.pin_hint
    assert clients == ["kms", "kms"]


def test_a_key_file_and_a_kms_key_together_are_refused(tmp_path: Path):
    with pytest.raises(UsageError, match="exclude each other"):
        select_signer(key_file=tmp_path / "k.pem", kms_key_id="alias/fw", default_key=stack_key, environ={})
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(
            ["firmware", "publish", "fw.bin", "--version", "1.0.0", "--key", "k.pem", "--kms-key-id", "x"]
        )
    assert exited.value.code == 2


def test_the_cli_takes_a_kms_key_for_publish_deploy_and_public_key():
    publish = parser().parse_args(
        ["firmware", "publish", "fw.bin", "--version", "1.0.0", *FOR_SIMCHARGER, "--kms-key-id", "alias/fw"]
    )
    deploy = parser().parse_args(
        ["firmware", "deploy", "1.0.0", "--all", "--force", "--kms-key-id", "alias/fw"]
    )
    public = parser().parse_args(
        ["firmware", "public-key", "--kms-key-id", "alias/fw", "--out", "fw.pub.pem"]
    )

    assert (publish.kms_key_id, publish.key) == ("alias/fw", None)
    assert deploy.kms_key_id == "alias/fw"
    assert (public.kms_key_id, public.out) == ("alias/fw", Path("fw.pub.pem"))


def test_unreadable_or_unusable_key_files_are_clear_errors_without_the_key(tmp_path: Path):
    with pytest.raises(CliError, match="cannot read the signing key"):
        select_signer(key_file=tmp_path / "missing.pem", kms_key_id=None, default_key=stack_key, environ={})
    rsa_key = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(CliError, match="ECDSA P-256") as refused:
        KeyFileSigner.from_pem(rsa_key)
    assert "PRIVATE" not in str(refused.value)
    with pytest.raises(CliError, match="cannot sign with that key: ValueError"):
        KeyFileSigner.from_pem(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")


# ------------------------------------------------------------------ signing
def public_pem(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_a_key_file_signature_is_what_chargers_verify():
    signer = stack_key()

    manifest, image = unpack(pack(sign_manifest(signer, IMAGE, "1.2.0", FORCED, force=True), IMAGE))

    verify(manifest, image, OperatorKey.from_pem(public_key_pem(signer)))
    assert manifest.force and manifest.signer_key_id == signer.operator_key.key_id


def test_kms_signs_what_chargers_verify_with_the_kms_public_key_and_no_other(kms):
    signer = KmsSigner(kms_key(kms), kms)

    manifest, image = unpack(pack(sign_manifest(signer, IMAGE, "1.2.0", TARGET, force=False), IMAGE))

    pinned = OperatorKey.from_pem(public_key_pem(signer))
    verify(manifest, image, pinned)  # KMS's DER signature, exactly as the charger checks it
    assert manifest.signer_key_id == pinned.key_id
    other = KmsSigner(kms_key(kms), kms).operator_key
    with pytest.raises(FirmwareRejected, match="not the pinned operator key"):
        verify(manifest, image, other)
    # A manifest claiming the other key's id still does not verify: the signature is what counts.
    with pytest.raises(FirmwareRejected, match="does not verify"):
        verify(manifest.model_copy(update={"signer_key_id": other.key_id}), image, other)


def test_a_kms_alias_signs_like_its_key(kms):
    arn = kms_key(kms)
    kms.create_alias(AliasName="alias/chargenet-firmware", TargetKeyId=arn)

    by_alias = KmsSigner("alias/chargenet-firmware", kms)

    assert by_alias.operator_key.key_id == KmsSigner(arn, kms).operator_key.key_id
    sign_manifest(by_alias, IMAGE, "1.0.0", TARGET, force=False)


@pytest.mark.parametrize(
    ("spec", "usage"), [("RSA_2048", "SIGN_VERIFY"), ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")]
)
def test_a_kms_key_that_is_not_p256_for_signing_is_refused_before_signing(kms, spec, usage):
    signer = KmsSigner(kms_key(kms, spec, usage), kms)

    with pytest.raises(CliError, match="firmware needs an ECC_NIST_P256 key for SIGN_VERIFY"):
        sign_manifest(signer, IMAGE, "1.0.0", TARGET, force=False)


def test_an_unknown_kms_key_is_a_clear_error(kms):
    with pytest.raises(CliError, match="KMS GetPublicKey with key alias/nothing failed: NotFoundException"):
        sign_manifest(KmsSigner("alias/nothing", kms), IMAGE, "1.0.0", TARGET, force=False)


def test_a_signer_whose_signature_does_not_verify_is_refused_before_publishing():
    class RawSignatureSigner(KeyFileSigner):
        """Signs in IEEE P1363 form (r||s), which chargers do not accept: not DER."""

        def sign(self, statement: bytes) -> bytes:
            return bytes(64)

    broken = RawSignatureSigner(ec.generate_private_key(ec.SECP256R1()))

    with pytest.raises(CliError, match="does not verify with its own public key"):
        sign_manifest(broken, IMAGE, "1.0.0", TARGET, force=False)


# ------------------------------------------------------------ deploy --force
@pytest.fixture
def versioned_bucket() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="fw-packages", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket="fw-packages", VersioningConfiguration={"Status": "Enabled"})
        yield s3, "fw-packages"


def test_force_refuses_to_re_sign_a_package_this_key_did_not_sign(versioned_bucket):
    """Whoever can write the bucket swaps the image under the release's key: `--force` must not sign it."""
    s3, bucket = versioned_bucket
    signer = stack_key()
    genuine = pack(sign_manifest(signer, IMAGE, "1.0.0", TARGET, force=False), IMAGE)
    manifest, image = unpack(genuine)
    swapped = pack(manifest, image.replace(b"firmware", b"backdoor"))
    until = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)

    s3.put_object(Bucket=bucket, Key=package_key("1.0.0"), Body=swapped)
    with pytest.raises(CliError, match="not one this key signed"):
        _publish_forced(s3, bucket, "1.0.0", signer, until)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=package_key("1.0.0", force=True))

    s3.put_object(Bucket=bucket, Key=package_key("1.0.0"), Body=genuine)
    version_id = _publish_forced(s3, bucket, "1.0.0", signer, until)
    forced = s3.get_object(Bucket=bucket, Key=package_key("1.0.0", force=True), VersionId=version_id)
    forced_manifest, _ = unpack(forced["Body"].read())
    assert forced_manifest.force and forced_manifest.expires_at == until
    verify(forced_manifest, IMAGE, signer.operator_key)
