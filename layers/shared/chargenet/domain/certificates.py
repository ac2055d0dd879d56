"""Charger certificates: what a charger may ask to have signed, and which certificate it now uses.

Rules (OCPP 1.6 security extension, SignCertificate): the CSR must be signed by its own key,
the key EC P-256 or RSA of at least 2048 bits, its subject must carry exactly one common name
and that must be the charger id the message came from (the MQTT topic, which the broker's
policy ties to the connection's certificate), and it must ask for no other names
(no subjectAltName): a charger can only ever renew its own identity.

`cryptography` is imported when a certificate message arrives, not with the module: the
ingest function's cold start stays lean for the frames that never need it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

MIN_RSA_BITS = 2048
# Certificates a charger may have made for it per window, whatever the path (SignCertificate,
# operator rotation, provisioning): a real rotation needs one a year, a retried one a few more.
# Past it a stolen key would be minting identities: refused, and a security fault raised.
MAX_CERTIFICATES_PER_WINDOW = 3
CERTIFICATE_WINDOW = timedelta(days=1)


class CsrRefused(ValueError):
    """Why a CSR is not signed; never quotes the CSR itself."""


class CertificateStatus(StrEnum):
    """IoT Core's certificate statuses; only ACTIVE connects."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    REVOKED = "REVOKED"
    PENDING_TRANSFER = "PENDING_TRANSFER"
    REGISTER_INACTIVE = "REGISTER_INACTIVE"
    PENDING_ACTIVATION = "PENDING_ACTIVATION"


@dataclass(frozen=True)
class ChargerCertificate:
    """A certificate registered for a charger's thing, as the certificate authority keeps it."""

    certificate_id: str  # IoT's: the SHA-256 of the DER, which the rule's principal() gives
    pem: str
    status: CertificateStatus
    created_at: datetime | None = None  # when the registry took it; None counts as just now


@dataclass(frozen=True)
class CertificateFacts:
    serial_number: str  # lower-case hex, how the shim names the certificate it installed
    not_after: datetime
    # SHA-256 of the SubjectPublicKeyInfo: names the device's key whatever certificate carries it
    public_key_sha256: str


def check_csr(csr_pem: str, charger_id: str) -> None:
    """Raises CsrRefused unless the CSR may be signed for this charger (rules in the module docstring)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise CsrRefused("not a PEM certificate signing request") from exc
    if not csr.is_signature_valid:
        raise CsrRefused("the CSR is not signed by its own key")
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CsrRefused(f"EC keys must be P-256, not {key.curve.name}")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CsrRefused(f"RSA keys must have at least {MIN_RSA_BITS} bits, not {key.key_size}")
    else:
        raise CsrRefused("the key must be EC P-256 or RSA")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or names[0].value != charger_id:
        raise CsrRefused(f"the subject's common name must be {charger_id!r}, once")
    try:
        csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return
    raise CsrRefused("the CSR must not ask for other names (subjectAltName)")


def facts(certificate_pem: str) -> CertificateFacts:
    """Raises ValueError for anything that is not a PEM certificate."""
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    return CertificateFacts(
        format(certificate.serial_number, "x"),
        certificate.not_valid_after_utc,
        public_key_sha256(certificate.public_key()),
    )


def public_key_sha256(public_key: CertificatePublicKeyTypes) -> str:
    from cryptography.hazmat.primitives import serialization

    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def installed(certificates: list[ChargerCertificate], serial_number: str) -> ChargerCertificate | None:
    """The active certificate the charger reports it now connects with, if it is one of its own."""
    wanted = serial_number.strip().lower().removeprefix("0x")
    for certificate in certificates:
        if certificate.status is CertificateStatus.ACTIVE and facts(certificate.pem).serial_number == wanted:
            return certificate
    return None


def to_retire_after_install(
    certificates: list[ChargerCertificate], new: ChargerCertificate
) -> list[ChargerCertificate]:
    """Every other active certificate of the charger: the one it replaced and any that were
    signed but never installed (an abandoned or interrupted rotation)."""
    return [c for c in certificates if c.status is CertificateStatus.ACTIVE and c != new]


def may_abandon(certificates: list[ChargerCertificate], abandoned: ChargerCertificate) -> bool:
    """A charger may give up a certificate it never installed, but never its last active one:
    whatever it claims, it keeps a working identity."""
    return any(c.status is CertificateStatus.ACTIVE and c != abandoned for c in certificates)


def connected_with(
    certificates: list[ChargerCertificate], principal: str | None
) -> ChargerCertificate | None:
    """The charger's active certificate the frame's connection was made with (principal() of the
    ingest rule), or None: no principal, another thing's certificate, or one no longer active."""
    for certificate in certificates:
        if certificate.status is CertificateStatus.ACTIVE and certificate.certificate_id == principal:
            return certificate
    return None


def replaced_by_new_request(
    certificates: list[ChargerCertificate], current: ChargerCertificate
) -> list[ChargerCertificate]:
    """What a new SignCertificate retires so that at most one unconfirmed certificate exists: every
    active one but the certificate the request came over. That is the earlier unconfirmed one, or,
    when the charger asks over a certificate it never confirmed, the one before it: asking over it
    proves it connects, as CertificateInstalled would."""
    return [c for c in certificates if c.status is CertificateStatus.ACTIVE and c != current]


def over_issue_limit(certificates: list[ChargerCertificate], now: datetime) -> bool:
    """True when the charger already had MAX_CERTIFICATES_PER_WINDOW certificates made within
    CERTIFICATE_WINDOW (retired ones count too: retiring must not make room for more)."""
    recent = [c for c in certificates if c.created_at is None or now - c.created_at < CERTIFICATE_WINDOW]
    return len(recent) >= MAX_CERTIFICATES_PER_WINDOW
