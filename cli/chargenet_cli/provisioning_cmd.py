"""`chargenet provisioning allow|list|claim-certificate|revoke-claim-certificate`: factory provisioning.

The operator allow-lists the serial numbers a factory batch will carry and issues the batch's
claim certificate; each charger then claims its own identity (`chargenet-shim claim`) and the
pre-provisioning hook lets each allow-listed serial through once.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from chargenet.domain.clock import utc_now
from chargenet.domain.provisioning import CHARGER_ID_PATTERN, AllowedSerial
from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.output import as_json, table

# Locally every template resource is named by its logical id (chargenet_local.template.ref).
CLAIM_POLICY = "ProvisioningClaimPolicy"


def register(commands: argparse._SubParsersAction) -> None:
    provisioning = commands.add_parser("provisioning", help="factory provisioning by claim")
    sub = provisioning.add_subparsers(dest="provisioning_command", required=True)
    allow = sub.add_parser("allow", help="allow serial numbers to claim a charger identity, each once")
    allow.add_argument("serials", nargs="+", metavar="SERIAL")
    allow.add_argument("--site", default="", help="site the chargers will belong to")
    allow.set_defaults(run=allow_serials)
    listing = sub.add_parser("list", help="allow-listed serial numbers and whether they were claimed")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_serials)
    claim = sub.add_parser(
        "claim-certificate", help="issue a batch claim certificate and key for the factory"
    )
    claim.add_argument("--out", type=Path, required=True, help="new folder for the claim bundle")
    claim.set_defaults(run=issue_claim_certificate)
    revoke = sub.add_parser(
        "revoke-claim-certificate", help="retire a batch claim certificate (a rotated or lost one)"
    )
    revoke.add_argument("certificate_id")
    revoke.set_defaults(run=revoke_claim_certificate)


def allow_serials(args: argparse.Namespace) -> str:
    malformed = [s for s in args.serials if not re.fullmatch(CHARGER_ID_PATTERN, s)]
    if malformed:
        raise UsageError(
            f"invalid serial number(s) {', '.join(map(repr, malformed))}: a serial becomes the charger id "
            "(1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)"
        )
    local_env.connect(args.home)
    allow_list = _allow_list()
    at = utc_now()
    added = [s for s in dict.fromkeys(args.serials) if allow_list.allow(s, args.site, at)]
    already = [s for s in dict.fromkeys(args.serials) if s not in added]
    lines = [f"allowed: {', '.join(added)}"] if added else []
    if already:
        lines.append(f"already on the list (unchanged): {', '.join(already)}")
    return "\n".join(lines)


def list_serials(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    entries = _allow_list().list()
    if args.json:
        return as_json([_record(e) for e in entries])
    rows = [
        (
            e.serial_number,
            e.site_id or None,
            f"{e.allowed_at:%Y-%m-%d %H:%M}",
            f"{e.claimed_at:%Y-%m-%d %H:%M}" if e.claimed_at else None,
            f"{e.certificate_id[:12]}..." if e.certificate_id else None,
        )
        for e in entries
    ]
    return table(("SERIAL", "SITE", "ALLOWED", "CLAIMED", "CERTIFICATE"), rows)


def issue_claim_certificate(args: argparse.Namespace) -> str:
    """Locally the CA signs it; in the cloud the same bundle comes from CreateKeysAndCertificate."""
    import boto3

    from chargenet_local.broker import CLAIM_USER
    from chargenet_local.pki import LocalCA
    from chargenet_shim.claim import ClaimBundle

    state = local_env.connect(args.home)
    if not state.provisioning_template:
        raise CliError("the local stack runs no provisioning template (template.yaml has none)")
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty: a claim bundle goes into a new folder")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = LocalCA(Path(state.home) / "ca")
    cert_path, key_path = ca.issue_with_key(CLAIM_USER, server=False, folder=out)
    os.replace(key_path, out / "claim.key")
    os.replace(cert_path, out / "claim.pem")
    (out / "ca.pem").write_text(ca.cert_path.read_text())
    iot = boto3.client("iot")
    registered = iot.register_certificate_without_ca(
        certificatePem=(out / "claim.pem").read_text(), status="ACTIVE"
    )
    iot.attach_policy(policyName=CLAIM_POLICY, target=registered["certificateArn"])
    ClaimBundle(
        mqtt_host=state.mqtt_host,
        mqtt_port=state.mqtt_port,
        template_name=state.provisioning_template,
        certificate_id=registered["certificateId"],
    ).save(out)
    return f"claim certificate {registered['certificateId'][:12]}... issued: bundle in {out}"


def revoke_claim_certificate(args: argparse.Namespace) -> str:
    """IoT refuses a REVOKED certificate at once; locally the CRL does, once mosquitto re-reads it."""
    import boto3

    from chargenet_local import broker
    from chargenet_local.pki import LocalCA

    state = local_env.connect(args.home)
    iot = boto3.client("iot")
    try:
        description = iot.describe_certificate(certificateId=args.certificate_id)["certificateDescription"]
    except iot.exceptions.ResourceNotFoundException:
        raise CliError(f"no certificate {args.certificate_id}") from None
    arn = description["certificateArn"]
    if CLAIM_POLICY not in {p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]}:
        raise CliError(f"certificate {args.certificate_id} is not a claim certificate")
    iot.update_certificate(certificateId=args.certificate_id, newStatus="REVOKED")
    iot.detach_policy(policyName=CLAIM_POLICY, target=arn)
    LocalCA(Path(state.home) / "ca").revoke(description["certificatePem"])
    broker.reload_crl(state.broker_pid, Path(state.home) / "broker")
    return f"claim certificate {args.certificate_id[:12]}... revoked"


def _allow_list() -> Any:
    from chargenet.adapters.provisioning_dynamodb import DynamoAllowList

    return DynamoAllowList()


def _record(entry: AllowedSerial) -> dict[str, Any]:
    return {
        "serial_number": entry.serial_number,
        "site_id": entry.site_id,
        "allowed_at": entry.allowed_at.isoformat(),
        "claimed_at": entry.claimed_at.isoformat() if entry.claimed_at else None,
        "certificate_id": entry.certificate_id,
    }
