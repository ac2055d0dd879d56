"""`chargenet provisioning allow|list|claim-certificate|revoke-claim-certificate`: factory provisioning.

Every command goes through the operator API (/ops/v1/provisioning/...).

The operator issues a factory batch's claim certificate and allow-lists the serial numbers the
batch will carry under it (`allow SERIAL... --claim-certificate CERT_ID`); each charger then
claims its own identity (`chargenet-shim claim`) and the pre-provisioning hook lets each
allow-listed serial through once, and only when asked with that batch's claim certificate.

The claim certificate's key pair is made here and never leaves this machine: only its CSR goes
to the API, which has IoT sign it and attaches the claim policy. The bundle folder is what
`chargenet-shim claim` reads: claim.key (0600), claim.pem, ca.pem and claim.json.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargenet.domain.charger_ids import is_charger_id
from chargenet.domain.provisioning import CLAIM_COMMON_NAME
from chargenet_cli import local_env
from chargenet_cli.errors import UsageError
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table
from chargenet_cli.provisioning import local_broker

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
    claim.add_argument(
        "--root-ca",
        type=Path,
        help="with --stack: the CA chargers check IoT's endpoint against (Amazon Root CA 1, "
        "https://www.amazontrust.com/repository/AmazonRootCA1.pem)",
    )
    claim.set_defaults(run=issue_claim_certificate)
    revoke = sub.add_parser(
        "revoke-claim-certificate", help="retire a batch claim certificate (a rotated or lost one)"
    )
    revoke.add_argument("certificate_id")
    revoke.set_defaults(run=revoke_claim_certificate)


def allow_serials(args: argparse.Namespace) -> str:
    malformed = [s for s in args.serials if not is_charger_id(s)]
    if malformed:
        raise UsageError(
            f"invalid serial number(s) {', '.join(map(repr, malformed))}: a serial becomes the charger id "
            "(1-64 letters, digits, '_' or '-', no dots, starting with a letter or digit)"
        )
    _check_certificate_id(args.claim_certificate, "--claim-certificate")
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
    from chargenet_shim.claim import ClaimBundle

    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty: a claim bundle goes into a new folder")
    if args.stack is None:
        if args.root_ca is not None:
            raise UsageError("--root-ca only with --stack: the local stack has its own CA")
        state = local_env.connect(args.home)
        ca_pem, broker = Path(state.ca_path).read_text(), local_broker(state)
    else:
        if args.root_ca is None:
            raise UsageError("--stack needs --root-ca: the CA chargers check IoT's endpoint against")
        ca_pem, broker = _read_root_ca(args.root_ca), None
    key = ec.generate_private_key(ec.SECP256R1())
    # Made before the certificate is issued: a folder that cannot be made fails with nothing issued.
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    issued = api(args).post(
        "/provisioning/claim-certificates", {"csr": _claim_csr(key)}, action="issue a claim certificate"
    )
    _write_private(out / "claim.key", _pem(key))
    (out / "claim.pem").write_text(issued["certificate_pem"])
    (out / "ca.pem").write_text(ca_pem)
    bundle = ClaimBundle(
        # moto's IoT names no endpoint a claiming charger could reach: the local stack gives its broker
        mqtt_host=broker.mqtt_host if broker else issued["mqtt_host"],
        mqtt_port=broker.mqtt_port if broker else issued["mqtt_port"],
        template_name=issued["template_name"],
        certificate_id=issued["certificate_id"],
    )
    bundle.save(out)
    return (
        f"claim certificate {bundle.certificate_id} issued: bundle in {out}\n"
        f"allow the batch's serials with: chargenet provisioning allow SERIAL... "
        f"--claim-certificate {bundle.certificate_id}"
    )


def revoke_claim_certificate(args: argparse.Namespace) -> str:
    """IoT refuses a REVOKED certificate at once; locally the CRL does (chargenet_local.moto_iot
    puts it there and has mosquitto re-read it)."""
    certificate_id = _check_certificate_id(args.certificate_id, "certificate id")
    api(args).post(
        f"/provisioning/claim-certificates/{certificate_id}/revoke", action="revoke a claim certificate"
    )
    return f"claim certificate {certificate_id[:12]}... revoked"


def _check_certificate_id(value: str, what: str) -> str:
    if not re.fullmatch(CERTIFICATE_ID_PATTERN, value):
        raise UsageError(f"invalid {what} {value!r}: an IoT certificate id is 64 hex digits")
    return value


def _claim_csr(key: ec.EllipticCurvePrivateKey) -> str:
    """For CLAIM_COMMON_NAME, the name the API signs claim certificates for (and the local broker's
    claim user)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CLAIM_COMMON_NAME)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _read_root_ca(path: Path) -> str:
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
