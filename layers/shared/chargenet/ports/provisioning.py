"""Factory provisioning by claim: the allow-list of serial numbers, the batches' claim certificates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chargenet.domain.provisioning import AllowedSerial, Claim


class AllowList(Protocol):
    def get(self, serial_number: str) -> AllowedSerial | None: ...

    def claim(self, claim: Claim) -> bool:
        """Mark the serial claimed by the key and register the charger, in one conditional write.

        False when the serial was removed or claimed by another key meanwhile, or the charger id
        is already in the registry without this claim; a repeat by the same key succeeds.
        """
        ...

    def allow(self, serial_number: str, site_id: str, at: datetime, claim_certificate_id: str) -> bool:
        """Allow the serial to claim once, with the batch's claim certificate `claim_certificate_id`.

        False when the serial is on the list already (the entry is left as it is).
        """
        ...

    def list(self) -> list[AllowedSerial]: ...


class UnknownCertificate(LookupError):
    """No certificate with that id in the registry."""


class NotAClaimCertificate(ValueError):
    """The certificate exists but does not carry the claim policy (a charger's, or another's)."""


@dataclass(frozen=True)
class IssuedClaimCertificate:
    certificate_id: str
    certificate_pem: str


class ClaimCertificates(Protocol):
    """A batch's claim certificate is one that carries the claim policy (IoT Core's registry)."""

    def issue(self, csr_pem: str) -> IssuedClaimCertificate:
        """Sign the CSR, active, with the claim policy attached; if the policy cannot be attached the
        certificate is left INACTIVE (and the error raised)."""
        ...

    def revoke(self, certificate_id: str) -> None:
        """REVOKED, the claim policy detached; a repeat for a revoked claim certificate changes nothing.

        UnknownCertificate, or NotAClaimCertificate for a certificate without the claim policy.
        """
        ...
