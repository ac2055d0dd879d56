"""The charger's private key store on the device side.

The key is created here and never handed out: only CSRs leave the folder, and
the certificate the cloud signs is accepted only if it is for this very key.
Rotation keeps a second, pending key and certificate beside the current ones until
the new certificate has connected; only then does the pending pair replace them.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ORGANIZATION = "chargenet"


def _public_der(key: object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("certificate does not carry an EC public key")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class FileKeyStore:
    """key.pem (0600), cert.pem and ca.pem in one folder (0700) per charger."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    @property
    def key_path(self) -> Path:
        return self._folder / "key.pem"

    @property
    def cert_path(self) -> Path:
        return self._folder / "cert.pem"

    @property
    def ca_path(self) -> Path:
        return self._folder / "ca.pem"

    @property
    def pending_key_path(self) -> Path:
        return self._folder / "key.next.pem"

    @property
    def pending_cert_path(self) -> Path:
        return self._folder / "cert.next.pem"

    def create_csr(self, charger_id: str) -> str:
        """A PEM CSR for CN=<charger_id>, O=chargenet, made with the stored key (created on first use)."""
        return _csr(self._load_or_create_key(self.key_path), charger_id)

    def install_certificate(self, cert_pem: str, ca_pem: str) -> None:
        """Store the signed certificate and the CA to trust, refusing a certificate for another key."""
        _check_pair(cert_pem, ca_pem, self.key_path)
        self.cert_path.write_text(cert_pem)
        self.ca_path.write_text(ca_pem)

    # ---------------------------------------------------------------- rotation
    def create_pending_csr(self, charger_id: str) -> str:
        """A CSR for a new key, kept beside the current one; a leftover of an aborted rotation goes."""
        self.discard_pending()
        return _csr(self._load_or_create_key(self.pending_key_path), charger_id)

    def install_pending_certificate(self, cert_pem: str, ca_pem: str) -> None:
        _check_pair(cert_pem, ca_pem, self.pending_key_path)
        self.pending_cert_path.write_text(cert_pem)
        self.ca_path.write_text(ca_pem)

    def promote_pending(self) -> str:
        """The pending pair becomes the current one; returns the certificate it replaces.

        A crash between the two renames leaves the new key in key.next.pem, not lost: the
        pair can still be completed by hand, and the cloud keeps the old certificate active.
        """
        if not self.pending_cert_path.exists():
            raise ValueError("no pending certificate to promote")
        old = self.cert_path.read_text()
        os.replace(self.pending_cert_path, self.cert_path)
        os.replace(self.pending_key_path, self.key_path)
        return old

    def discard_pending(self) -> None:
        self.pending_cert_path.unlink(missing_ok=True)
        self.pending_key_path.unlink(missing_ok=True)

    def _load_or_create_key(self, path: Path) -> ec.EllipticCurvePrivateKey:
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask and ignored for an existing folder.
        self._folder.chmod(0o700)
        if path.exists():
            return _load_key(path)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Created 0600 from the start so the key is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        return key


def _csr(key: ec.EllipticCurvePrivateKey, charger_id: str) -> str:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, charger_id),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _check_pair(cert_pem: str, ca_pem: str, key_path: Path) -> None:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    x509.load_pem_x509_certificate(ca_pem.encode())
    if not key_path.exists():
        raise ValueError("no private key in this key store: create a CSR first")
    if _public_der(cert.public_key()) != _public_der(_load_key(key_path).public_key()):
        raise ValueError("certificate is not for this key store's private key")


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key
