"""What a simulated charging session is: the plan, the physics, the timeline and the ground truth.

Everything here is pure (no I/O, no clock), so tests can check the physics directly;
charging.py turns a plan into the OCPP conversation.

Physics: the EV draws the connector's maximum power up to 80 % SoC, then a linear taper
down to 10 % of it at 100 % SoC. SoC rises at power / battery capacity (no charging losses:
the meter measures what the battery gets), so the SoC curve has a closed form: linear
below 80 %, exponential approach above. Energy is the integral of power, which equals
battery capacity times the SoC gained; it does not depend on how often anyone samples it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from enum import Enum

from ocpp.v16.enums import ReadingContext, Reason
from pydantic import BaseModel, ConfigDict, Field, model_validator

TAPER_FROM_SOC = 80.0
TAPER_TO_FRACTION = 0.10
# Fraction of maximum power lost per SoC percent above TAPER_FROM_SOC.
_TAPER_SLOPE = (1.0 - TAPER_TO_FRACTION) / (100.0 - TAPER_FROM_SOC)
# Above this a connector is DC (current at the pack voltage), below it AC three-phase.
_AC_MAX_KW = 22.0
_AC_PHASE_VOLTS = 230.0
_DC_PACK_VOLTS = 400.0
_AMBIENT_C = 20.0
_FULL_LOAD_HEATING_C = 15.0


class SessionPlan(BaseModel):
    """One driver's visit: plug in, charge to target SoC, stay `idle_minutes_after`, unplug."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connector_id: int = Field(ge=1)
    id_tag: str = Field(min_length=1, max_length=20)
    battery_kwh: float = Field(gt=0)
    start_soc: float = Field(ge=0, lt=100)
    target_soc: float = Field(gt=0, le=100)
    max_power_kw: float = Field(gt=0, description="the lower of the connector's and the EV's limit")
    meter_interval_s: int | None = Field(
        default=None, gt=0, description="MeterValueSampleInterval; unset: the charger's configured one"
    )
    idle_minutes_after: float = Field(default=0.0, ge=0, description="plugged in after the EV is full")
    arrives_after_s: float = Field(
        default=0.0,
        ge=0,
        description="simulated seconds the connector stays free before this driver plugs in",
    )
    stop_reason: Reason | None = Field(
        default=None, description="StopTransaction reason; EVDisconnected if unset"
    )

    @model_validator(mode="after")
    def _charges_something(self) -> SessionPlan:
        if self.target_soc <= self.start_soc:
            raise ValueError("target_soc must be above start_soc")
        return self


def charging_power_kw(soc: float, max_power_kw: float) -> float:
    """The power the EV accepts at `soc` percent."""
    if soc <= TAPER_FROM_SOC:
        return max_power_kw
    return max_power_kw * (1.0 - _TAPER_SLOPE * (min(soc, 100.0) - TAPER_FROM_SOC))


def current_a(power_kw: float, max_power_kw: float) -> float:
    if max_power_kw > _AC_MAX_KW:
        return power_kw * 1000 / _DC_PACK_VOLTS
    return power_kw * 1000 / (3 * _AC_PHASE_VOLTS)


def temperature_c(power_kw: float, max_power_kw: float) -> float:
    """Connector temperature: ambient plus heating in proportion to the load."""
    return _AMBIENT_C + _FULL_LOAD_HEATING_C * power_kw / max_power_kw


@dataclass(frozen=True)
class ChargeCurve:
    """SoC, power and energy as functions of seconds since the transaction started."""

    battery_kwh: float
    start_soc: float
    target_soc: float
    max_power_kw: float

    @classmethod
    def for_plan(cls, plan: SessionPlan) -> ChargeCurve:
        return cls(plan.battery_kwh, plan.start_soc, plan.target_soc, plan.max_power_kw)

    @property
    def full_after_s(self) -> float:
        """Seconds until the target SoC is reached and the EV stops drawing power."""
        return self._seconds_to(self.target_soc)

    def soc_at(self, t: float) -> float:
        if t >= self.full_after_s:
            return self.target_soc
        taper_after = self._seconds_to(min(TAPER_FROM_SOC, self.target_soc))
        if t <= taper_after:
            return self.start_soc + self._rate * t
        entered = max(self.start_soc, TAPER_FROM_SOC)
        remaining = _taper_headroom(entered) * math.exp(-_TAPER_SLOPE * self._rate * (t - taper_after))
        return min(self.target_soc, TAPER_FROM_SOC + (1.0 - remaining) / _TAPER_SLOPE)

    def power_kw_at(self, t: float) -> float:
        if t >= self.full_after_s:
            return 0.0
        return charging_power_kw(self.soc_at(t), self.max_power_kw)

    def energy_wh_at(self, t: float) -> float:
        return self.battery_kwh * 1000 * (self.soc_at(t) - self.start_soc) / 100

    @property
    def peak_power_kw(self) -> float:
        # Power only falls as SoC rises.
        return charging_power_kw(self.start_soc, self.max_power_kw)

    @property
    def _rate(self) -> float:
        """SoC percent per second at full power."""
        return 100 * self.max_power_kw / (3600 * self.battery_kwh)

    def _seconds_to(self, soc: float) -> float:
        flat_until = min(soc, TAPER_FROM_SOC)
        flat = max(flat_until - self.start_soc, 0.0) / self._rate
        if soc <= TAPER_FROM_SOC:
            return flat
        entered = max(self.start_soc, TAPER_FROM_SOC)
        return flat + math.log(_taper_headroom(entered) / _taper_headroom(soc)) / (_TAPER_SLOPE * self._rate)


