"""The prices a driver sees before starting (AFIR), from the same element choice as billing.

`price_display` asks the engine which component of each dimension is in force at a session start:
no energy delivered, no time elapsed, and power and current not known. As in billing, an unknown power
or current satisfies no power/current restriction, so a power-tiered tariff shows the price of its first
element without such a restriction; `notes` says when prices can change during the session.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from chargenet.domain.money import minor_unit_exponent, round_unit_price
from chargenet.domain.tariffs.engine import (
    SessionProfile,
    check_in_force,
    components_at_start,
    price_session,
    pricing_elements,
)
from chargenet.domain.tariffs.model import Price, PriceComponent, Tariff, TariffDimensionType

Dim = TariffDimensionType


class PriceDisplay(BaseModel):
    """Unit prices in force at `at`; None means that dimension is free. Unit prices keep 2 extra digits."""

    model_config = ConfigDict(frozen=True)

    tariff_id: str
    currency: str
    at: datetime
    per_kwh: Price | None
    per_hour: Price | None  # charging time
    per_minute: Price | None
    idle_per_hour: Price | None  # parking time, not charging
    idle_per_minute: Price | None
    flat: Price | None  # once per session
    vat: dict[TariffDimensionType, Decimal | None]  # percent per priced dimension; None: not given
    min_price: Price | None
    max_price: Price | None
    notes: list[str]


def price_display(tariff: Tariff, at: datetime, time_zone: str | None = None) -> PriceDisplay:
    """Prices in force at `at` on the wall clock of `time_zone` (the charger's site; None: `at`'s offset)."""
    check_in_force(tariff, at)
    components = components_at_start(tariff, at, time_zone=time_zone)
    currency = tariff.currency
    energy, charging, parking, flat = (
        components.get(d) for d in (Dim.ENERGY, Dim.TIME, Dim.PARKING_TIME, Dim.FLAT)
    )
    return PriceDisplay(
        tariff_id=tariff.id,
        currency=currency,
        at=at,
        per_kwh=_unit_price(energy, currency),
        per_hour=_unit_price(charging, currency),
        per_minute=_unit_price(charging, currency, per=60),
        idle_per_hour=_unit_price(parking, currency),
        idle_per_minute=_unit_price(parking, currency, per=60),
        flat=_flat(tariff, at, time_zone) if flat else None,
        vat={dim: component.vat for dim, component in components.items()},
        min_price=tariff.min_price,
        max_price=tariff.max_price,
        notes=_notes(tariff, components),
    )


def describe(display: PriceDisplay) -> list[str]:
    """Lines for a driver, e.g. "0.30 EUR/kWh incl. 25% VAT"."""
    return (_price_lines(display) or ["free of charge"]) + _limit_lines(display) + display.notes


def _price_lines(display: PriceDisplay) -> list[str]:
    cur = display.currency
    lines = []
    if display.per_kwh:
        lines.append(f"{_shown(display.per_kwh, cur)} {cur}/kWh{_vat_text(display.vat[Dim.ENERGY])}")
    if display.per_hour and display.per_minute:
        lines.append(
            f"charging time {_shown(display.per_minute, cur)} {cur}/min ({_shown(display.per_hour, cur)} {cur}/hour)"
            f"{_vat_text(display.vat[Dim.TIME])}"
        )
    if display.idle_per_hour and display.idle_per_minute:
        lines.append(
            f"idle fee {_shown(display.idle_per_minute, cur)} {cur}/min ({_shown(display.idle_per_hour, cur)} "
            f"{cur}/hour) while plugged in and not charging{_vat_text(display.vat[Dim.PARKING_TIME])}"
        )
    if display.flat:
        lines.append(f"{_shown(display.flat, cur)} {cur} per session{_vat_text(display.vat[Dim.FLAT])}")
    return lines


def _limit_lines(display: PriceDisplay) -> list[str]:
    limits = (("minimum", display.min_price), ("maximum", display.max_price))
    return [
        f"{word} {_shown(limit, display.currency)} {display.currency} per session{_bound_vat(limit)}"
        for word, limit in limits
        if limit is not None
    ]


def _unit_price(component: PriceComponent | None, currency: str, per: int = 1) -> Price | None:
    if component is None:
        return None
    excl = component.price / per
    incl = excl * (1 + component.vat / 100) if component.vat is not None else excl
    return Price(excl_vat=round_unit_price(excl, currency), incl_vat=round_unit_price(incl, currency))


def _flat(tariff: Tariff, at: datetime, time_zone: str | None) -> Price:
    # billing itself: a session that ends as it starts costs exactly the flat fee
    return price_session(tariff, SessionProfile(start=at, time_zone=time_zone)).total_fixed_cost


def _notes(tariff: Tariff, components: dict[TariffDimensionType, PriceComponent]) -> list[str]:
    restrictions = [e.restrictions for e in pricing_elements(tariff) if e.restrictions is not None]
    has = {name for r in restrictions for name, value in r if value not in (None, [])}
    notes = []
    if has & {"min_power", "max_power", "min_current", "max_current"}:
        notes.append("prices depend on charging power or current: shown are those without such a condition")
    if has & {"start_time", "end_time", "start_date", "end_date", "day_of_week"}:
        notes.append("prices change with the time of day or the date")
    if has & {"min_duration", "max_duration"}:
        notes.append("prices change with the session duration")
    if has & {"min_kwh", "max_kwh"}:
        notes.append("prices change with the energy delivered")
    if any(c.vat is None for c in components.values()):
        notes.append("VAT not specified by the tariff for some prices")
    return notes


def _vat_text(vat: Decimal | None) -> str:
    return f" incl. {vat.normalize():f}% VAT" if vat is not None else " (VAT not specified)"


def _bound_vat(bound: Price) -> str:
    return " incl. VAT" if bound.incl_vat is not None else " excl. VAT"


def _shown(price: Price, currency: str) -> str:
    """incl. VAT when known, with at least the currency's minor digits: 0.30, 0.275, 0.0333."""
    amount = price.incl_vat if price.incl_vat is not None else price.excl_vat
    places = minor_unit_exponent(currency)
    trimmed = amount.normalize()
    exponent = trimmed.as_tuple().exponent  # an int: prices are finite (validated)
    if isinstance(exponent, int) and exponent > -places:
        trimmed = amount.quantize(Decimal(1).scaleb(-places))
    return f"{trimmed:f}"
