"""moto's IoT registry issuing and retiring certificates the way the local broker sees them.

moto's CreateCertificateFromCsr signs with a throwaway CA of its own, which mosquitto (trusting
only the local CA) would refuse, and its UpdateCertificate changes a status mosquitto never
reads. The stack's daemon serves moto in its own process (chargenet_local.moto_server), so `apply`
changes these two methods of moto's IoT backend there, and every client (the ingest function, the CLI) gets the
cloud's behaviour through the ordinary boto3 calls:

- CreateCertificateFromCsr: the local CA signs the CSR (chargenet_local.pki) and moto registers
  the certificate, as IoT Core registers the ones its CA signs.
- UpdateCertificate to INACTIVE or REVOKED: the certificate also goes on the local CA's CRL and
  mosquitto reloads it, as IoT Core refuses a certificate that is not ACTIVE. REVOKED also drops
  the live connection (mosquitto re-reads the CRL only for new handshakes), as IoT Core does: the
  charger's client id (its certificate's common name) is evicted. Not INACTIVE: a rotation
  deactivates the old certificate while the charger is connected with the new one.
- Certificate ids are the SHA-256 of the DER, as IoT Core's (moto's default hashes the PEM text):
  the id the broker stamps as the rules' principal() must name the registered certificate.

Local difference: IoT Core can set an INACTIVE certificate ACTIVE again; locally its CRL entry
stays (a CRL cannot take a revocation back), so it never connects again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from chargenet_local.pki import CsrRejected, LocalCA

ACTIVE = "ACTIVE"
REVOKED = "REVOKED"


def apply(ca: LocalCA, reload_crl: Callable[[], None], evict: Callable[[str], None]) -> None:
    """Patch moto's IoT backend in this process (the stack's, where moto serves)."""
    from moto.core.config import default_user_config
    from moto.iot.exceptions import InvalidRequestException
    from moto.iot.models import IoTBackend

    default_user_config["iot"] = {**default_user_config.get("iot", {}), "use_valid_cert": True}

    revocations = threading.Lock()  # moto serves requests on several threads; the CRL is one file
    update_status = IoTBackend.update_certificate

    def create_certificate_from_csr(self: IoTBackend, csr: str, set_as_active: bool) -> Any:
        try:
            issued = ca.sign_csr(csr, expected_cn=_common_name(csr))
        except (CsrRejected, ValueError) as refused:
            raise InvalidRequestException(f"certificate signing request refused: {refused}") from refused
        return self.register_certificate(
            issued.pem, ca_certificate_pem=None, set_as_active=set_as_active, status="INACTIVE"
        )

    def update_certificate(self: IoTBackend, certificate_id: str, new_status: str) -> None:
        update_status(self, certificate_id, new_status)
        if new_status != ACTIVE:
            with revocations:
                certificate_pem = self.describe_certificate(certificate_id).certificate_pem
                ca.revoke(certificate_pem)
                reload_crl()  # first: the evicted charger reconnects at once and must meet the CRL
                if new_status == REVOKED:
                    evict(_certificate_common_name(certificate_pem))

    IoTBackend.create_certificate_from_csr = create_certificate_from_csr  # type: ignore[method-assign]
    IoTBackend.update_certificate = update_certificate  # type: ignore[method-assign]


def _certificate_common_name(certificate_pem: str) -> str:
    names = x509.load_pem_x509_certificate(certificate_pem.encode()).subject.get_attributes_for_oid(
        NameOID.COMMON_NAME
    )
    return str(names[0].value) if names else ""


def _common_name(csr_pem: str) -> str:
    names = x509.load_pem_x509_csr(csr_pem.encode()).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise CsrRejected("the CSR names no common name")
    return str(names[0].value)
