"""Pure OCPI 2.2.1 pricing: a tariff and a session profile in, the CDR's cost fields out.

How a session is priced (OCPI 2.2.1 module "Tariffs"; SPEC section 5):

1. The session is cut into pieces wherever a restriction can change: the local wall-clock times the
   tariff names (and midnight, for dates and weekdays), min/max_duration, and the instants where the
   energy delivered crosses a min/max_kwh (energy is linear within a period, so the crossing is
   interpolated). Power and current are given per period, so period ends are cuts already.
2. Each piece is priced per dimension (ENERGY if it delivers energy, TIME if charging, PARKING_TIME if
   parking) by the first element whose restrictions all hold and which has a component of that
   dimension; none means that dimension is free. Nothing changes inside a piece, so its start decides.
   FLAT is charged once, by the element in force at the session start.
3. step_size: once per session and dimension, the dimension's total volume is rounded up to a multiple
   of the step_size of the last element that priced it, the extra billed at that element's price (OCPI's
   "switching to a different Tariff Element" examples). TIME and PARKING_TIME count as one dimension
   here: only the one billed last is rounded, so charging followed by paid parking rounds the parking.
4. Each dimension is one cost line, rounded by `money.round_money` excl. and incl. VAT; the total is the
   sum of the lines, then min_price/max_price clamp it, excl. and incl. VAT separately as OCPI says.

Volumes are exact fractions inside: interpolating a kWh crossing divides, Decimal division rounds, and
the bill must not depend on how the meter happened to split the session. Money is rounded only once.
Power or current that is not known (None) satisfies no power or current restriction.

Wall-clock restrictions (start/end_time, start/end_date, day_of_week) read the clock on the wall of the
charger's site: the session's `time_zone` (an IANA name) with its real offsets over the whole session, so
a session is also cut where a daylight-saving change moves the wall clock. In the missing hour of spring
the wall clock never shows, say, 02:30: a restriction boundary there takes effect at the jump; in the
repeated hour of autumn the wall clock shows 02:30 twice, and each time counts. Without a `time_zone`
the start's own UTC offset is used for the whole session. Durations are always elapsed time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from chargenet.domain.money import ROUNDING, round_money
from chargenet.domain.tariffs.model import (
    DayOfWeek,
    Number,
    Price,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffError,
    TariffRestrictions,
    validate_json,
)
from chargenet.domain.time_zones import TimeZoneName

Dim = TariffDimensionType
DAY_SECONDS = 86_400
HOUR_SECONDS = 3600
WH_PER_KWH = 1000
# Prices are per kWh and per hour; volumes and step_size count Wh and seconds.
STEP_UNITS_PER_PRICE_UNIT = {Dim.ENERGY: WH_PER_KWH, Dim.TIME: HOUR_SECONDS, Dim.PARKING_TIME: HOUR_SECONDS}
STEP_UNIT_NAMES = {Dim.ENERGY: "Wh", Dim.TIME: "s", Dim.PARKING_TIME: "s"}
WEEKDAYS = list(DayOfWeek)  # in date.weekday() order
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
VOLUME_QUANTUM = Decimal("0.000001")  # reported kWh and hours; costs use the exact volumes
UNKNOWN_VAT = "VAT not given by the tariff, incl_vat is excl_vat for this line"


class SessionPeriod(BaseModel):
    """A stretch of the session with constant power, current and parking state; energy linear in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    minutes: Number = Field(gt=0)
    energy_kwh: Number = Decimal(0)
    power_kw: Number | None = None
    current_a: Number | None = None
    parking: bool = False

    @model_validator(mode="after")
    def _parking_delivers_nothing(self) -> SessionPeriod:
        if self.parking and self.energy_kwh > 0:
            raise ValueError("a parking period delivers no energy: energy_kwh must be 0")
        return self


