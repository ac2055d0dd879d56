"""`chargenet firmware publish|deploy|status`: signed firmware releases and their rollouts.

Publish. The image is signed with the operator's ECDSA P-256 key in the format chargers verify
(chargenet_shim.firmware: the signature covers version, image SHA-256, size and `force`
together) and stored as a package (manifest line + image) at firmware/<version>/package in
the private, KMS-encrypted FirmwareBucket. Who signs is a FirmwareSigner (firmware_signing.py).
Locally the key is a PEM file under the stack home, created on first use with 0600 permissions
and never printed; its public half is written next to it for chargers to pin (`chargenet-shim
simulate --firmware-key`). In the cloud it is the template's FirmwareSigningKey in KMS
(`--kms-key-id` or $CHARGENET_FIRMWARE_KMS_KEY): KMS signs the statement and the private key
never leaves it; `public-key` writes the PEM chargers pin, from KMS GetPublicKey.
`--vendor-signature FILE --signing-certificate FILE` add the manufacturer's signature over the
image and its certificate to the signed manifest: a real charger behind the gateway is offered
the release with OCPP SignedUpdateFirmware only with them (chargenet_shim.gateway_firmware).

Release metadata (version, sha256, size, key id, published_at) is the package's S3 object
metadata: it describes one immutable object, is written in the same PUT, so the two can never
disagree, and needs no table, grants or KMS use of its own; a fleet has tens of releases, so
listing them with one HEAD each is cheap.

Deploy. Each targeted charger gets an OCPP UpdateFirmware whose location is a pre-signed GET
URL of the package (chargers hold no AWS credentials) and whose retrieveDate is now; it is
recorded as a pending call like any operator command, and the rollout record
rollouts/<version>/<charger>.json ties the charger to that call. `--rollout-percent` picks a
deterministic subset by hash. A downgrade needs `--force`: the release is signed again with
`force` in the signed manifest (firmware/<version>/forced-package), so nobody between the
operator and the charger can add it. In the cloud the same job document would be an IoT Job
per target group, with the rollout's percentage as its rollout configuration; not built.

Status. Each charger's job state is derived from the call's answer and what the charger told
the backend since: its FirmwareStatusNotification and the version in its BootNotification.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from chargenet.domain.models import Charger, PendingCall
from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.firmware_signing import (
    KMS_KEY_VARIABLE,
    FirmwareSigner,
    KeyFileSigner,
    public_key_pem,
    select_signer,
    sign_manifest,
)
from chargenet_cli.output import as_json, table
from chargenet_local.stack import StackState
from chargenet_shim.firmware import FirmwareManifest, VendorSignature, pack, precedence, unpack

PACKAGE_PREFIX = "firmware/"
ROLLOUT_PREFIX = "rollouts/"
# Long enough for a charger that retries a failed download a few times; the URL is a credential.
DOWNLOAD_URL_EXPIRY_S = 3600
KEY_FILE = "operator-key.pem"
PUBLIC_KEY_FILE = "operator-key.pub.pem"


def register(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("firmware", help="signed firmware releases and rollouts").add_subparsers(
        dest="firmware_command", required=True
    )
    publish = sub.add_parser("publish", help="sign a firmware image and store it as a release")
    publish.add_argument("file", type=Path, help="the firmware image")
    publish.add_argument("--version", required=True, help="semantic version, e.g. 1.4.0")
    publish.add_argument(
        "--vendor-signature",
        type=Path,
        help="the manufacturer's signature over the image, raw bytes as `openssl dgst -sign` writes them; "
        "with --signing-certificate, what a real charger behind the gateway needs (SignedUpdateFirmware)",
    )
    publish.add_argument(
        "--signing-certificate", type=Path, help="the manufacturer's firmware signing certificate (PEM)"
    )
    _key_option(publish)
    publish.add_argument("--json", action="store_true")
    publish.set_defaults(run=publish_release)

    deploy = sub.add_parser("deploy", help="send a release to chargers (OCPP UpdateFirmware)")
    deploy.add_argument("version")
    targets = deploy.add_mutually_exclusive_group(required=True)
    targets.add_argument("--charger", action="append", help="a charger id (repeatable)")
    targets.add_argument("--site", help="every charger of this site")
    targets.add_argument("--all", action="store_true", help="every charger")
    deploy.add_argument(
        "--rollout-percent", type=int, default=100, help="send to this share of the targets (default 100)"
    )
    deploy.add_argument("--force", action="store_true", help="allow installing over a newer version")
    _key_option(deploy)
    deploy.add_argument("--json", action="store_true")
    deploy.set_defaults(run=deploy_release)

    status = sub.add_parser("status", help="per charger: job state, running version, last firmware status")
    status.add_argument("version", nargs="?", help="only this release's rollouts")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=show_status)

    public_key = sub.add_parser("public-key", help="the PEM public key chargers pin (--key, --kms-key-id)")
    _key_option(public_key)
    public_key.add_argument("--out", type=Path, help="write the PEM here (default: print it)")
    public_key.set_defaults(run=show_public_key)


def _key_option(parser: argparse.ArgumentParser) -> None:
    signer = parser.add_mutually_exclusive_group()
    signer.add_argument(
        "--key",
        type=Path,
        help=f"operator signing key (PEM, P-256; default: <stack home>/firmware/{KEY_FILE}, made on first use)",
    )
    signer.add_argument(
        "--kms-key-id",
        help=f"sign with this AWS KMS key (ARN, id or alias/NAME; ECC_NIST_P256, SIGN_VERIFY); default ${KMS_KEY_VARIABLE}",
    )


# ------------------------------------------------------------------ pure parts
@dataclass(frozen=True)
class Release:
    version: str
    sha256: str
    size: int
    key_id: str
    published_at: str

    def metadata(self) -> dict[str, str]:
        """As S3 user metadata: string values, lowercase names."""
        return {
            "version": self.version,
            "sha256": self.sha256,
            "size": str(self.size),
            "key-id": self.key_id,
            "published-at": self.published_at,
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> Release:
        return cls(
            version=metadata["version"],
            sha256=metadata["sha256"],
            size=int(metadata["size"]),
            key_id=metadata["key-id"],
            published_at=metadata["published-at"],
        )


@dataclass(frozen=True)
class Rollout:
    """One charger's part of a deployment: which call carried the release to it."""

    charger_id: str
    version: str
    message_id: str
    sent_at: str
    force: bool


