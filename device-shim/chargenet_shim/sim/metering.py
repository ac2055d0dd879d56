"""What a connector's meter shows, against the energy that really flowed: the meter faults.

The simulator keeps each connector's physical register (SimulatedCharger.meter_wh plus the
running session's energy); the connector's Meter turns it into the reading the charger sends.
A healthy meter shows it as is. The faults tests and scenarios inject (injections.py):

    stuck   the register stops counting and shows the same value while power flows; once it
            counts again, what flowed meanwhile is missing from it for good.
    reset   the register jumps back to 0 and counts on from there.
    power   the power sample reads a fixed value whenever the EV draws power (a meter reading
            high, or a charger delivering above its rating).

Pure state, no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from chargenet_shim.sim.session import MeterReading


@dataclass
class Meter:
    # Energy that flowed without the register counting it: resets and stuck periods.
    uncounted_wh: float = 0.0
    # The physical register when the meter stopped counting; None while it counts.
    stuck_at_wh: float | None = None
    # The power sample while the EV draws power; None: the real power.
    power_w: float | None = None

    def register_wh(self, physical_wh: float) -> float:
        """The register the meter shows when `physical_wh` has flowed through it in its life."""
        counted_to = physical_wh if self.stuck_at_wh is None else self.stuck_at_wh
        return counted_to - self.uncounted_wh

    def stick(self, physical_wh: float) -> None:
        if self.stuck_at_wh is None:
            self.stuck_at_wh = physical_wh

    def unstick(self, physical_wh: float) -> None:
        if self.stuck_at_wh is not None:
            self.uncounted_wh += physical_wh - self.stuck_at_wh
            self.stuck_at_wh = None

    def reset(self, physical_wh: float) -> None:
        """The register reads 0 from here on (and counts on unless stuck)."""
        self.uncounted_wh += self.register_wh(physical_wh)

    def shown(self, reading: MeterReading, physical_wh: float) -> MeterReading:
        """The sample as this meter reports it; `reading` is the true one, taken at `physical_wh`."""
        drawing = reading.power_w > 0
        power_w = self.power_w if self.power_w is not None and drawing else reading.power_w
        # Whole Wh, never rounded up to energy not yet counted (as session.reading_at).
        return dataclasses.replace(
            reading, register_wh=math.floor(self.register_wh(physical_wh)), power_w=power_w
        )