class SessionProfile(BaseModel):
    """A session as consecutive periods from `start`, on the wall clock of `time_zone` (an IANA name).

    Without a time_zone, the start's own UTC offset is the wall clock for the whole session.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime
    time_zone: TimeZoneName | None = None
    periods: list[SessionPeriod] = Field(default_factory=list)


class CdrDimensionType(StrEnum):
    """The OCPI CdrDimensionType values this engine reports."""

    CURRENT = "CURRENT"
    ENERGY = "ENERGY"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"
    TIME = "TIME"


class CdrDimension(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: CdrDimensionType
    volume: Decimal  # kWh, hours, kW or A


class ChargingPeriod(BaseModel):
    """A stretch priced by the same elements, in the same state (OCPI CDR charging_periods)."""

    model_config = ConfigDict(frozen=True)

    start_date_time: datetime
    dimensions: list[CdrDimension]
    tariff_id: str


class PricedSession(BaseModel):
    """The OCPI CDR cost fields of one session; volumes in kWh and hours, total_time includes parking."""

    model_config = ConfigDict(frozen=True)

    currency: str
    time_zone: str  # the wall clock restrictions were read on: an IANA name, or the start's UTC offset
    total_cost: Price
    total_fixed_cost: Price
    total_energy: Decimal
    total_energy_cost: Price
    total_time: Decimal
    total_time_cost: Price
    total_parking_time: Decimal
    total_parking_cost: Price
    charging_periods: list[ChargingPeriod]
    notes: list[str]


@dataclass(frozen=True)
class Conditions:
    """What restrictions look at, at one instant of a session."""

    elapsed: Fraction  # seconds since the session start
    day: date  # local
    second_of_day: Fraction  # local wall clock
    kwh: Fraction  # delivered so far
    power_kw: Decimal | None
    current_a: Decimal | None


def load_session(text: str) -> SessionProfile:
    """Parse a session profile JSON document; TariffError lists every problem with its field path."""
    return validate_json(SessionProfile, text, "session")


def price_session(tariff: Tariff, profile: SessionProfile) -> PricedSession:
    """The CDR cost fields of `profile` under `tariff`, by the rules in this module's docstring."""
    check_in_force(tariff, profile.start)
    elements = pricing_elements(tariff)
    clock = _LocalClock.of(profile.start, profile.time_zone)
    pieces = _pieces(elements, profile, clock)
    priced = [_price_piece(elements, piece, clock) for piece in pieces]
    lines = _usage(pieces, priced)
    notes = _round_steps(lines)
    amounts: dict[TariffDimensionType, _Amount] = {dim: _line_amount(line) for dim, line in lines.items()}
    amounts[Dim.FLAT] = _flat_amount(_session_flat(tariff, profile))
    notes += [f"{dim.value}: {UNKNOWN_VAT}" for dim, amount in amounts.items() if amount.vat_unknown]
    costs = {dim: amount.rounded(tariff.currency) for dim, amount in amounts.items()}
    parking_seconds = sum((p.seconds for p in pieces if p.period.parking), Fraction(0))
    return PricedSession(
        currency=tariff.currency,
        time_zone=clock.name,
        total_cost=_clamp(costs, amounts, tariff, notes),
        total_fixed_cost=costs[Dim.FLAT],
        total_energy=_reported(sum((p.kwh for p in pieces), Fraction(0))),
        total_energy_cost=costs[Dim.ENERGY],
        total_time=_reported(sum((p.seconds for p in pieces), Fraction(0)) / HOUR_SECONDS),
        total_time_cost=costs[Dim.TIME],
        total_parking_time=_reported(parking_seconds / HOUR_SECONDS),
        total_parking_cost=costs[Dim.PARKING_TIME],
        charging_periods=_charging_periods(tariff.id, profile.start, pieces, priced),
        notes=notes,
    )


def check_in_force(tariff: Tariff, at: datetime) -> None:
    if tariff.start_date_time and at < tariff.start_date_time:
        raise TariffError(
            f"tariff {tariff.id} is not in force at {at.isoformat()}: it starts {tariff.start_date_time}"
        )
    if tariff.end_date_time and at >= tariff.end_date_time:
        raise TariffError(
            f"tariff {tariff.id} is not in force at {at.isoformat()}: it ended {tariff.end_date_time}"
        )


def pricing_elements(tariff: Tariff) -> list[TariffElement]:
    """The elements that price a charging session: reservation elements price reservations instead."""
    return [e for e in tariff.elements if e.restrictions is None or e.restrictions.reservation is None]


