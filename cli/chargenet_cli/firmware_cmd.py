"""`chargenet firmware publish|releases|deploy|status`: signed firmware releases and their rollouts.

Publish. The image is signed with the operator's ECDSA P-256 key in the format chargers verify
(chargenet_firmware_format: the signature covers version, image SHA-256, size, `force`, the
charger vendor and model it is for and its expiry, if any, together) and stored as a package (manifest line + image) at firmware/<version>/package in
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
metadata (chargenet.domain.firmware.Release): it describes one immutable object, is written in
the same PUT, so the two can never disagree, and needs no table. Signing and storing stay here,
with whoever holds the key (and, deployed, the signing role: the only one that may write
packages); the operator API then registers the release (checks it is stored, audits who
published it) and lists releases (`firmware releases`).

Deploy. Through the operator API (POST /ops/v1/firmware/deployments): one AWS IoT job per
deployment whose targets are the chosen chargers' things (chargenet.adapters.iot_jobs): its document names the release and its package, at the S3 version id it
had when the job was made, as an IoT pre-signed URL placeholder, so chargers hold no AWS
credentials and whoever can write the bucket later cannot change what the job installs. `--site`
and `--all` name the chargers the API lists; `--rollout-percent` picks a deterministic subset by
hash, on the API's side; IoT paces the executions (`--max-per-minute`) and cancels a rollout in which a
fifth of the chargers fail. A downgrade needs `--force`: the release is signed again with
`force` and an expiry (`--valid-days`, a week by default) in the signed manifest
(firmware/<version>/forced-package), so nobody between the operator and the charger can add it
and nobody who kept the package can install it after the rollout's time. That signing happens
here too; the API checks that the forced package's S3 version exists and pins it.

Status. IoT keeps each charger's execution (queued, in progress with the firmware status the
charger last reported, succeeded, failed, rejected); `status` shows the latest per charger,
beside what the charger itself last told the backend (its BootNotification's version, and with
--json its last FirmwareStatusNotification, in its OCPP version's words). The state reads either
version's status words (chargenet.domain.firmware.FIRMWARE_STATUS_PROGRESS): 2.0.1's
InvalidSignature, InstallVerificationFailed and DownloadFailed are failures, SignatureVerified and
InstallRebooting steps on the way.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from chargenet.domain.firmware import DEFAULT_MAX_PER_MINUTE, Release, package_key
from chargenet_cli import local_env, operator_profile
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.firmware_signing import (
    KMS_KEY_VARIABLE,
    FirmwareSigner,
    KeyFileSigner,
    kms_signer,
    public_key_pem,
    select_signer,
    sign_manifest,
)
from chargenet_cli.operator_api import OperatorApi
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table
from chargenet_firmware_format import (
    FirmwareManifest,
    FirmwareRejected,
    Target,
    VendorSignature,
    pack,
    precedence,
    unpack,
    verify,
)
from chargenet_local.stack import StackState

KEY_FILE = "operator-key.pem"
PUBLIC_KEY_FILE = "operator-key.pub.pem"
# How long a forced (downgrade) package may be installed: long enough for IoT to reach chargers
# that were offline a few days, short enough that a kept copy is soon worthless.
FORCED_VALID_DAYS = 7


def register(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("firmware", help="signed firmware releases and rollouts").add_subparsers(
        dest="firmware_command", required=True
    )
    publish = sub.add_parser("publish", help="sign a firmware image and store it as a release")
    publish.add_argument("file", type=Path, help="the firmware image")
    publish.add_argument("--version", required=True, help="semantic version, e.g. 1.4.0")
    publish.add_argument(
        "--charge-point-vendor",
        required=True,
        help="the chargers it is for, as their BootNotification's chargePointVendor (signed: others refuse it)",
    )
    publish.add_argument(
        "--charge-point-model",
        required=True,
        help="the chargers it is for, as their BootNotification's chargePointModel (signed: others refuse it)",
    )
    publish.add_argument(
        "--valid-days",
        type=int,
        help="no charger installs the release after this many days (default: no expiry)",
    )
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

    deploy = sub.add_parser("deploy", help="roll a release out to chargers (an AWS IoT job)")
    deploy.add_argument("version")
    targets = deploy.add_mutually_exclusive_group(required=True)
    targets.add_argument("--charger", action="append", help="a charger id (repeatable)")
    targets.add_argument("--site", help="every charger of this site")
    targets.add_argument("--all", action="store_true", help="every charger")
    deploy.add_argument(
        "--rollout-percent", type=int, default=100, help="send to this share of the targets (default 100)"
    )
    deploy.add_argument("--force", action="store_true", help="allow installing over a newer version")
    deploy.add_argument(
        "--valid-days",
        type=int,
        help=f"with --force: the forced package expires after this many days (default {FORCED_VALID_DAYS})",
    )
    deploy.add_argument(
        "--max-per-minute",
        type=int,
        default=DEFAULT_MAX_PER_MINUTE,
        help=f"chargers IoT starts per minute (default {DEFAULT_MAX_PER_MINUTE})",
    )
    _key_option(deploy)
    deploy.add_argument("--json", action="store_true")
    deploy.set_defaults(run=deploy_release)

    releases = sub.add_parser("releases", help="the published releases, oldest first")
    releases.add_argument("--json", action="store_true")
    releases.set_defaults(run=list_releases)

    status = sub.add_parser("status", help="per charger: job state, running version, last firmware status")
    status.add_argument("version", nargs="?", help="only this release's jobs")
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


# ------------------------------------------------------------------ inputs
def expiry(days: int | None, now: dt.datetime) -> dt.datetime | None:
    """The signed expiry `days` from `now` (None: none); UsageError for a validity under a day."""
    if days is None:
        return None
    if days < 1:
        raise UsageError("--valid-days must be at least 1")
    return now + dt.timedelta(days=days)


def check_semantic(version: str) -> str:
    try:
        precedence(version)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return version


# --------------------------------------------------------------- signing key
@dataclass(frozen=True)
class FirmwarePlace:
    """Where releases are kept and the key they are signed with when the operator names none:
    the local stack's bucket and key file, or a deployed stack's bucket and KMS signing key (its
    outputs; the caller's AWS credentials must be those of FirmwareSigningRoleArn, the only
    principal allowed to sign and to write packages)."""

    bucket: str
    default_signer: Callable[[], FirmwareSigner]


def firmware_place(args: argparse.Namespace) -> FirmwarePlace:
    if getattr(args, "stack", None):
        outputs = operator_profile.stack_outputs(args.stack)
        bucket, alias = outputs.get("FirmwareBucketName"), outputs.get("FirmwareSigningKeyAlias")
        if not (bucket and alias):
            raise CliError(f"stack {args.stack} has no firmware bucket or signing key in its outputs")
        return FirmwarePlace(bucket, lambda: kms_signer(alias))
    state = local_env.connect(args.home)
    folder = Path(state.home) / "firmware"

    def stack_key() -> KeyFileSigner:
        pem = ensure_key(folder / KEY_FILE, folder / PUBLIC_KEY_FILE)
        return KeyFileSigner.from_pem(pem, pin_hint=str(folder / PUBLIC_KEY_FILE))

    return FirmwarePlace(firmware_bucket(state), stack_key)


def operator_signer(args: argparse.Namespace, place: FirmwarePlace) -> FirmwareSigner:
    """--key, --kms-key-id or $CHARGENET_FIRMWARE_KMS_KEY, else the place's own key."""
    return select_signer(key_file=args.key, kms_key_id=args.kms_key_id, default_key=place.default_signer)


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
    head = _head(s3, bucket, version)
    return None if head is None else Release.from_metadata(head["Metadata"])


