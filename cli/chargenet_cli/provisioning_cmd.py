"""`chargenet provisioning allow|list|claim-certificate|revoke-claim-certificate`: factory provisioning.

`allow` and `list` go through the operator API (POST and GET /ops/v1/provisioning/serials).

The operator issues a factory batch's claim certificate and allow-lists the serial numbers the
batch will carry under it (`allow SERIAL... --claim-certificate CERT_ID`); each charger then
claims its own identity (`chargenet-shim claim`) and the pre-provisioning hook lets each
allow-listed serial through once, and only when asked with that batch's claim certificate.

Claim certificates are issued on the local stack by default; with `--cloud` in the AWS account
of the operator's credentials (boto3's usual chain: AWS_PROFILE, AWS_REGION, ...), where IoT
makes the key pair and the certificate and the deployed stack's claim policy is attached.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from chargenet.adapters.iot_certificates import IOT_MQTT_PORT
from chargenet.adapters.iot_claim_certificates import (
    IotClaimCertificates,
    NotAClaimCertificate,
    UnknownCertificate,
)
from chargenet.domain.charger_ids import is_charger_id
from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table

if TYPE_CHECKING:
    from chargenet_shim.claim import ClaimBundle

# Locally every template resource is named by its logical id (chargenet_local.template.ref).
CLAIM_POLICY = "ProvisioningClaimPolicy"
# IoT certificate ids: the SHA-256 of the certificate, 64 hex digits.
CERTIFICATE_ID_PATTERN = r"^[0-9a-fA-F]{64}$"


def register(commands: argparse._SubParsersAction) -> None:
    provisioning = commands.add_parser("provisioning", help="factory provisioning by claim")
    sub = provisioning.add_subparsers(dest="provisioning_command", required=True)
    allow = sub.add_parser("allow", help="allow serial numbers to claim a charger identity, each once")
    allow.add_argument("serials", nargs="+", metavar="SERIAL")
    allow.add_argument("--site", default="", help="site the chargers will belong to")
    allow.add_argument(
        "--claim-certificate",
        required=True,
        metavar="CERT_ID",
        help="the id of the batch's claim certificate (claim-certificate prints it): the only one that "
        "may claim these serials",
    )
    allow.set_defaults(run=allow_serials)
    listing = sub.add_parser("list", help="allow-listed serial numbers and whether they were claimed")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_serials)
    claim = sub.add_parser(
        "claim-certificate", help="issue a batch claim certificate and key for the factory"
    )
    claim.add_argument("--out", type=Path, required=True, help="new folder for the claim bundle")
    _cloud_options(claim)
    claim.add_argument("--template-name", help="with --cloud: the stack's ProvisioningTemplateName output")
    claim.add_argument(
        "--root-ca",
        type=Path,
        help="with --cloud: the CA chargers check IoT's endpoint against (Amazon Root CA 1, "
        "https://www.amazontrust.com/repository/AmazonRootCA1.pem)",
    )
    claim.set_defaults(run=issue_claim_certificate)
    revoke = sub.add_parser(
        "revoke-claim-certificate", help="retire a batch claim certificate (a rotated or lost one)"
    )
    revoke.add_argument("certificate_id")
    _cloud_options(revoke)
    revoke.set_defaults(run=revoke_claim_certificate)


def _cloud_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--cloud", action="store_true", help="in the AWS account of your credentials, not the local stack"
    )
    command.add_argument(
        "--claim-policy", help="with --cloud: the stack's ProvisioningClaimPolicyName output"
    )


def allow_serials(args: argparse.Namespace) -> str:
    malformed = [s for s in args.serials if not is_charger_id(s)]
    if malformed:
        raise UsageError(
            f"invalid serial number(s) {', '.join(map(repr, malformed))}: a serial becomes the charger id "
            "(1-64 letters, digits, '_' or '-', no dots, starting with a letter or digit)"
        )
    if not re.fullmatch(CERTIFICATE_ID_PATTERN, args.claim_certificate):
        raise UsageError(
            f"invalid --claim-certificate {args.claim_certificate!r}: an IoT certificate id is 64 hex digits"
        )
    body = {"serials": args.serials, "claim_certificate_id": args.claim_certificate, "site": args.site}
    done = api(args).post("/provisioning/serials", body, action="allow serial numbers")
    lines = [f"allowed: {', '.join(done['allowed'])}"] if done["allowed"] else []
    if done["already"]:
        lines.append(f"already on the list (unchanged): {', '.join(done['already'])}")
    return "\n".join(lines)


def list_serials(args: argparse.Namespace) -> str:
    entries = sorted(
        api(args).paginate("/provisioning/serials", action="list serial numbers"),
        key=lambda e: e["serial_number"],
    )
    if args.json:
        return as_json(entries)
    rows = [
        (
            e["serial_number"],
            e["site_id"] or None,
            _minute(e["allowed_at"]),
            _minute(e["claimed_at"]),
            f"{e['certificate_id'][:12]}..." if e["certificate_id"] else None,
            f"{e['claim_certificate_id'][:12]}..." if e["claim_certificate_id"] else None,
        )
        for e in entries
    ]
    return table(("SERIAL", "SITE", "ALLOWED", "CLAIMED", "CERTIFICATE", "BATCH"), rows)


def _minute(value: str | None) -> str | None:
    return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M}" if value else None


def issue_claim_certificate(args: argparse.Namespace) -> str:
    """claim.pem, claim.key (0600), ca.pem and claim.json in a new folder, for the factory."""
    out: Path = args.out
    _check_cloud_options(args, needed=("claim_policy", "template_name", "root_ca"))
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty: a claim bundle goes into a new folder")
    bundle = _issue_in_the_cloud(args, out) if args.cloud else _issue_on_the_local_stack(args, out)
    return (
        f"claim certificate {bundle.certificate_id} issued: bundle in {out}\n"
        f"allow the batch's serials with: chargenet provisioning allow SERIAL... "
        f"--claim-certificate {bundle.certificate_id}"
    )


def _issue_in_the_cloud(args: argparse.Namespace, out: Path) -> ClaimBundle:
    from chargenet_shim.claim import ClaimBundle

    root_ca = _read_root_ca(args.root_ca)
    claims = IotClaimCertificates(args.claim_policy)
    try:  # checked before anything is created in the account
        unissued = ClaimBundle(
            mqtt_host=claims.data_endpoint(), mqtt_port=IOT_MQTT_PORT, template_name=args.template_name
        )
    except ValidationError:
        raise UsageError(
            f"--template-name {args.template_name!r}: not a provisioning template name"
        ) from None
    out.mkdir(mode=0o700, parents=True, exist_ok=True)  # before the certificate: its key has a home
    issued = claims.create()
    _write_private(out / "claim.key", issued.private_key_pem)
    (out / "claim.pem").write_text(issued.certificate_pem)
    (out / "ca.pem").write_text(root_ca)
    bundle = unissued.model_copy(update={"certificate_id": issued.certificate_id})
    bundle.save(out)
    return bundle


def _issue_on_the_local_stack(args: argparse.Namespace, out: Path) -> ClaimBundle:
    """The stack's CA signs it and moto's registry knows it, as IoT would."""
    from chargenet_local.broker import CLAIM_USER
    from chargenet_local.pki import LocalCA
    from chargenet_shim.claim import ClaimBundle

    state = local_env.connect(args.home)
    if not state.provisioning_template:
        raise CliError("the local stack runs no provisioning template (template.yaml has none)")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = LocalCA(Path(state.home) / "ca")
    cert_path, key_path = ca.issue_with_key(CLAIM_USER, server=False, folder=out)
    os.replace(key_path, out / "claim.key")
    os.replace(cert_path, out / "claim.pem")
    (out / "ca.pem").write_text(ca.cert_path.read_text())
    bundle = ClaimBundle(
        mqtt_host=state.mqtt_host,
        mqtt_port=state.mqtt_port,
        template_name=state.provisioning_template,
        certificate_id=IotClaimCertificates(CLAIM_POLICY).register((out / "claim.pem").read_text()),
    )
    bundle.save(out)
    return bundle


def revoke_claim_certificate(args: argparse.Namespace) -> str:
    """IoT refuses a REVOKED certificate at once; locally the CRL does (chargenet_local.moto_iot
    puts it there and has mosquitto re-read it)."""
    _check_cloud_options(args, needed=("claim_policy",))
    if args.cloud:
        _revoke(IotClaimCertificates(args.claim_policy), args.certificate_id)
    else:
        local_env.connect(args.home)
        _revoke(IotClaimCertificates(CLAIM_POLICY), args.certificate_id)
    return f"claim certificate {args.certificate_id[:12]}... revoked"


def _revoke(claims: IotClaimCertificates, certificate_id: str) -> str:
    try:
        return claims.revoke(certificate_id)
    except UnknownCertificate:
        raise CliError(f"no certificate {certificate_id}") from None
    except NotAClaimCertificate:
        raise CliError(f"certificate {certificate_id} is not a claim certificate") from None


def _check_cloud_options(args: argparse.Namespace, needed: tuple[str, ...]) -> None:
    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    if args.cloud:
        missing = [flag(name) for name in needed if getattr(args, name) is None]
        if missing:
            raise UsageError(f"--cloud needs {', '.join(missing)}")
        return
    given = [flag(name) for name in needed if getattr(args, name) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} only with --cloud")


def _read_root_ca(path: Path) -> str:
    from cryptography import x509

    try:
        pem = path.read_bytes()
        x509.load_pem_x509_certificate(pem)
    except OSError as exc:
        raise UsageError(f"--root-ca {path}: {exc.strerror}") from exc
    except ValueError:
        raise UsageError(f"--root-ca {path}: not a PEM certificate") from None
    return pem.decode()


def _write_private(path: Path, text: str) -> None:
    """Created 0600 from the start: the key is never readable by others, not even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