def components_at_start(
    tariff: Tariff,
    start: datetime,
    power_kw: Decimal | None = None,
    current_a: Decimal | None = None,
    time_zone: str | None = None,
) -> dict[TariffDimensionType, PriceComponent]:
    """The component of each dimension in force at a session start: no energy, no duration yet."""
    day, second = _LocalClock.of(start, time_zone).read(Fraction(0))
    conditions = Conditions(Fraction(0), day, second, Fraction(0), power_kw, current_a)
    elements = pricing_elements(tariff)
    found = {dim: component_in_force(elements, dim, conditions) for dim in Dim}
    return {dim: hit[1] for dim, hit in found.items() if hit is not None}


def component_in_force(
    elements: list[TariffElement], dimension: TariffDimensionType, conditions: Conditions
) -> tuple[int, PriceComponent] | None:
    """OCPI's rule: the first element that has this dimension and whose restrictions all hold."""
    for index, element in enumerate(elements):
        component = element.component(dimension)
        if component is not None and holds(element.restrictions, conditions):
            return index, component
    return None


def holds(restrictions: TariffRestrictions | None, at: Conditions) -> bool:
    if restrictions is None:
        return True
    r = restrictions
    return (
        _in_window(r.start_time, r.end_time, at.second_of_day)
        and _within(at.day, r.start_date, r.end_date)
        and (not r.day_of_week or WEEKDAYS[at.day.weekday()] in r.day_of_week)
        and _within(at.kwh, r.min_kwh, r.max_kwh)
        and _within(at.elapsed, r.min_duration, r.max_duration)
        and _measured_within(at.power_kw, r.min_power, r.max_power)
        and _measured_within(at.current_a, r.min_current, r.max_current)
    )


def _within(value: Any, low: Any, high: Any) -> bool:
    """Lower bounds inclusive, upper bounds exclusive, as OCPI defines kWh, duration and dates."""
    return (low is None or value >= low) and (high is None or value < high)


def _measured_within(value: Decimal | None, low: Decimal | None, high: Decimal | None) -> bool:
    if low is None and high is None:
        return True
    return value is not None and _within(value, low, high)


def _in_window(start: time | None, end: time | None, second: Fraction) -> bool:
    low = _seconds(start) if start else 0
    high = _seconds(end) if end else DAY_SECONDS
    if low < high:
        return low <= second < high
    return second >= low or second < high  # wraps midnight, e.g. 22:00 to 06:00


def _seconds(wall: time) -> int:
    return wall.hour * 3600 + wall.minute * 60


