"""Money: the project's one rounding rule, and the one way numbers enter it.

The rule
--------
- Amounts are ``Decimal`` end to end, never ``float`` (``0.1 + 0.2`` is not ``0.3`` in binary, and
  ``int(x * 100)`` truncates: both have billed real drivers wrongly). Integer minor units (cents, öre)
  are the only other form, for payment providers.
- Every number that comes in goes through ``Decimal(str(x))`` (:func:`parse_decimal`); a ``float``
  is refused outright, because by the time it is a float the damage is done. JSON is read with
  ``parse_float=Decimal`` (:func:`loads`).
- Rounding is ``ROUND_HALF_UP`` (2.345 -> 2.35, -2.345 -> -2.35) to the currency's minor unit
  (ISO 4217 exponent), applied by :func:`round_money` and nowhere else.
- It is applied at the **line** level: each cost line (one tariff dimension: energy, charging time,
  parking time, flat fee) is rounded once excluding VAT and once including VAT, each from the
  unrounded line amount. Totals are sums of rounded lines, never rounded again, so a receipt's lines
  always add up to its total. VAT is never derived from a rounded amount.
- Unit prices shown to drivers (per kWh, per minute) are not amounts: :func:`round_unit_price` keeps
  two digits more than the minor unit (0.2750 EUR/kWh), half-up as well.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

ROUNDING = ROUND_HALF_UP

# ISO 4217 minor-unit exponents of the currencies we may bill in.
MINOR_UNITS: dict[str, int] = {
    "EUR": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "CAD": 2,
    "AUD": 2,
    "JPY": 0,
    "ISK": 0,
    "KRW": 0,
}

UNIT_PRICE_EXTRA_DIGITS = 2


def minor_unit_exponent(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(
            f"unsupported currency {currency!r}: known are {', '.join(sorted(MINOR_UNITS))}"
        ) from None


def parse_decimal(value: Any) -> Decimal:
    """An incoming number as an exact Decimal: str, int or Decimal only; floats and bools refused."""
    if isinstance(value, bool | float):
        raise TypeError(
            f"{value!r} is a {type(value).__name__}: pass money and volumes as str, int or Decimal"
        )
    if not isinstance(value, str | int | Decimal):
        raise TypeError(f"{value!r} is not a number")
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not parsed.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return parsed


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit: the project's only rounding of amounts."""
    return _quantize(amount, minor_unit_exponent(currency))


def round_unit_price(amount: Decimal, currency: str) -> Decimal:
    """Half-up to two digits below the minor unit: for prices per kWh/hour/minute shown to drivers."""
    return _quantize(amount, minor_unit_exponent(currency) + UNIT_PRICE_EXTRA_DIGITS)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Cents (öre, ...) for payment providers; the amount is rounded by the rule first."""
    return int(round_money(parse_decimal(amount), currency).scaleb(minor_unit_exponent(currency)))


def from_minor_units(units: int, currency: str) -> Decimal:
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"{units!r}: minor units are an int")
    exponent = minor_unit_exponent(currency)
    return Decimal(units).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def loads(text: str) -> Any:
    """JSON with every non-integer number as a Decimal; NaN and Infinity refused."""
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _quantize(amount: Decimal, places: int) -> Decimal:
    if not isinstance(amount, Decimal):
        raise TypeError(f"{amount!r} is a {type(amount).__name__}, not a Decimal")
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUNDING)
