"""`chargenet firmware publish|deploy|status`: signed firmware releases and their rollouts.

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
metadata: it describes one immutable object, is written in the same PUT, so the two can never
disagree, and needs no table, grants or KMS use of its own; a fleet has tens of releases, so
listing them with one HEAD each is cheap.

Deploy. One AWS IoT job per deployment whose targets are the chosen chargers' things
(firmware_jobs.py): its document names the release and its package, at the S3 version id it
had when the job was made, as an IoT pre-signed URL placeholder, so chargers hold no AWS
credentials and whoever can write the bucket later cannot change what the job installs. `--rollout-percent` picks a deterministic
subset by hash; IoT paces the executions (`--max-per-minute`) and cancels a rollout in which a
fifth of the chargers fail. A downgrade needs `--force`: the release is signed again with
`force` and an expiry (`--valid-days`, a week by default) in the signed manifest
(firmware/<version>/forced-package), so nobody between the operator and the charger can add it
and nobody who kept the package can install it after the rollout's time.

Status. IoT keeps each charger's execution (queued, in progress with the firmware status the
charger last reported, succeeded, failed, rejected); `status` shows the latest per charger,
beside what the charger itself last told the backend (its BootNotification's version).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from chargenet.domain.models import Charger
from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.firmware_jobs import (
    DEFAULT_MAX_PER_MINUTE,
    Execution,
    FirmwareJobs,
    PackageObject,
    job_document,
    job_id,
)
from chargenet_cli.firmware_signing import (
    KMS_KEY_VARIABLE,
    FirmwareSigner,
    KeyFileSigner,
    public_key_pem,
    select_signer,
    sign_manifest,
)
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

PACKAGE_PREFIX = "firmware/"
# The role IoT assumes to pre-sign package URLs: the stack output FirmwareJobsRoleArn.
JOBS_ROLE_VARIABLE = "FIRMWARE_JOBS_ROLE_ARN"
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


# ------------------------------------------------------------------ pure parts
@dataclass(frozen=True)
class Release:
    version: str
    sha256: str
    size: int
    key_id: str
    published_at: str
    charge_point_vendor: str = ""
    charge_point_model: str = ""
    expires_at: str = ""  # ISO 8601 UTC; empty: no expiry

    def metadata(self) -> dict[str, str]:
        """As S3 user metadata: string values, lowercase names."""
        return {
            "version": self.version,
            "sha256": self.sha256,
            "size": str(self.size),
            "key-id": self.key_id,
            "published-at": self.published_at,
            "charge-point-vendor": self.charge_point_vendor,
            "charge-point-model": self.charge_point_model,
            "expires-at": self.expires_at,
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> Release:
        return cls(
            version=metadata["version"],
            sha256=metadata["sha256"],
            size=int(metadata["size"]),
            key_id=metadata["key-id"],
            published_at=metadata["published-at"],
            # Releases stored before the statement named them: chargers refuse those packages.
            charge_point_vendor=metadata.get("charge-point-vendor", ""),
            charge_point_model=metadata.get("charge-point-model", ""),
            expires_at=metadata.get("expires-at", ""),
        )


def package_key(version: str, *, force: bool = False) -> str:
    return f"{PACKAGE_PREFIX}{version}/{'forced-package' if force else 'package'}"


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


def _region(s3: Any) -> str:
    # boto3's S3 client without a region speaks to us-east-1.
    return str(s3.meta.region_name or "us-east-1")


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
    state = local_env.connect(args.home)
    s3, bucket = firmware_s3(), firmware_bucket(state)
    if stored_release(s3, bucket, version) is not None:
        # A version names one image for good: chargers and rollouts refer to it.
        raise CliError(f"firmware {version} is already published")
    now = dt.datetime.now(dt.UTC)
    target = Target(args.charge_point_vendor, args.charge_point_model, expiry(args.valid_days, now))
    signer = operator_signer(args, state)
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
    if args.json:
        return as_json(asdict(release))
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
    state = local_env.connect(args.home)
    s3, bucket = firmware_s3(), firmware_bucket(state)
    head = _head(s3, bucket, args.version)
    if head is None:
        raise CliError(
            f"no firmware {args.version} (chargenet firmware publish FILE --version {args.version})"
        )
    _check_not_expired(Release.from_metadata(head["Metadata"]))
    targets = select_targets(
        _registry().list(), args.version, args.rollout_percent, ids=args.charger, site=args.site
    )
    if not targets:
        raise CliError("no charger matches (or the rollout percentage leaves none)")
    if forced_until is not None:
        package_version = _publish_forced(
            s3, bucket, args.version, operator_signer(args, state), forced_until
        )
    else:
        package_version = object_version(head)
    jobs = _jobs()
    try:
        things = jobs.thing_arns(targets)
    except LookupError as missing:
        raise CliError(f"no IoT thing for charger {missing}: provision it first") from None
    job = job_id(args.version, args.force, dt.datetime.now(dt.UTC))
    document = job_document(
        args.version,
        args.force,
        PackageObject(bucket, package_key(args.version, force=args.force), package_version, _region(s3)),
    )
    jobs.create(job, document, things, _jobs_role_arn(), args.max_per_minute)
    rollout = [
        {"job_id": job, "charger_id": c, "version": args.version, "force": args.force} for c in targets
    ]
    if args.json:
        return as_json(rollout)
    return table(["JOB", "CHARGER", "VERSION", "FORCE"], [tuple(r.values()) for r in rollout])


def _check_not_expired(release: Release) -> None:
    if release.expires_at and dt.datetime.fromisoformat(release.expires_at) <= dt.datetime.now(dt.UTC):
        raise CliError(
            f"firmware {release.version} expired at {release.expires_at}: chargers refuse it "
            "(publish the image again as a new version)"
        )


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


def _registry() -> Any:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    return DynamoChargerRegistry()


def _jobs() -> FirmwareJobs:
    import boto3

    return FirmwareJobs(boto3.client("iot"))


def _jobs_role_arn() -> str:
    """The stack's FirmwareJobsRole; locally moto keeps but does not assume it (the local Jobs
    service pre-signs with the stack's own credentials)."""
    from chargenet_local.template import ACCOUNT_ID

    return os.environ.get(JOBS_ROLE_VARIABLE) or f"arn:aws:iam::{ACCOUNT_ID}:role/FirmwareJobsRole"


# ------------------------------------------------------------------- status
def show_status(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    registry = _registry()
    records = [_status_record(e, registry.get(e.charger_id)) for e in _jobs().executions(args.version)]
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


def _status_record(execution: Execution, charger: Charger | None) -> dict[str, Any]:
    return {
        "charger_id": execution.charger_id,
        "version": execution.version,
        "force": execution.force,
        "job_id": execution.job_id,
        "state": execution.state,
        "execution_status": execution.status,
        "firmware_status": execution.details.get("firmwareStatus"),
        "reason": execution.details.get("reason"),
        "running_version": None if charger is None else charger.firmware_version,
        "queued_at": execution.queued_at,
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
