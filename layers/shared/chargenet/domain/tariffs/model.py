"""The OCPI 2.2.1 Tariff object (module "Tariffs"), validated. Data only: pricing is in `engine`.

Stricter than OCPI on purpose, because a typo in a tariff is a wrong bill: unknown fields are
refused (a misspelt `max_kwh` would silently make an element unrestricted), numbers must not be
floats, an element may not hold two components of one dimension, and min/max pairs must be ordered.
OCPI DateTimes without a zone designator are UTC, as OCPI says.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from chargenet.domain import money


class TariffError(ValueError):
    """A tariff (or a session to price) that cannot be used, with a readable multi-line message."""


def _number(value: Any) -> Decimal:
    # pydantic reports ValueError as a validation error but lets TypeError escape as a crash.
    try:
        return money.parse_decimal(value)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _wall_time(value: Any) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (24 h, leading zeros)")
    return time(int(value[:2]), int(value[3:]))


def _calendar_date(value: Any) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError(f"{value!r} is not a date YYYY-MM-DD")
    return date.fromisoformat(value)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _supported_currency(value: str) -> str:
    money.minor_unit_exponent(value)
    return value


Number = Annotated[Decimal, BeforeValidator(_number), Field(ge=0)]
WallTime = Annotated[time, BeforeValidator(_wall_time), PlainSerializer(lambda t: t.strftime("%H:%M"))]
CalendarDate = Annotated[date, BeforeValidator(_calendar_date), PlainSerializer(lambda d: d.isoformat())]
OcpiDateTime = Annotated[datetime, AfterValidator(_as_utc)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(_supported_currency)]


M = TypeVar("M", bound=BaseModel)


class _Ocpi(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class ReservationRestrictionType(StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class Price(_Ocpi):
    excl_vat: Number
    incl_vat: Number | None = None

    @model_validator(mode="after")
    def _vat_adds(self) -> Price:
        if self.incl_vat is not None and self.incl_vat < self.excl_vat:
            raise ValueError(f"incl_vat {self.incl_vat} is below excl_vat {self.excl_vat}")
        return self


class DisplayText(_Ocpi):
    language: str = Field(min_length=2, max_length=2)
    text: str = Field(max_length=512)


class PriceComponent(_Ocpi):
    type: TariffDimensionType
    price: Number  # per kWh (ENERGY), per hour (TIME, PARKING_TIME), per session (FLAT); excl. VAT
    vat: Number | None = None  # percent; absent means "VAT unknown", which is not 0 %
    step_size: int = Field(ge=1)  # Wh (ENERGY) or seconds (TIME, PARKING_TIME)


_ORDERED_PAIRS = (
    ("min_kwh", "max_kwh"),
    ("min_current", "max_current"),
    ("min_power", "max_power"),
    ("min_duration", "max_duration"),
    ("start_date", "end_date"),
)


class TariffRestrictions(_Ocpi):
    """When an element is active; every restriction given must hold. Bounds: min incl., max excl."""

    start_time: WallTime | None = None
    end_time: WallTime | None = None
    start_date: CalendarDate | None = None
    end_date: CalendarDate | None = None
    min_kwh: Number | None = None
    max_kwh: Number | None = None
    min_current: Number | None = None
    max_current: Number | None = None
    min_power: Number | None = None
    max_power: Number | None = None
    min_duration: int | None = Field(default=None, ge=0)
    max_duration: int | None = Field(default=None, ge=0)
    day_of_week: list[DayOfWeek] | None = None
    reservation: ReservationRestrictionType | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TariffRestrictions:
        for low_name, high_name in _ORDERED_PAIRS:
            low, high = getattr(self, low_name), getattr(self, high_name)
            if low is not None and high is not None and low >= high:
                raise ValueError(
                    f"{low_name} {low} must be below {high_name} {high}: the element could never apply"
                )
        if self.start_time is not None and self.start_time == self.end_time:
            raise ValueError("start_time equals end_time: leave both out for an element valid all day")
        return self


class TariffElement(_Ocpi):
    price_components: list[PriceComponent] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None

    @model_validator(mode="after")
    def _one_component_per_dimension(self) -> TariffElement:
        types = [c.type for c in self.price_components]
        repeated = sorted({t.value for t in types if types.count(t) > 1})
        if repeated:
            raise ValueError(f"more than one {' and '.join(repeated)} price component in one element")
        return self

    def component(self, dimension: TariffDimensionType) -> PriceComponent | None:
        return next((c for c in self.price_components if c.type is dimension), None)


class Tariff(_Ocpi):
    country_code: str = Field(pattern=r"^[A-Za-z]{2}$")
    party_id: str = Field(pattern=r"^[A-Za-z0-9]{3}$")
    id: str = Field(min_length=1, max_length=36)
    currency: Currency
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] = Field(default_factory=list)
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: list[TariffElement] = Field(min_length=1)
    start_date_time: OcpiDateTime | None = None
    end_date_time: OcpiDateTime | None = None
    energy_mix: dict[str, Any] | None = None  # carried, not used for pricing
    last_updated: OcpiDateTime

    @model_validator(mode="after")
    def _consistent(self) -> Tariff:
        for name, bound in (("min_price", self.min_price), ("max_price", self.max_price)):
            for amount in (bound.excl_vat, bound.incl_vat) if bound else ():
                if amount is not None and amount != money.round_money(amount, self.currency):
                    raise ValueError(f"{name} {amount} has more decimals than {self.currency} amounts have")
        if self.min_price and self.max_price and self.min_price.excl_vat > self.max_price.excl_vat:
            raise ValueError(
                f"min_price {self.min_price.excl_vat} is above max_price {self.max_price.excl_vat}"
            )
        if self.start_date_time and self.end_date_time and self.start_date_time >= self.end_date_time:
            raise ValueError("start_date_time must be before end_date_time")
        return self


def load_tariff(text: str) -> Tariff:
    """Parse an OCPI Tariff JSON document; TariffError lists every problem with its field path."""
    return validate_json(Tariff, text, "tariff")


def validate_json(model: type[M], text: str, what: str) -> M:
    """`model` from JSON text read with Decimals (never floats), or TariffError naming each bad field."""
    try:
        data = money.loads(text)
    except ValueError as exc:
        raise TariffError(f"invalid {what}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TariffError(f"invalid {what}: expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise TariffError(validation_message(f"invalid {what}", exc)) from None


def validation_message(title: str, exc: ValidationError) -> str:
    problems = [f"  {_path(error['loc']) or '(document)'}: {_reason(error)}" for error in exc.errors()]
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    return "\n".join([f"{title} ({count}):", *problems])


def _path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _reason(error: ErrorDetails) -> str:
    reason = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    if error["type"] != "missing" and isinstance(given, str | int | Decimal) and not isinstance(given, bool):
        reason += f" (got {given!r})" if isinstance(given, str) else f" (got {given})"
    return reason