@dataclass(frozen=True)
class _LocalClock:
    """The wall clock of the session's place, read at elapsed seconds from the session start."""

    zone: tzinfo
    name: str
    start_epoch: Fraction  # the start, in UTC seconds since 1970-01-01

    @classmethod
    def of(cls, start: datetime, time_zone: str | None = None) -> _LocalClock:
        offset = start.utcoffset()
        assert offset is not None  # SessionProfile.start is an AwareDatetime
        zone: tzinfo = ZoneInfo(time_zone) if time_zone else timezone(offset)
        since_epoch = start - EPOCH
        epoch_seconds = Fraction(since_epoch.days * DAY_SECONDS + since_epoch.seconds)
        name = time_zone or _offset_name(offset)
        return cls(zone, name, epoch_seconds + Fraction(since_epoch.microseconds, 10**6))

    def read(self, elapsed: Fraction) -> tuple[date, Fraction]:
        """The local date and second of the day at `elapsed`."""
        instant = self.start_epoch + elapsed
        days, second = divmod(instant + self._offset(math.floor(instant)), DAY_SECONDS)
        return EPOCH.date() + timedelta(days=int(days)), second

    def crossings(self, second_of_day: int, after: Fraction, before: Fraction) -> list[Fraction]:
        """Elapsed times strictly between `after` and `before` when the clock reads `second_of_day`.

        Twice on the day the clock is put back, if it reads that time in the repeated hour; never on the
        day it is put forward, if that time falls in the skipped hour (`transitions` cuts there instead).
        """
        first_day, last_day = self.read(after)[0], self.read(before)[0]
        found = set()
        for days in range((last_day - first_day).days + 3):
            wall = datetime.combine(first_day + timedelta(days=days - 1), time()) + timedelta(
                seconds=second_of_day
            )
            for fold in (0, 1):
                elapsed = int(wall.replace(tzinfo=self.zone, fold=fold).timestamp()) - self.start_epoch
                if after < elapsed < before and self.read(elapsed)[1] == second_of_day:
                    found.add(elapsed)
        return sorted(found)

    def transitions(self, after: Fraction, before: Fraction) -> list[Fraction]:
        """Elapsed times strictly between `after` and `before` when the zone's UTC offset changes.

        zoneinfo does not list a zone's transitions, so they are found by sampling the offset every
        hour (no zone changes its offset twice within an hour) and bisecting to the second.
        """
        if isinstance(self.zone, timezone):
            return []
        found = []
        low = math.floor(self.start_epoch + after)
        end = math.ceil(self.start_epoch + before)
        while low < end:
            high = min(low + HOUR_SECONDS, end)
            if self._offset(low) != self._offset(high):
                found.append(self._first_second_of(self._offset(high), low, high) - self.start_epoch)
            low = high
        return [t for t in found if after < t < before]

    def _first_second_of(self, offset: int, low: int, high: int) -> int:
        """The first second in (low, high] at `offset`, given `low` is at another one and `high` at it."""
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if self._offset(middle) == offset else (middle, high)
        return high

    def _offset(self, epoch_second: int) -> int:
        offset = datetime.fromtimestamp(epoch_second, self.zone).utcoffset()
        assert offset is not None
        return int(offset.total_seconds())


def _offset_name(offset: timedelta) -> str:
    """+01:00, -05:00, +05:30, as ISO 8601 writes a UTC offset."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class _Piece:
    start: Fraction  # elapsed seconds
    seconds: Fraction
    kwh_before: Fraction
    kwh: Fraction
    period: SessionPeriod


def _pieces(elements: list[TariffElement], profile: SessionProfile, clock: _LocalClock) -> list[_Piece]:
    restrictions = [e.restrictions for e in elements if e.restrictions is not None]
    wall = {0} | {_seconds(t) for r in restrictions for t in (r.start_time, r.end_time) if t is not None}
    durations = {Fraction(d) for r in restrictions for d in (r.min_duration, r.max_duration) if d is not None}
    thresholds = {Fraction(k) for r in restrictions for k in (r.min_kwh, r.max_kwh) if k is not None}
    # The wall clock's cuts once for the whole session: each reading of the zone costs a lookup.
    length = sum((Fraction(p.minutes) * 60 for p in profile.periods), Fraction(0))
    on_the_wall = {c for s in wall for c in clock.crossings(s, Fraction(0), length)}
    on_the_wall |= set(clock.transitions(Fraction(0), length))
    pieces: list[_Piece] = []
    elapsed, kwh = Fraction(0), Fraction(0)
    for period in profile.periods:
        seconds, energy = Fraction(period.minutes) * 60, Fraction(period.energy_kwh)
        end = elapsed + seconds
        cuts = {elapsed, end} | {d for d in durations | on_the_wall if elapsed < d < end}
        cuts |= {elapsed + seconds * (k - kwh) / energy for k in thresholds if kwh < k < kwh + energy}
        for a, b in pairwise(sorted(cuts)):
            before = kwh + energy * (a - elapsed) / seconds
            pieces.append(_Piece(a, b - a, before, energy * (b - a) / seconds, period))
        elapsed, kwh = end, kwh + energy
    return pieces


def _price_piece(
    elements: list[TariffElement], piece: _Piece, clock: _LocalClock
) -> dict[TariffDimensionType, tuple[int, PriceComponent]]:
    day, second = clock.read(piece.start)
    at = Conditions(piece.start, day, second, piece.kwh_before, piece.period.power_kw, piece.period.current_a)
    found = {dim: component_in_force(elements, dim, at) for dim in _dimensions(piece)}
    return {dim: hit for dim, hit in found.items() if hit is not None}


def _dimensions(piece: _Piece) -> list[TariffDimensionType]:
    if piece.period.parking:
        return [Dim.PARKING_TIME]
    return [Dim.TIME, Dim.ENERGY] if piece.kwh else [Dim.TIME]


@dataclass
class _Line:
    """One dimension's billed volume per element, in step units (Wh or seconds)."""

    dimension: TariffDimensionType
    volumes: dict[int, Fraction] = field(default_factory=dict)
    components: dict[int, PriceComponent] = field(default_factory=dict)
    last_element: int = -1
    last_piece: int = -1  # orders TIME against PARKING_TIME

    def add(self, piece: int, element: int, component: PriceComponent, volume: Fraction) -> None:
        self.volumes[element] = self.volumes.get(element, Fraction(0)) + volume
        self.components[element] = component
        self.last_element, self.last_piece = element, piece

    def round_up(self) -> str | None:
        """Bill the total in whole steps of the last element, the extra at its price; a note if any."""
        step = self.components[self.last_element].step_size
        total = sum(self.volumes.values(), Fraction(0))
        extra = math.ceil(total / step) * step - total
        if not extra:
            return None
        self.volumes[self.last_element] += extra
        unit = STEP_UNIT_NAMES[self.dimension]
        return (
            f"{self.dimension.value}: {_reported(total)} {unit} billed as {_reported(total + extra)} {unit}"
            f" (rounded up to steps of {step} {unit})"
        )


