"""The local certificate authority: what AWS IoT's CA does in the cloud.

It signs charger CSRs (the charger's private key never leaves the device side),
the broker's server certificate and the stack's own backend client certificate,
and keeps a CRL that mosquitto checks on every connection.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "chargenet"
CHARGER_CERT_DAYS = 365


class CsrRejected(ValueError):
    """The CSR is not signed by its own key or names another charger."""


@dataclass(frozen=True)
class IssuedCertificate:
    pem: str
    serial: int
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class LocalCA:
    """A CA kept in a folder: ca.pem, ca.key (0600), crl.pem, revoked serials."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cert_path = folder / "ca.pem"
        self.key_path = folder / "ca.key"
        self.crl_path = folder / "crl.pem"
        self._revoked_path = folder / "revoked.txt"

    # ----------------------------------------------------------------- set-up
    def ensure(self) -> LocalCA:
        if not self.cert_path.exists():
            self._create()
        if not self.crl_path.exists():
            self._write_crl()
        return self

    def _create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        key = new_key()
        name = _name("chargenet local CA")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5))
            .not_valid_after(_now() + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(self.key_path, key_pem(key))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key

    # ---------------------------------------------------------------- issuing
    def sign_csr(
        self,
        csr_pem: str,
        *,
        expected_cn: str,
        days: int = CHARGER_CERT_DAYS,
        not_after: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """Sign a charger's CSR as IoT's CreateCertificateFromCsr would, for one charger id only.

        `not_after` overrides `days`: short-lived certificates for rotation, expired ones for tests.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as exc:
            raise CsrRejected(f"not a PEM certificate signing request: {exc}") from exc
        if not csr.is_signature_valid:
            raise CsrRejected("CSR signature does not match its public key")
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not cns or cns[0].value != expected_cn:
            raise CsrRejected(f"CSR common name must be the charger id {expected_cn!r}")
        until = not_after or _now() + dt.timedelta(days=days)
        return self._issue(expected_cn, csr.public_key(), not_after=until, client=True)

    def issue_with_key(self, common_name: str, *, server: bool, folder: Path) -> tuple[Path, Path]:
        """Issue a certificate and key for the stack's own parts (broker, backend client)."""
        key = new_key()
        until = _now() + dt.timedelta(days=825)
        issued = self._issue(common_name, key.public_key(), not_after=until, client=not server)
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / f"{common_name}.pem", folder / f"{common_name}.key"
        cert_path.write_text(issued.pem)
        _write_private(key_path, key_pem(key))
        return cert_path, key_path

    def _issue(
        self, common_name: str, public_key: object, *, not_after: dt.datetime, client: bool
    ) -> IssuedCertificate:
        ca_cert, ca_key = self._load()
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            # Never after not_after, or an already expired certificate would be malformed instead.
            .not_valid_before(min(_now() - dt.timedelta(minutes=5), not_after - dt.timedelta(days=1)))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if not client:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return IssuedCertificate(
            pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            serial=cert.serial_number,
            not_after=cert.not_valid_after_utc,
        )

    # ------------------------------------------------------------- revocation
    def revoke(self, cert_pem: str) -> None:
        serial = x509.load_pem_x509_certificate(cert_pem.encode()).serial_number
        serials = self._revoked() | {serial}
        self._revoked_path.write_text("".join(f"{s}\n" for s in sorted(serials)))
        self._write_crl()

    def _revoked(self) -> set[int]:
        if not self._revoked_path.exists():
            return set()
        return {int(line) for line in self._revoked_path.read_text().split()}

    def _write_crl(self) -> None:
        ca_cert, ca_key = self._load()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(_now() - dt.timedelta(minutes=5))
            .next_update(_now() + dt.timedelta(days=30))
        )
        for serial in sorted(self._revoked()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(_now()).build()
            )
        crl = builder.sign(ca_key, hashes.SHA256())
        self.crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