def _taper_headroom(soc: float) -> float:
    """charging_power_kw / max_power_kw in the taper region."""
    return 1.0 - _TAPER_SLOPE * (soc - TAPER_FROM_SOC)


class Step(Enum):
    """What happens at a point of the session timeline, in tie-break order."""

    BEGIN = 0  # meter values, Transaction.Begin
    FULL = 1  # the EV stops drawing: SuspendedEV
    PERIODIC = 2  # meter values, Sample.Periodic
    END = 3  # meter values, Transaction.End, then StopTransaction


def timeline(plan: SessionPlan, curve: ChargeCurve) -> list[tuple[float, Step]]:
    """(seconds since start, step), sorted; periodic samples continue while the EV sits idle."""
    interval = plan.meter_interval_s
    if interval is None:
        raise ValueError("the plan has no meter interval: the charger fills in its configured one")
    stop = stop_after_s(plan, curve)
    # Strictly before the stop: a sample due at the stop is the Transaction.End one.
    periodic = [(k * interval, Step.PERIODIC) for k in range(1, math.ceil(stop / interval))]
    steps = [(0.0, Step.BEGIN), (full_reported_at_s(curve), Step.FULL), *periodic, (stop, Step.END)]
    return sorted(steps, key=lambda step: (step[0], step[1].value))


def full_reported_at_s(curve: ChargeCurve) -> float:
    """The charger reports the EV full on the next whole second: every scheduled offset is then a
    whole number of seconds, so timestamps differ by exact durations (no millisecond jitter that a
    step_size would round up to a whole extra minute)."""
    return float(math.ceil(curve.full_after_s))


def stop_after_s(plan: SessionPlan, curve: ChargeCurve) -> float:
    return full_reported_at_s(curve) + round(plan.idle_minutes_after * 60)


@dataclass(frozen=True)
class MeterReading:
    """One MeterValues sample as sent; register_wh is the connector's lifetime register."""

    timestamp: dt.datetime
    context: ReadingContext
    register_wh: int
    power_w: float
    current_a: float
    soc_percent: float
    temperature_c: float


def reading_at(
    curve: ChargeCurve, register_base_wh: float, t: float, timestamp: dt.datetime, context: ReadingContext
) -> MeterReading:
    power = curve.power_kw_at(t)
    return MeterReading(
        timestamp=timestamp,
        context=context,
        # A meter shows whole Wh and never rounds up to energy not yet delivered.
        register_wh=math.floor(register_base_wh + curve.energy_wh_at(t)),
        power_w=power * 1000,
        current_a=current_a(power, curve.max_power_kw),
        soc_percent=curve.soc_at(t),
        temperature_c=temperature_c(power, curve.max_power_kw),
    )


@dataclass(frozen=True)
class SessionTruth:
    """What really happened, for tests to hold the backend's view against; the same for both
    OCPP versions, so a mixed fleet's sessions are scored alike."""

    charger_id: str
    connector_id: int
    id_tag: str
    # As the charger knows it: the backend's number from the StartTransaction reply (1.6), the
    # charger's own transactionId (2.0.1: the backend numbers that session itself and never says).
    transaction_id: int | str
    meter_start_wh: int
    meter_stop_wh: int
    started_at: dt.datetime
    stopped_at: dt.datetime
    charging_s: float
    idle_s: float
    peak_power_kw: float
    # In OCPP 1.6's words for both versions (a 2.0.1 charger sends its own stoppedReason).
    stop_reason: Reason
    readings: tuple[MeterReading, ...]
    ocpp_version: str = "ocpp1.6"

    @property
    def energy_wh(self) -> int:
        return self.meter_stop_wh - self.meter_start_wh


def sample_plan(rng: random.Random, connector_id: int, rated_power_kw: float | None = None) -> SessionPlan:
    """A plausible visit: AC or DC, a common battery size, at most ~1.5 h at full power; on a
    charger rated `rated_power_kw`, at most that power (and still ~1.5 h at most)."""
    max_power_kw = min(rng.choice((11.0, 22.0, 50.0, 150.0)), rated_power_kw or math.inf)
    battery_kwh = rng.choice((40.0, 60.0, 77.0, 100.0))
    start_soc = round(rng.uniform(10, 50), 1)
    reachable = start_soc + 100 * max_power_kw * 1.5 / battery_kwh
    return SessionPlan(
        connector_id=connector_id,
        id_tag=f"TAG{rng.randrange(16**8):08X}",
        battery_kwh=battery_kwh,
        start_soc=start_soc,
        target_soc=round(min(rng.uniform(70, 100), reachable), 1),
        max_power_kw=max_power_kw,
        idle_minutes_after=rng.choice((0.0, 5.0, 15.0, 30.0)),
    )
