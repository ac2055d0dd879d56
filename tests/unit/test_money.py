from decimal import Decimal

import pytest

from chargenet.domain import money
from chargenet.domain.money import (
    MINOR_UNITS,
    from_minor_units,
    loads,
    parse_decimal,
    round_money,
    round_unit_price,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("2.345", "EUR", "2.35"),  # half up, where banker's rounding would give 2.34
        ("2.3449", "EUR", "2.34"),
        ("-2.345", "EUR", "-2.35"),  # half away from zero
        ("0.005", "SEK", "0.01"),
        ("7.9", "USD", "7.90"),
        ("100.5", "JPY", "101"),
        ("100.4", "ISK", "100"),
        ("2.5", "KRW", "3"),
    ],
)
def test_round_money_is_half_up_to_the_minor_unit(amount, currency, rounded):
    result = round_money(Decimal(amount), currency)
    assert result == Decimal(rounded)
    assert str(result) == rounded  # the exponent is the currency's, so "7.90" prints as such


def test_minor_units_follow_iso_4217():
    for currency in ("EUR", "SEK", "NOK", "DKK", "USD", "GBP", "CHF", "PLN"):
        assert MINOR_UNITS[currency] == 2
    for currency in ("JPY", "ISK", "KRW"):
        assert MINOR_UNITS[currency] == 0
    assert money.ROUNDING == "ROUND_HALF_UP"


def test_unknown_currency_is_refused():
    with pytest.raises(ValueError, match="unsupported currency 'XXX'"):
        round_money(Decimal(1), "XXX")


def test_floats_are_refused_everywhere_money_enters():
    with pytest.raises(TypeError, match="float"):
        round_money(0.1, "EUR")
    with pytest.raises(TypeError, match="float"):
        parse_decimal(0.1)
    with pytest.raises(TypeError, match="float"):
        to_minor_units(5.5, "EUR")
    with pytest.raises(TypeError):
        from_minor_units(5.5, "EUR")


@pytest.mark.parametrize(
    ("given", "parsed"), [("0.1", "0.1"), (" 12.50 ", "12.50"), (7, "7"), (Decimal("1.10"), "1.10")]
)
def test_parse_decimal_is_exact(given, parsed):
    assert str(parse_decimal(given)) == parsed


@pytest.mark.parametrize("given", ["abc", "", "NaN", "Infinity", "-inf"])
def test_parse_decimal_refuses_non_numbers(given):
    with pytest.raises(ValueError):
        parse_decimal(given)


@pytest.mark.parametrize("given", [True, None, [1]])
def test_parse_decimal_refuses_other_types(given):
    with pytest.raises(TypeError):
        parse_decimal(given)


def test_minor_units_round_trip():
    assert to_minor_units(Decimal("5.50"), "EUR") == 550
    assert to_minor_units(Decimal("7.905"), "EUR") == 791  # rounded by the rule, never truncated
    assert to_minor_units(Decimal("0.29"), "SEK") == 29  # int(0.29 * 100) == 28 with floats
    assert to_minor_units(Decimal("500"), "JPY") == 500
    assert from_minor_units(550, "EUR") == Decimal("5.50")
    assert str(from_minor_units(5, "SEK")) == "0.05"
    assert str(from_minor_units(500, "JPY")) == "500"
    with pytest.raises(TypeError):
        from_minor_units(True, "EUR")


def test_unit_prices_keep_two_more_digits():
    assert str(round_unit_price(Decimal("0.275"), "EUR")) == "0.2750"
    assert round_unit_price(Decimal(2) / 60 * Decimal("1.1"), "EUR") == Decimal("0.0367")
    assert str(round_unit_price(Decimal("12.345"), "JPY")) == "12.35"


def test_json_numbers_become_decimals_not_floats():
    data = loads('{"price": 0.1, "step_size": 900, "values": [0.1, 0.2]}')
    assert data["price"] == Decimal("0.1")
    assert isinstance(data["step_size"], int)
    assert sum(data["values"], data["price"]) == Decimal("0.4")


@pytest.mark.parametrize("text", ['{"price": NaN}', '{"price": Infinity}', "[-Infinity]"])
def test_json_refuses_non_finite_numbers(text):
    with pytest.raises(ValueError, match="is not a number"):
        loads(text)
