"""Who signs firmware: the operator's key file, or an asymmetric key in AWS KMS.

Both make the same thing, the ECDSA P-256 signature over SHA-256 of a manifest's statement
(chargenet_firmware_format), as DER, which is what the charger's `verify` takes; a signer only
differs in where the private key lives.

Why KMS and not AWS Signer in the cloud: Signer's StartSigningJob signs files in the formats
of its own platforms (FreeRTOS OTA, Lambda code) and SignPayload signs only Notation (container
image) payloads; neither returns a raw ECDSA signature over bytes we choose. KMS `Sign` does:
with an ECC_NIST_P256 SIGN_VERIFY key, SigningAlgorithm ECDSA_SHA_256 and MessageType RAW it
hashes the statement with SHA-256 and returns the DER signature, and the private key never
leaves KMS (an operator needs kms:Sign on that one key, which CloudTrail logs). The public key
chargers pin comes from KMS GetPublicKey (`chargenet firmware public-key --kms-key-id ...`).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from chargenet_cli.errors import CliError, UsageError
from chargenet_firmware_format import (
    FirmwareManifest,
    FirmwareRejected,
    OperatorKey,
    Target,
    VendorSignature,
    unsigned_manifest,
    verify,
)

# The default KMS key (ARN, key id or alias/...) when --kms-key-id is not given.
KMS_KEY_VARIABLE = "CHARGENET_FIRMWARE_KMS_KEY"
KMS_KEY_SPEC = "ECC_NIST_P256"
KMS_KEY_USAGE = "SIGN_VERIFY"
KMS_SIGNING_ALGORITHM = "ECDSA_SHA_256"


class FirmwareSigner(Protocol):
    """Signs manifest statements for chargers that pin `operator_key`."""

    @property
    def operator_key(self) -> OperatorKey:
        """The public half chargers pin."""
        ...

    @property
    def pin_hint(self) -> str | None:
        """Where an operator gets the public key to pin, when it is worth saying."""
        ...

    def sign(self, statement: bytes) -> bytes:
        """DER ECDSA P-256 signature over SHA-256 of `statement`."""
        ...


@dataclass(frozen=True)
class KeyFileSigner:
    """A P-256 private key held as PEM by the operator (the local stack's default)."""

    private_key: ec.EllipticCurvePrivateKey
    pin_hint: str | None = None

    @classmethod
    def from_pem(cls, pem: bytes, pin_hint: str | None = None) -> KeyFileSigner:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            # The key's bytes never reach the message: only what is wrong with them.
            raise CliError(f"cannot sign with that key: {type(exc).__name__}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise CliError("cannot sign with that key: firmware is signed with an ECDSA P-256 private key")
        return cls(key, pin_hint)

    @property
    def operator_key(self) -> OperatorKey:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return OperatorKey.from_pem(public)

    def sign(self, statement: bytes) -> bytes:
        return self.private_key.sign(statement, ec.ECDSA(hashes.SHA256()))


class KmsSigner:
    """An asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY): KMS signs, the private key stays there."""

    def __init__(self, key_id: str, kms: Any) -> None:
        self.key_id = key_id  # ARN, key id or alias/...: whatever KMS resolves
        self._kms = kms

    @property
    def pin_hint(self) -> str:
        return f"chargenet firmware public-key --kms-key-id {self.key_id} --out FILE"

    @cached_property
    def operator_key(self) -> OperatorKey:
        answer = self._call("GetPublicKey", self._kms.get_public_key, KeyId=self.key_id)
        # KeySpec is today's name; CustomerMasterKeySpec the deprecated one older emulators return.
        spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
        if spec != KMS_KEY_SPEC or answer.get("KeyUsage") != KMS_KEY_USAGE:
            raise CliError(
                f"KMS key {self.key_id} is {spec} for {answer.get('KeyUsage')}: "
                f"firmware needs an {KMS_KEY_SPEC} key for {KMS_KEY_USAGE}"
            )
        public = serialization.load_der_public_key(answer["PublicKey"])
        return OperatorKey.from_pem(
            public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def sign(self, statement: bytes) -> bytes:
        # RAW: KMS hashes with SHA-256 itself (statements are far below its 4096-byte limit).
        answer = self._call(
            "Sign",
            self._kms.sign,
            KeyId=self.key_id,
            Message=statement,
            MessageType="RAW",
            SigningAlgorithm=KMS_SIGNING_ALGORITHM,
        )
        return bytes(answer["Signature"])

    def _call(self, operation: str, method: Callable[..., Any], **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(method(**params))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise CliError(
                f"KMS {operation} with key {self.key_id} failed: {error.get('Code')}: {error.get('Message')}"
            ) from exc
        except BotoCoreError as exc:
            raise CliError(f"KMS {operation} with key {self.key_id} failed: {exc}") from exc


def select_signer(
    *,
    key_file: Path | None,
    kms_key_id: str | None,
    default_key: Callable[[], FirmwareSigner],
    environ: Mapping[str, str] = os.environ,
    kms_client: Callable[[], Any] | None = None,
) -> FirmwareSigner:
    """The signer the operator chose: --key, else --kms-key-id, else $CHARGENET_FIRMWARE_KMS_KEY,
    else the stack's own key (`default_key`: the local stack's key file, a deployed stack's KMS key)."""
    if key_file is not None and kms_key_id is not None:
        raise UsageError("--key and --kms-key-id exclude each other: sign with one key")
    if key_file is not None:
        try:
            return KeyFileSigner.from_pem(key_file.read_bytes())
        except OSError as exc:
            raise CliError(f"cannot read the signing key {key_file}: {exc.strerror}") from exc
    kms_key = kms_key_id or environ.get(KMS_KEY_VARIABLE, "").strip()
    if kms_key:
        return KmsSigner(kms_key, (kms_client or _kms_client)())
    return default_key()


def kms_signer(key_id: str) -> KmsSigner:
    return KmsSigner(key_id, _kms_client())


def _kms_client() -> Any:
    import boto3

    return boto3.client("kms")


def sign_manifest(
    signer: FirmwareSigner,
    image: bytes,
    version: str,
    target: Target,
    *,
    force: bool,
    vendor: VendorSignature | None = None,
) -> FirmwareManifest:
    """The manifest of `image` for the chargers `target` names, signed, with the manufacturer's
    signature inside the signed statement if there is one; checked with the charger's own `verify`
    before it is used, so a key that signs in another format fails here, not on every charger."""
    try:
        unsigned = unsigned_manifest(image, version, target, force=force, vendor=vendor)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"cannot sign that release: {problems}") from exc
    operator_key = signer.operator_key
    signed = unsigned.model_copy(
        update={
            "signature": base64.b64encode(signer.sign(unsigned.statement())).decode(),
            "signer_key_id": operator_key.key_id,
        }
    )
    try:
        verify(signed, image, operator_key)
    except FirmwareRejected as exc:
        raise CliError(f"the signer's signature does not verify with its own public key: {exc}") from exc
    return signed


def public_key_pem(signer: FirmwareSigner) -> bytes:
    """The PEM (SubjectPublicKeyInfo) chargers pin (`chargenet-shim simulate --firmware-key`)."""
    return signer.operator_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