def package_key(version: str, *, force: bool = False) -> str:
    return f"{PACKAGE_PREFIX}{version}/{'forced-package' if force else 'package'}"


def rollout_key(version: str, charger_id: str) -> str:
    return f"{ROLLOUT_PREFIX}{version}/{charger_id}.json"


def in_rollout(charger_id: str, version: str, percent: int) -> bool:
    """Whether the charger is in the first `percent` % of this release's rollout.

    The hash includes the version: raising the percentage of one release only adds chargers
    (the early ones stay in), while each release starts on a different group of chargers.
    """
    bucket = int.from_bytes(hashlib.sha256(f"{version}\n{charger_id}".encode()).digest()[:8], "big") % 100
    return bucket < percent


def select_targets(
    chargers: Iterable[Charger], version: str, percent: int, *, ids: list[str] | None, site: str | None
) -> list[str]:
    """The charger ids to send the release to; raises CliError for a named charger that does not exist."""
    known = {c.charger_id: c for c in chargers}
    if ids:
        missing = sorted(set(ids) - set(known))
        if missing:
            raise CliError(f"no charger {', '.join(missing)}")
        wanted = sorted(set(ids))
    else:
        wanted = sorted(cid for cid, c in known.items() if site is None or c.site_id == site)
    return [cid for cid in wanted if in_rollout(cid, version, percent)]


def job_state(rollout: Rollout, call: PendingCall | None, charger: Charger | None) -> str:
    """sent, accepted, downloading, installing, installed, failed or refused.

    The registry keeps only the latest FirmwareStatusNotification, with no date: "installed"
    therefore also needs the charger to have booted the release since it was sent, and an
    InstallationFailed without a boot since is the charger refusing the package (signature or
    version), with one the new firmware not coming up (rolled back).
    """
    outcome = None if call is None else call.outcome
    if outcome is None:
        return "sent"
    if "error" in outcome:
        return "refused"
    if "timeout" in outcome or charger is None:
        return "failed"
    booted_since = charger.last_boot_at is not None and charger.last_boot_at >= dt.datetime.fromisoformat(
        rollout.sent_at
    )
    if booted_since and charger.firmware_version == rollout.version:
        return "installed"
    return {
        "Downloading": "downloading",
        "Downloaded": "downloading",
        "Installing": "installing",
        "DownloadFailed": "failed",
        "InstallationFailed": "failed" if booted_since else "refused",
    }.get(charger.firmware_status or "", "accepted")


def check_semantic(version: str) -> str:
    try:
        precedence(version)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return version


