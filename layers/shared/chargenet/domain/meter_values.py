"""OCPP sampled values (1.6 and 2.0.1) -> one reading per timestamp, in Wh, W, A, %, degrees C.

Chargers differ: energy in Wh or kWh, totals or per-phase values, "Celcius" (the
1.6 spelling) or "Celsius". A batch without an energy register leaves the energy
field empty; it never reads as zero. 2.0.1 sends numbers, not strings, with a unit of
measure whose `multiplier` is a power of ten, and adds where the value was measured.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

ENERGY_REGISTER = "Energy.Active.Import.Register"
MAX_DIGITS = 30  # far beyond any meter; models.MAX_READING is the real bound
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
SOC = "SoC"
TEMPERATURE = "Temperature"

# A 2.0.1 value measured by the car (its own view of the energy it took) is not the charger's meter.
EV_LOCATION = "EV"
# 2.0.1 names a phase against neutral ("L1-N"); for a total it is that phase.
_PHASE_OF = {"L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}

_TO_BASE_UNIT = {"Wh": Decimal(1), "kWh": Decimal(1000), "W": Decimal(1), "kW": Decimal(1000)}


class MeterReading(BaseModel):
    """What a charger measured at one instant (charger clock)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    energy_wh: Decimal | None = None
    power_w: Decimal | None = None
    current_a: Decimal | None = None
    soc_percent: Decimal | None = None
    temperature_c: Decimal | None = None


def parse_meter_values(meter_values: list[dict[str, Any]]) -> list[MeterReading]:
    """MeterValues.meterValue (or StopTransaction.transactionData) -> readings by timestamp."""
    readings = []
    for meter_value in meter_values:
        at = datetime.fromisoformat(meter_value["timestamp"].replace("Z", "+00:00"))
        by_measurand: dict[str, list[tuple[str | None, Decimal]]] = defaultdict(list)
        for sampled in meter_value.get("sampledValue", []):
            value = _number(sampled.get("value"))
            if value is None or sampled.get("format") == "SignedData":
                continue
            measurand = sampled.get("measurand", ENERGY_REGISTER)
            unit = sampled.get("unit", "Wh" if measurand == ENERGY_REGISTER else None)
            by_measurand[measurand].append(
                (sampled.get("phase"), value * _TO_BASE_UNIT.get(unit or "", Decimal(1)))
            )
        readings.append(_reading(at, by_measurand))
    return readings


def _reading(at: datetime, by_measurand: dict[str, list[tuple[str | None, Decimal]]]) -> MeterReading:
    return MeterReading(
        at=at,
        energy_wh=_total(by_measurand.get(ENERGY_REGISTER)),
        power_w=_total(by_measurand.get(POWER)),
        current_a=_highest(by_measurand.get(CURRENT)),
        soc_percent=_first(by_measurand.get(SOC)),
        temperature_c=_first(by_measurand.get(TEMPERATURE)),
    )


class UnitOfMeasure(BaseModel):
    """2.0.1's unit: `multiplier` is the power of ten the value is to be multiplied by."""

    model_config = ConfigDict(frozen=True)

    unit: str = "Wh"
    multiplier: int = 0


class SampledValue201(BaseModel):
    """One 2.0.1 sampled value, already checked against its schema (defaults are the schema's)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    value: Decimal
    context: str = "Sample.Periodic"
    measurand: str = ENERGY_REGISTER
    phase: str | None = None
    location: str = "Outlet"
    unit_of_measure: UnitOfMeasure | None = None

    def in_base_unit(self) -> Decimal | None:
        """The value in Wh, W, A, % or degrees C; None for a value too large to mean anything."""
        value = _number(self.value)
        unit = self.unit_of_measure or UnitOfMeasure()
        if value is None or abs(unit.multiplier) > MAX_DIGITS:
            return None
        return value.scaleb(unit.multiplier) * _TO_BASE_UNIT.get(unit.unit, Decimal(1))


def reading_201(at: datetime, sampled_values: list[SampledValue201]) -> MeterReading:
    """One 2.0.1 meterValue -> a reading: the charger's own measurements (never the car's),
    per-phase values summed as 1.6's are."""
    by_measurand: dict[str, list[tuple[str | None, Decimal]]] = defaultdict(list)
    for sampled in sampled_values:
        value = sampled.in_base_unit()
        if value is None or (sampled.location == EV_LOCATION and sampled.measurand != SOC):
            continue
        phase = _PHASE_OF.get(sampled.phase or "", sampled.phase)
        by_measurand[sampled.measurand].append((phase, value))
    return _reading(at, by_measurand)


def _number(raw: object) -> Decimal | None:
    try:
        number = Decimal(str(raw))
    except InvalidOperation:
        return None
    if number.is_finite() and number.adjusted() > MAX_DIGITS:
        # Converting "1e999999" kW to W would overflow Decimal's exponent: refuse it here.
        raise ValueError("a sampled value is out of range")
    return number if number.is_finite() else None


def _total(values: list[tuple[str | None, Decimal]] | None) -> Decimal | None:
    """The total if the charger sent one, else the sum over the phases L1, L2, L3."""
    if not values:
        return None
    totals = [v for phase, v in values if phase is None]
    if totals:
        return totals[0]
    per_phase = {phase: v for phase, v in values if phase in ("L1", "L2", "L3")}
    if per_phase:
        return sum(per_phase.values(), Decimal(0))
    return values[0][1]


def _highest(values: list[tuple[str | None, Decimal]] | None) -> Decimal | None:
    """Current: the most loaded phase is what power and current restrictions care about."""
    return max(v for _, v in values) if values else None


def _first(values: list[tuple[str | None, Decimal]] | None) -> Decimal | None:
    return values[0][1] if values else None
