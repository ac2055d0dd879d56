"""UpdateFirmware on a simulated charger: download, verify (chargenet_shim.firmware), install A/B and reboot.

Mixed into SimulatedCharger first, before the RemoteControl mixins whose answer-then-follow-up
helpers, reboot and background tasks it uses (it is a RemoteControl itself, for their types):

    class SimulatedCharger(FirmwareUpdates, FaultInjection, ChargePoint): ...

The charger trusts only the operator key in `firmware_key` (none: every image is refused).
At `retrieveDate` it downloads the package, then waits for running sessions to end before
installing, so an update never cuts a driver's charge. The new firmware boots and reports
its version in the BootNotification; one in `unbootable_firmware` fails to come up, and the
charger rolls back to the firmware it ran before.

OCPP 1.6's FirmwareStatusNotification has no InvalidSignature: an image that fails its
verification is reported as InstallationFailed plus a SecurityEventNotification
InvalidFirmwareSignature (the security whitepaper's event, which the backend alerts on), the
same words the gateway uses for a real charger (chargenet_shim.firmware.core_notifications).
UpdateFirmware cannot ask for a downgrade: an older image is installed only when the operator
signed its manifest with `force` (chargenet_firmware_format), so nobody on the way can add it. A package
signed for another vendor or model than the charger's BootNotification names, or whose signed
expiry has passed on the charger's clock, is refused the same way (InstallationFailed).

Cloud rollouts come as IoT Jobs (chargenet_shim.jobs) rather than UpdateFirmware: `run_firmware_job` runs
the same routine, one update at a time with UpdateFirmware's, and tells the job every status too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Coroutine
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, FirmwareStatus, ResetType

from chargenet_firmware_format import OperatorKey
from chargenet_shim.firmware import DEFAULT_RETRY_INTERVAL_S, Report, core_notifications, retrieve_moment
from chargenet_shim.jobs import JobsClient, JobsLink
from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.redaction import redacted_location
from chargenet_shim.sim.firmware_install import FirmwareInstaller, FirmwareSlots
from chargenet_shim.sim.remote import RemoteControl

LOG = logging.getLogger(__name__)


class FirmwareUpdates(RemoteControl):
    """Needs SimulatedCharger's run_boot (through RemoteControl's reboot), and this configuration:"""

    # The operator's firmware signing key pinned in this charger.
    firmware_key: OperatorKey | None = None
    # Versions that crash on boot (tests): the charger rolls back from them.
    unbootable_firmware: frozenset[str] = frozenset()
    _firmware_slots: FirmwareSlots | None = None
    _firmware_update: asyncio.Task[Any] | None = None
    # Whether the charger takes firmware rollouts as IoT Jobs on its MQTT link (chargenet_shim.jobs).
    run_jobs: bool = True
    _jobs: asyncio.Task[Any] | None = None

    @on(Action.update_firmware)
    def on_update_firmware(
        self,
        location: str,
        retrieve_date: str,
        call_unique_id: str,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> call_result.UpdateFirmware:
        retrieve_at = retrieve_moment(retrieve_date)
        if self._firmware_update is not None and not self._firmware_update.done():
            # 1.6 gives no way to refuse: the update under way goes on, this one is dropped.
            LOG.warning("%s: UpdateFirmware ignored, an update is under way", self.id)
            self.journal.record("firmware update ignored: one is under way")
            return call_result.UpdateFirmware()
        attempts = 1 if retries is None else max(retries, 1)
        interval = DEFAULT_RETRY_INTERVAL_S if retry_interval is None else retry_interval
        self._after_reply(
            call_unique_id,
            lambda: self._start_update(self._update_firmware(location, retrieve_at, attempts, interval)),
        )
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, call_unique_id: str, **_: Any) -> None:
        self._follow_up(call_unique_id)

    def _start_update(self, update: Coroutine[Any, Any, None]) -> None:
        self._firmware_update = self._spawn(update, "firmware update")

    async def _update_firmware(
        self, location: str, retrieve_at: dt.datetime, attempts: int, interval: int
    ) -> None:
        await self.clock.sleep_until(retrieve_at)
        self.journal.record(f"firmware update from {redacted_location(location)}")
        installer = self._installer(self._report_firmware)
        await installer.update(location, attempts=attempts, retry_interval_s=interval)

    def start_firmware_jobs(self, link: JobsLink) -> None:
        """Take IoT Jobs firmware rollouts on `link` (once per charger, not per boot)."""
        if self.run_jobs and self._jobs is None:
            self._jobs = self._spawn(JobsClient(link, self.id, self).run(), "IoT jobs")

    @property
    def running_firmware(self) -> str:
        return self._slots().running_version

    async def run_firmware_job(self, location: str, on_status: Report) -> FirmwareStatus:
        """An IoT job's update: UpdateFirmware's routine, now, each status also to `on_status`; the last one."""
        while self._firmware_update is not None and not self._firmware_update.done():
            await asyncio.wait({self._firmware_update})

        async def report(status: FirmwareStatus, detail: str) -> None:
            try:
                await self._report_firmware(status, detail)
            finally:
                await on_status(status, detail)

        self.journal.record(f"firmware job from {redacted_location(location)}")
        installer = self._installer(report)
        update = self._spawn(installer.update(location), "firmware job")
        self._firmware_update = update
        status: FirmwareStatus = await update
        return status

    def _installer(self, report: Report) -> FirmwareInstaller:
        # A package is checked against what this charger tells the backend it is, on its own clock.
        identity = (self.boot_request.charge_point_vendor, self.boot_request.charge_point_model)
        return FirmwareInstaller(
            self._slots(),
            self.firmware_key,
            report,
            self._boot_firmware,
            identity=identity,
            now=self.clock.now,
        )

    def _slots(self) -> FirmwareSlots:
        if self._firmware_slots is None:
            # Factory firmware: what the charger has told the backend it runs.
            self._firmware_slots = FirmwareSlots(self.boot_request.firmware_version or "unknown")
        return self._firmware_slots

    async def _report_firmware(self, status: FirmwareStatus, detail: str) -> None:
        self.journal.record(f"firmware {status}" + (f": {detail}" if detail else ""))
        for notification in core_notifications(status, detail, ocpp_timestamp(self.clock.now())):
            await self._notify(notification)

    async def _boot_firmware(self, version: str) -> bool:
        # Installing went to a slot the charger does not run: only the reboot cuts the power.
        await self._sessions_ended()
        if version in self.unbootable_firmware:
            self.journal.record(f"firmware {version} failed to boot")
            return False
        self.boot_request = dataclasses.replace(self.boot_request, firmware_version=version)
        self._start_reboot(ResetType.hard)
        assert self._reboot is not None
        await self._reboot
        return True
