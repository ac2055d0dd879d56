"""Factory provisioning by claim: which serial numbers may become chargers, and only once.

The operator allow-lists serial numbers under the claim certificate of the batch that carries
them; a device holding that claim certificate asks for a certificate of its own and registers it
under its serial. A request made with another batch's claim certificate is refused, so a claim
certificate stolen from one batch cannot claim another batch's serials. A serial is claimed by the
first device key that registers it. The same key coming back (it lost the reply and retries,
even with a fresh certificate for the same key) gets the same answer; any other key is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# The template's parameter names (ProvisioningTemplate's body in template.yaml).
SERIAL_PARAMETER = "SerialNumber"
SITE_PARAMETER = "SiteId"
NO_SITE = "none"  # thing attributes cannot be empty
# The subject CN of every batch claim certificate, asked for in its CSR: not a charger id (':'),
# inside the claim policy's client ids (claim:*), and the local broker's one ACL user for claims
# (chargenet_local.broker.CLAIM_USER), so the same CSR gets the same rights there as in IoT Core.
CLAIM_COMMON_NAME = "claim:factory"


class ClaimVerdict(StrEnum):
    GRANTED = "granted"
    REPEATED = "repeated"  # the device that claimed the serial, asking again
    MALFORMED_SERIAL = "malformed_serial"
    BAD_CERTIFICATE = "bad_certificate"
    UNKNOWN_SERIAL = "unknown_serial"
    WRONG_BATCH = "wrong_batch"  # asked with a claim certificate the serial was not allowed under
    CLAIMED_BY_ANOTHER = "claimed_by_another"
    CONFLICT = "conflict"  # lost a race, or the charger id is already in the registry

    @property
    def allowed(self) -> bool:
        return self in (ClaimVerdict.GRANTED, ClaimVerdict.REPEATED)


@dataclass(frozen=True)
class AllowedSerial:
    serial_number: str
    site_id: str
    allowed_at: datetime
    claimed_at: datetime | None = None
    claimed_key: str | None = None  # SHA-256 of the claiming device's public key
    certificate_id: str | None = None
    # The IoT certificate id of the batch's claim certificate: the only one that may claim the serial.
    # None on entries made before batches were recorded: those cannot be claimed.
    claim_certificate_id: str | None = None


@dataclass(frozen=True)
class Claim:
    serial_number: str
    device_key: str
    certificate_id: str
    certificate_not_after: datetime
    site_id: str
    at: datetime


def decide(entry: AllowedSerial | None, device_key: str, claim_certificate_id: str) -> ClaimVerdict:
    if entry is None:
        return ClaimVerdict.UNKNOWN_SERIAL
    if not entry.claim_certificate_id or entry.claim_certificate_id != claim_certificate_id:
        return ClaimVerdict.WRONG_BATCH
    if entry.claimed_key is None:
        return ClaimVerdict.GRANTED
    if entry.claimed_key == device_key:
        return ClaimVerdict.REPEATED
    return ClaimVerdict.CLAIMED_BY_ANOTHER