def _usage(
    pieces: list[_Piece], priced: list[dict[TariffDimensionType, tuple[int, PriceComponent]]]
) -> dict[TariffDimensionType, _Line]:
    lines = {dim: _Line(dim) for dim in (Dim.ENERGY, Dim.TIME, Dim.PARKING_TIME)}
    for position, (piece, hits) in enumerate(zip(pieces, priced, strict=True)):
        for dim, (element, component) in hits.items():
            volume = piece.kwh * WH_PER_KWH if dim is Dim.ENERGY else piece.seconds
            lines[dim].add(position, element, component, volume)
    return lines


def _round_steps(lines: dict[TariffDimensionType, _Line]) -> list[str]:
    """step_size once per session: ENERGY, and whichever of TIME and PARKING_TIME was billed last."""
    time_line = max(lines[Dim.TIME], lines[Dim.PARKING_TIME], key=lambda line: line.last_piece)
    used = [line for line in (lines[Dim.ENERGY], time_line) if line.volumes]
    return [note for line in used if (note := line.round_up())]


@dataclass(frozen=True)
class _Amount:
    """A cost line before rounding."""

    excl: Fraction
    incl: Fraction
    vat_unknown: bool

    def rounded(self, currency: str) -> Price:
        return Price(excl_vat=_money(self.excl, currency), incl_vat=_money(self.incl, currency))


def _session_flat(tariff: Tariff, profile: SessionProfile) -> PriceComponent | None:
    first = profile.periods[0] if profile.periods else None
    power, current = (first.power_kw, first.current_a) if first else (None, None)
    return components_at_start(tariff, profile.start, power, current, profile.time_zone).get(Dim.FLAT)


def _line_amount(line: _Line) -> _Amount:
    per = STEP_UNITS_PER_PRICE_UNIT[line.dimension]
    excl = incl = Fraction(0)
    for element, volume in line.volumes.items():
        cost = volume * Fraction(line.components[element].price) / per
        excl += cost
        incl += cost * _vat_factor(line.components[element])
    return _Amount(excl, incl, any(c.vat is None for c in line.components.values()))


def _flat_amount(component: PriceComponent | None) -> _Amount:
    if component is None:
        return _Amount(Fraction(0), Fraction(0), vat_unknown=False)
    price = Fraction(component.price)
    return _Amount(price, price * _vat_factor(component), component.vat is None)


def _vat_factor(component: PriceComponent) -> Fraction:
    # Unknown VAT (absent, which is not 0 %) bills incl. = excl.; a note says so.
    return 1 + Fraction(component.vat) / 100 if component.vat is not None else Fraction(1)


