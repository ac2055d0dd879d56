"""Faults injected into a simulated charger, on demand (tests) or by script (scenario_run.py).

    error code           ChargerState.inject_fault / clear_fault: StatusNotification Faulted with
                         the OCPP error code (a session on the connector stops), NoError once clear.
    connection loss      drop_connection / restore_connection: the MQTT link goes down (the broker
                         sees the charger disconnect) and comes back. Transaction messages made
                         meanwhile wait in the Outbox and follow in order; statuses and heartbeats
                         are lost. A blip and a long outage differ only in how long it lasts.
    stuck meter          stick_meter / unstick_meter (metering.py)
    meter reset          reset_meter
    power above rating   misreport_power / report_true_power
    reboot               reboot: as after a Reset, with stop reason Reboot; a reboot loop is
                         several in quick succession.
    commands unanswered  ChargerState.go_silent / resume

Each fault is started and ended by the caller, which decides how long it lasts.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from ocpp.v16.enums import Reason

from chargenet_shim.link import Link
from chargenet_shim.sim.charger_state import ChargerState
from chargenet_shim.sim.metering import Meter


class FaultInjection(ChargerState):
    """Needs the charger's link, meters, and its version's restart and physical register (the
    1.6 charger's remote.RemoteControl, the 2.0.1 charger's remote201.Remote201)."""

    link: Link
    _restart: Callable[[str, Reason], Coroutine[Any, Any, None]]

    async def drop_connection(self) -> None:
        self.journal.record("network connection lost")
        await self.link.disconnect()

    async def restore_connection(self, timeout: float = 10.0) -> None:
        await self.link.reconnect(timeout)
        self.journal.record("network connection back")

    def stick_meter(self, connector_id: int) -> None:
        self._meter(connector_id).stick(self._physical_wh(connector_id))
        self.journal.record(f"connector {connector_id}: meter stopped counting")

    def unstick_meter(self, connector_id: int) -> None:
        self._meter(connector_id).unstick(self._physical_wh(connector_id))
        self.journal.record(f"connector {connector_id}: meter counting again")

    def reset_meter(self, connector_id: int) -> None:
        self._meter(connector_id).reset(self._physical_wh(connector_id))
        self.journal.record(f"connector {connector_id}: meter register reset to 0")

    def misreport_power(self, connector_id: int, power_w: float) -> None:
        """The power sample reads `power_w` whenever the EV draws power."""
        if power_w <= 0:
            raise ValueError("a misreported power is still a positive power")
        self._meter(connector_id).power_w = power_w
        self.journal.record(f"connector {connector_id}: meter reads {power_w:.0f} W while charging")

    def report_true_power(self, connector_id: int) -> None:
        self._meter(connector_id).power_w = None
        self.journal.record(f"connector {connector_id}: meter reads the real power again")

    async def reboot(self) -> None:
        """Restart unprompted (a crash, a watchdog); returns once the statuses after the boot are out."""
        if self._rebooting:
            raise RuntimeError(f"{self.id} is already restarting")
        self._reboot = self._spawn(self._restart("unprompted reboot", Reason.reboot), "reboot")
        await self._reboot

    def _meter(self, connector_id: int) -> Meter:
        meter = self.meters.get(connector_id)
        if meter is None:
            raise ValueError(f"{self.id} has no meter on connector {connector_id}")
        return meter