def _head(s3: Any, bucket: str, version: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(s3.head_object(Bucket=bucket, Key=package_key(version)))
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return None
        raise


def object_version(answer: dict[str, Any]) -> str:
    """The S3 version id a PUT or HEAD answered with; CliError when the bucket keeps none.

    A job names the package at this version, so a later write to the key cannot change what it
    installs; without versioning there is nothing to pin it to.
    """
    version_id = answer.get("VersionId")
    if not version_id or version_id == "null":
        raise CliError(
            "the firmware bucket is not versioned: a job could not pin its package (enable versioning)"
        )
    return str(version_id)


# ------------------------------------------------------------------ publish
def publish_release(args: argparse.Namespace) -> str:
    version = check_semantic(args.version)
    try:
        image = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    vendor = _vendor_signature(args.vendor_signature, args.signing_certificate)
    place = firmware_place(args)
    s3, bucket = firmware_s3(), place.bucket
    if stored_release(s3, bucket, version) is not None:
        # A version names one image for good: chargers and rollouts refer to it.
        raise CliError(f"firmware {version} is already published")
    now = dt.datetime.now(dt.UTC)
    target = Target(args.charge_point_vendor, args.charge_point_model, expiry(args.valid_days, now))
    signer = operator_signer(args, place)
    manifest = sign_manifest(signer, image, version, target, force=False, vendor=vendor)
    release = Release(
        version=version,
        sha256=manifest.sha256,
        size=manifest.size,
        key_id=manifest.signer_key_id or "",
        published_at=now.isoformat(timespec="seconds"),
        charge_point_vendor=manifest.charge_point_vendor,
        charge_point_model=manifest.charge_point_model,
        expires_at="" if manifest.expires_at is None else manifest.expires_at.isoformat(),
    )
    s3.put_object(
        Bucket=bucket, Key=package_key(version), Body=pack(manifest, image), Metadata=release.metadata()
    )
    # Stored with the signing role; the API checks it is there and records who published it.
    registered = api(args).post(f"/firmware/releases/{quote(version, safe='')}", action="publish firmware")
    if args.json:
        return as_json(registered)
    summary = (
        f"published firmware {version} for {release.charge_point_vendor} {release.charge_point_model}: "
        f"{release.size} bytes, sha256 {release.sha256}, key {release.key_id}"
        + ("" if not release.expires_at else f", expires {release.expires_at}")
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
    if args.max_per_minute < 1:
        raise UsageError("--max-per-minute must be at least 1")
    if args.valid_days is not None and not args.force:
        raise UsageError("--valid-days goes with --force: a release's own expiry is signed at publish")
    forced_days = FORCED_VALID_DAYS if args.valid_days is None else args.valid_days
    forced_until = expiry(forced_days, dt.datetime.now(dt.UTC)) if args.force else None
    client = api(args)
    chargers = sorted(set(args.charger)) if args.charger else _fleet(client, args.site)
    if not chargers:
        raise CliError("no charger matches (or the rollout percentage leaves none)")
    body: dict[str, Any] = {
        "version": args.version,
        "chargers": chargers,
        "rollout_percent": args.rollout_percent,
        "force": args.force,
        "max_per_minute": args.max_per_minute,
    }
    if forced_until is not None:
        client.get(f"/firmware/releases/{quote(args.version, safe='')}", action="read firmware")
        place = firmware_place(args)
        s3, bucket = firmware_s3(), place.bucket
        signer = operator_signer(args, place)
        body["forced_package_version"] = _publish_forced(s3, bucket, args.version, signer, forced_until)
    deployed = client.post("/firmware/deployments", body, action="deploy firmware")
    rollout = [
        {
            "job_id": deployed["job_id"],
            "charger_id": c,
            "version": deployed["version"],
            "force": deployed["force"],
        }
        for c in deployed["chargers"]
    ]
    if args.json:
        return as_json(rollout)
    return table(["JOB", "CHARGER", "VERSION", "FORCE"], [tuple(r.values()) for r in rollout])


def _fleet(client: OperatorApi, site: str | None) -> list[str]:
    """Every charger (of the site), as the operator API lists them."""
    listed = client.paginate("/chargers", {"site": site}, action="list chargers")
    return sorted(str(c["charger_id"]) for c in listed)


def _publish_forced(
    s3: Any, bucket: str, version: str, signer: FirmwareSigner, expires_at: dt.datetime
) -> str:
    """The release again, its manifest signed with `force` and an expiry: the operator's word that a
    downgrade is meant, for this rollout's time only. The S3 version id of the forced package."""
    manifest, image = _stored_package(s3, bucket, version)
    try:
        # Whoever can write the bucket must not get their image signed: only the release this key signed.
        verify(manifest, image, signer.operator_key)
    except FirmwareRejected as exc:
        raise CliError(
            f"the stored package of {version} is not one this key signed ({exc}): not forcing it"
        ) from exc
    # Never past the release's own expiry: forcing it is no way to extend it.
    until = min(expires_at, manifest.expires_at) if manifest.expires_at else expires_at
    target = Target(manifest.charge_point_vendor, manifest.charge_point_model, until)
    forced = sign_manifest(signer, image, version, target, force=True, vendor=manifest.vendor)
    answer = s3.put_object(Bucket=bucket, Key=package_key(version, force=True), Body=pack(forced, image))
    return object_version(answer)


def _stored_package(s3: Any, bucket: str, version: str) -> tuple[FirmwareManifest, bytes]:
    try:
        return unpack(s3.get_object(Bucket=bucket, Key=package_key(version))["Body"].read())
    except (ValidationError, ValueError, FirmwareRejected) as exc:
        raise CliError(f"the stored package of {version} is unreadable: {exc}") from exc


# ------------------------------------------------------------------- status
STATUS_FIELDS = (
    "charger_id",
    "version",
    "force",
    "job_id",
    "state",
    "execution_status",
    "firmware_status",
    "reason",
    "running_version",
    "charger_firmware_status",
    "queued_at",
)


def show_status(args: argparse.Namespace) -> str:
    pages = api(args).paginate("/firmware/status", {"version": args.version}, action="read firmware")
    records = latest_per_charger(pages)
    if args.json:
        return as_json(records)
    return table(
        ["CHARGER", "VERSION", "STATE", "RUNNING", "LAST FIRMWARE STATUS", "REASON", "JOB"],
        [
            (
                r["charger_id"],
                r["version"],
                r["state"],
                r["running_version"],
                r["firmware_status"],
                r["reason"],
                r["job_id"],
            )
            for r in records
        ],
    )


def latest_per_charger(executions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per charger, its execution in the latest job (IoT lists jobs in no set order)."""
    latest: dict[str, dict[str, Any]] = {}
    for execution in sorted(executions, key=lambda e: (str(e["job_created_at"]), str(e["job_id"]))):
        latest[execution["charger_id"]] = {name: execution.get(name) for name in STATUS_FIELDS}
    return [latest[charger_id] for charger_id in sorted(latest)]


# ----------------------------------------------------------------- releases
def list_releases(args: argparse.Namespace) -> str:
    releases = sorted(
        api(args).paginate("/firmware/releases", action="read firmware"), key=lambda r: str(r["published_at"])
    )
    if args.json:
        return as_json(releases)
    return table(
        ["VERSION", "FOR", "BYTES", "PUBLISHED", "EXPIRES", "KEY"],
        [
            (
                r["version"],
                f"{r['charge_point_vendor']} {r['charge_point_model']}".strip(),
                r["size"],
                r["published_at"],
                r["expires_at"] or "-",
                str(r["key_id"])[:16],
            )
            for r in releases
        ],
    )


# --------------------------------------------------------------- public key
def show_public_key(args: argparse.Namespace) -> str:
    """The PEM chargers pin; from KMS GetPublicKey for a KMS key (it is public: printing it is fine)."""
    signer = operator_signer(args, firmware_place(args))
    pem = public_key_pem(signer)
    if args.out is None:
        return pem.decode().rstrip("\n")
    try:
        args.out.write_bytes(pem)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc
    return f"wrote the public key {signer.operator_key.key_id} to {args.out}"
