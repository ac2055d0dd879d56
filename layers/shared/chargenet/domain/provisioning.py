"""Factory provisioning by claim: which serial numbers may become chargers, and only once.

The operator allow-lists serial numbers; a device holding the batch's claim certificate asks
for a certificate of its own and registers it under its serial. A serial is claimed by the
first device key that registers it. The same key coming back (it lost the reply and retries,
even with a fresh certificate for the same key) gets the same answer; any other key is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

# The template's parameter names (ProvisioningTemplate's body in template.yaml).
SERIAL_PARAMETER = "SerialNumber"
SITE_PARAMETER = "SiteId"
NO_SITE = "none"  # thing attributes cannot be empty
# The serial becomes the thing name, client id, MQTT topic level and registry key, so it must be a
# charger id. Same pattern as chargenet.services.ingest (a unit test holds them equal): importing
# that module costs the hook ~0.9 s of its 5 s.
CHARGER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ClaimVerdict(StrEnum):
    GRANTED = "granted"
    REPEATED = "repeated"  # the device that claimed the serial, asking again
    MALFORMED_SERIAL = "malformed_serial"
    BAD_CERTIFICATE = "bad_certificate"
    UNKNOWN_SERIAL = "unknown_serial"
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


@dataclass(frozen=True)
class Claim:
    serial_number: str
    device_key: str
    certificate_id: str
    certificate_not_after: datetime
    site_id: str
    at: datetime


def decide(entry: AllowedSerial | None, device_key: str) -> ClaimVerdict:
    if entry is None:
        return ClaimVerdict.UNKNOWN_SERIAL
    if entry.claimed_key is None:
        return ClaimVerdict.GRANTED
    if entry.claimed_key == device_key:
        return ClaimVerdict.REPEATED
    return ClaimVerdict.CLAIMED_BY_ANOTHER


class AllowList(Protocol):
    def get(self, serial_number: str) -> AllowedSerial | None: ...

    def claim(self, claim: Claim) -> bool:
        """Mark the serial claimed by the key and register the charger, in one conditional write.

        False when the serial was removed or claimed by another key meanwhile, or the charger id
        is already in the registry without this claim; a repeat by the same key succeeds.
        """
        ...

    def allow(self, serial_number: str, site_id: str, at: datetime) -> bool:
        """False when the serial is on the list already (the entry is left as it is)."""
        ...

    def list(self) -> list[AllowedSerial]: ...
