"""Factory provisioning by claim: the allow-list of serial numbers."""

from __future__ import annotations

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