# --------------------------------------------------------------- signing key
def operator_signer(args: argparse.Namespace, state: StackState) -> FirmwareSigner:
    """--key, --kms-key-id or $CHARGENET_FIRMWARE_KMS_KEY, else the stack's own key, made on first use."""
    folder = Path(state.home) / "firmware"

    def stack_key() -> KeyFileSigner:
        pem = ensure_key(folder / KEY_FILE, folder / PUBLIC_KEY_FILE)
        return KeyFileSigner.from_pem(pem, pin_hint=str(folder / PUBLIC_KEY_FILE))

    return select_signer(key_file=args.key, kms_key_id=args.kms_key_id, default_key=stack_key)


def ensure_key(private_path: Path, public_path: Path) -> bytes:
    """Read the key at `private_path`, or make a P-256 key there (0600) and its public half."""
    if private_path.exists():
        return private_path.read_bytes()
    private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # O_EXCL: two first uses at once cannot both write, and the mode is set before any byte.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pem


# ----------------------------------------------------------------------- S3
def firmware_s3() -> Any:
    import boto3
    from botocore.config import Config

    # SigV4: S3 requires it for pre-signed URLs of KMS-encrypted objects.
    return boto3.client("s3", config=Config(signature_version="s3v4"))


def firmware_bucket(state: StackState) -> str:
    bucket = os.environ.get("FIRMWARE_BUCKET") or state.buckets.get("FirmwareBucket")
    if not bucket:
        raise CliError("the local stack has no firmware bucket; restart it (chargenet local down, then up)")
    return bucket


def stored_release(s3: Any, bucket: str, version: str) -> Release | None:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=package_key(version))
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return None
        raise
    return Release.from_metadata(head["Metadata"])