def _clamp(
    costs: dict[TariffDimensionType, Price],
    amounts: dict[TariffDimensionType, _Amount],
    tariff: Tariff,
    notes: list[str],
) -> Price:
    """min_price/max_price bound the sum of the lines excl. and incl. VAT separately (OCPI 2.2.1)."""
    excl = sum((c.excl_vat for c in costs.values()), Decimal(0))
    incl = sum((c.incl_vat for c in costs.values() if c.incl_vat is not None), Decimal(0))
    raw_excl = sum((a.excl for a in amounts.values()), Fraction(0))
    vat_ratio = sum((a.incl for a in amounts.values()), Fraction(0)) / raw_excl if raw_excl else None
    low, high = tariff.min_price, tariff.max_price
    new_excl = _bounded(excl, low.excl_vat if low else None, high.excl_vat if high else None)
    new_incl = _bounded(
        incl,
        _incl_bound(low, vat_ratio, tariff.currency) if low else None,
        _incl_bound(high, vat_ratio, tariff.currency) if high else None,
    )
    if (new_excl, new_incl) != (excl, incl):
        limit = "min_price" if new_excl > excl or new_incl > incl else "max_price"
        notes.append(f"{limit} applied: total {excl}/{incl} became {new_excl}/{new_incl} (excl./incl. VAT)")
    return Price(excl_vat=new_excl, incl_vat=new_incl)


def _bounded(value: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value


def _incl_bound(bound: Price, vat_ratio: Fraction | None, currency: str) -> Decimal:
    """A limit given excl. VAT only applies incl. VAT at the session's own VAT ratio (none if free)."""
    if bound.incl_vat is not None:
        return bound.incl_vat
    if vat_ratio is None:
        return bound.excl_vat
    return _money(Fraction(bound.excl_vat) * vat_ratio, currency)


def _money(amount: Fraction, currency: str) -> Decimal:
    with localcontext() as context:
        context.prec = 60  # far beyond any bill: the only rounding is round_money's
        return round_money(Decimal(amount.numerator) / Decimal(amount.denominator), currency)


def _reported(volume: Fraction) -> Decimal:
    with localcontext() as context:
        context.prec = 60
        value = (Decimal(volume.numerator) / Decimal(volume.denominator)).quantize(VOLUME_QUANTUM, ROUNDING)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _charging_periods(
    tariff_id: str,
    start: datetime,
    pieces: list[_Piece],
    priced: list[dict[TariffDimensionType, tuple[int, PriceComponent]]],
) -> list[ChargingPeriod]:
    """Consecutive pieces in the same state, priced by the same elements, make one charging period."""
    groups: list[tuple[tuple[object, ...], list[_Piece]]] = []
    for piece, hits in zip(pieces, priced, strict=True):
        key = (
            piece.period.parking,
            piece.period.power_kw,
            piece.period.current_a,
            sorted((d, e) for d, (e, _) in hits.items()),
        )
        if groups and groups[-1][0] == key:
            groups[-1][1].append(piece)
        else:
            groups.append((key, [piece]))
    return [_charging_period(tariff_id, start, group) for _, group in groups]


def _charging_period(tariff_id: str, start: datetime, group: list[_Piece]) -> ChargingPeriod:
    first = group[0]
    hours = _reported(sum((p.seconds for p in group), Fraction(0)) / HOUR_SECONDS)
    if first.period.parking:
        dims = [CdrDimension(type=CdrDimensionType.PARKING_TIME, volume=hours)]
    else:
        energy = _reported(sum((p.kwh for p in group), Fraction(0)))
        dims = [
            CdrDimension(type=CdrDimensionType.ENERGY, volume=energy),
            CdrDimension(type=CdrDimensionType.TIME, volume=hours),
        ]
    if first.period.power_kw is not None:
        dims.append(CdrDimension(type=CdrDimensionType.POWER, volume=first.period.power_kw))
    if first.period.current_a is not None:
        dims.append(CdrDimension(type=CdrDimensionType.CURRENT, volume=first.period.current_a))
    # in UTC: adding to a datetime with a DST zone would add wall-clock time, not elapsed time
    at = start.astimezone(UTC) + timedelta(microseconds=round(first.start * 10**6))
    return ChargingPeriod(start_date_time=at, dimensions=dims, tariff_id=tariff_id)
