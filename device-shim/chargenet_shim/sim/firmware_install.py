"""A simulated charger's firmware install: two slots, the update goes into the one not running.

The package is downloaded and verified as the gateway does it for a real charger
(chargenet_shim.firmware.fetch_verified); a real charger does its own install, so only the
simulator needs this. FirmwareInstaller writes the image into the inactive slot of
FirmwareSlots, reboots into it and keeps it only if it boots; otherwise it rolls back to the
slot it came from. Every step is reported with an OCPP FirmwareStatus through a callback.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from ocpp.v16.enums import FirmwareStatus

from chargenet_firmware_format import OperatorKey
from chargenet_shim.firmware import Installed, Report, fetch_verified, report_end

LOG = logging.getLogger(__name__)

# Restart the charger into firmware `version`; whether that firmware came up.
Boot = Callable[[str], Awaitable[bool]]
Slot = Literal["A", "B"]


class FirmwareSlots:
    """Two firmware slots: the charger boots the active one; an update goes into the other.

    A freshly written slot boots on trial: `confirm` keeps it, `roll_back` returns to the
    slot that last booted for good, which an update never touches.
    """

    def __init__(self, running_version: str) -> None:
        self._versions: dict[Slot, str | None] = {"A": running_version, "B": None}
        self.active: Slot = "A"
        self._confirmed: Slot = "A"

    @property
    def running_version(self) -> str:
        version = self._versions[self.active]
        assert version is not None, "the active slot always holds firmware"
        return version

    @property
    def inactive(self) -> Slot:
        return "B" if self.active == "A" else "A"

    def install(self, version: str) -> None:
        self._versions[self.inactive] = version

    def boot_inactive(self) -> None:
        self.active = self.inactive

    def confirm(self) -> None:
        self._confirmed = self.active

    def roll_back(self) -> None:
        self.active = self._confirmed


class FirmwareInstaller:
    def __init__(
        self,
        slots: FirmwareSlots,
        key: OperatorKey | None,
        report: Report,
        boot: Boot,
        *,
        identity: tuple[str, str],
        now: Callable[[], dt.datetime],
    ) -> None:
        """`identity` is the charger's (vendor, model) as its BootNotification says; `now` its clock."""
        self.slots = slots
        self._key = key
        self._report = report
        self._boot = boot
        self._identity = identity
        self._now = now

    async def update(
        self, location: str, *, attempts: int = 1, retry_interval_s: float = 0.0
    ) -> FirmwareStatus:
        """Download, verify, install and boot the package at `location`; the last status reported."""
        vendor, model = self._identity
        fetched = await fetch_verified(
            location,
            self._key,
            Installed(vendor, model, self.slots.running_version),
            self._report,
            now=self._now,
            attempts=attempts,
            retry_interval_s=retry_interval_s,
        )
        if isinstance(fetched, FirmwareStatus):
            return fetched
        await self._report(FirmwareStatus.installing, "")
        return await self._install(fetched.manifest.version)

    async def _install(self, version: str) -> FirmwareStatus:
        previous = self.slots.running_version
        self.slots.install(version)
        self.slots.boot_inactive()
        if await self._boot(version):
            self.slots.confirm()
            return await report_end(self._report, FirmwareStatus.installed, "")
        self.slots.roll_back()
        if not await self._boot(previous):
            LOG.error("firmware %s did not boot after the rollback either", previous)
        return await report_end(
            self._report,
            FirmwareStatus.installation_failed,
            f"{version} did not boot: rolled back to {previous}",
        )