# ------------------------------------------------------------------ publish
def publish_release(args: argparse.Namespace) -> str:
    version = check_semantic(args.version)
    try:
        image = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    vendor = _vendor_signature(args.vendor_signature, args.signing_certificate)
    state = local_env.connect(args.home)
    s3, bucket = firmware_s3(), firmware_bucket(state)
    if stored_release(s3, bucket, version) is not None:
        # A version names one image for good: chargers and rollouts refer to it.
        raise CliError(f"firmware {version} is already published")
    signer = operator_signer(args, state)
    manifest = sign_manifest(signer, image, version, force=False, vendor=vendor)
    release = Release(
        version=version,
        sha256=manifest.sha256,
        size=manifest.size,
        key_id=manifest.signer_key_id or "",
        published_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    s3.put_object(
        Bucket=bucket, Key=package_key(version), Body=pack(manifest, image), Metadata=release.metadata()
    )
    if args.json:
        return as_json(asdict(release))
    summary = (
        f"published firmware {version}: {release.size} bytes, sha256 {release.sha256}, key {release.key_id}"
        + ("" if vendor is None else ", with the manufacturer's signature")
    )
    if signer.pin_hint is None:
        return summary
    return f"{summary}\nchargers pin the public key: {signer.pin_hint}"


def _vendor_signature(signature_file: Path | None, certificate_file: Path | None) -> VendorSignature | None:
    """The manufacturer's signature and certificate: both or neither, they only make sense together."""
    if signature_file is None and certificate_file is None:
        return None
    if signature_file is None or certificate_file is None:
        raise UsageError("--vendor-signature and --signing-certificate go together")
    try:
        signature, certificate = signature_file.read_bytes(), certificate_file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        return VendorSignature(
            signature=base64.b64encode(signature).decode(),
            signing_certificate=certificate.decode("ascii", errors="replace"),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CliError(f"the manufacturer's signature or certificate is refused: {problems}") from exc


# ------------------------------------------------------------------- deploy
def deploy_release(args: argparse.Namespace) -> str:
    if not 1 <= args.rollout_percent <= 100:
        raise UsageError("--rollout-percent must be between 1 and 100")
    state = local_env.connect(args.home)
    s3, bucket = firmware_s3(), firmware_bucket(state)
    if stored_release(s3, bucket, args.version) is None:
        raise CliError(
            f"no firmware {args.version} (chargenet firmware publish FILE --version {args.version})"
        )
    service = _commands()
    targets = select_targets(
        service.registry.list(), args.version, args.rollout_percent, ids=args.charger, site=args.site
    )
    if not targets:
        raise CliError("no charger matches (or the rollout percentage leaves none)")
    key = package_key(args.version, force=args.force)
    if args.force:
        _publish_forced(s3, bucket, args.version, operator_signer(args, state))
    location = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=DOWNLOAD_URL_EXPIRY_S
    )
    rollouts = [
        _send(service, s3, bucket, charger_id, args.version, location, args.force) for charger_id in targets
    ]
    if args.json:
        return as_json([asdict(r) for r in rollouts])
    return table(
        ["CHARGER", "VERSION", "FORCE", "MESSAGE"],
        [(r.charger_id, r.version, r.force, r.message_id) for r in rollouts],
    )


def _publish_forced(s3: Any, bucket: str, version: str, signer: FirmwareSigner) -> None:
    """The release again, its manifest signed with `force`: the operator's word that a downgrade is meant."""
    manifest, image = _stored_package(s3, bucket, version)
    forced = sign_manifest(signer, image, version, force=True, vendor=manifest.vendor)
    if forced.signer_key_id != manifest.signer_key_id:
        raise CliError("that key did not sign the release: force it with the key that did")
    s3.put_object(Bucket=bucket, Key=package_key(version, force=True), Body=pack(forced, image))


def _stored_package(s3: Any, bucket: str, version: str) -> tuple[FirmwareManifest, bytes]:
    try:
        return unpack(s3.get_object(Bucket=bucket, Key=package_key(version))["Body"].read())
    except (ValidationError, ValueError) as exc:
        raise CliError(f"the stored package of {version} is unreadable: {exc}") from exc


def _commands() -> Any:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry, DynamoPendingCalls
    from chargenet.adapters.iot_data import IotDataChannel
    from chargenet.domain.clock import utc_now
    from chargenet.services.commands import ChargerCommands

    return ChargerCommands(DynamoChargerRegistry(), DynamoPendingCalls(), IotDataChannel(), utc_now)


def _send(
    service: Any, s3: Any, bucket: str, charger_id: str, version: str, location: str, force: bool
) -> Rollout:
    """UpdateFirmware to one charger, recorded as a pending call and as the charger's rollout."""
    payload = {"location": location, "retrieveDate": service.clock().isoformat(timespec="seconds")}
    call = service.send(charger_id, "UpdateFirmware", payload)
    rollout = Rollout(charger_id, version, call.message_id, call.sent_at.isoformat(), force)
    s3.put_object(
        Bucket=bucket, Key=rollout_key(version, charger_id), Body=json.dumps(asdict(rollout)).encode()
    )
    return rollout


# ------------------------------------------------------------------- status
def show_status(args: argparse.Namespace) -> str:
    state = local_env.connect(args.home)
    s3, bucket = firmware_s3(), firmware_bucket(state)
    service = _commands()
    records = [_status_record(r, service) for r in _latest_rollouts(s3, bucket, args.version)]
    if args.json:
        return as_json(records)
    return table(
        ["CHARGER", "VERSION", "STATE", "RUNNING", "LAST FIRMWARE STATUS", "SENT"],
        [
            (
                r["charger_id"],
                r["version"],
                r["state"],
                r["running_version"],
                r["firmware_status"],
                r["sent_at"][:19],
            )
            for r in records
        ],
    )


def _latest_rollouts(s3: Any, bucket: str, version: str | None) -> list[Rollout]:
    """Per charger, its latest rollout (of `version`, when given)."""
    prefix = ROLLOUT_PREFIX + (f"{version}/" if version else "")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    rollouts = [
        Rollout(**json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
        for page in pages
        for obj in page.get("Contents", [])
    ]
    latest: dict[str, Rollout] = {}
    for rollout in sorted(rollouts, key=lambda r: r.sent_at):
        latest[rollout.charger_id] = rollout
    return sorted(latest.values(), key=lambda r: r.charger_id)


def _status_record(rollout: Rollout, service: Any) -> dict[str, Any]:
    call = service.pending.get(rollout.charger_id, rollout.message_id)
    charger = service.registry.get(rollout.charger_id)
    return {
        **asdict(rollout),
        "state": job_state(rollout, call, charger),
        "running_version": None if charger is None else charger.firmware_version,
        "firmware_status": None if charger is None else charger.firmware_status,
    }


# --------------------------------------------------------------- public key
def show_public_key(args: argparse.Namespace) -> str:
    """The PEM chargers pin; from KMS GetPublicKey for a KMS key (it is public: printing it is fine)."""
    signer = operator_signer(args, local_env.connect(args.home))
    pem = public_key_pem(signer)
    if args.out is None:
        return pem.decode().rstrip("\n")
    try:
        args.out.write_bytes(pem)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc
    return f"wrote the public key {signer.operator_key.key_id} to {args.out}"
