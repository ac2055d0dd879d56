"""Charger certificates: who signs and retires them."""

from __future__ import annotations

from typing import Protocol

from chargenet.domain.certificates import ChargerCertificate


class CertificateAuthority(Protocol):
    """Signs and retires charger certificates (IoT Core's registry; locally the local CA in moto)."""

    def issue(self, charger_id: str, csr_pem: str) -> ChargerCertificate:
        """Sign the CSR, active, with the charger policy attached and the charger's thing attached."""
        ...

    def certificates_of(self, charger_id: str) -> list[ChargerCertificate]: ...

    def retire(self, certificate_id: str) -> None:
        """Deactivate (INACTIVE): the certificate no longer connects."""
        ...
