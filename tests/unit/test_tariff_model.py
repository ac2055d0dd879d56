import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from chargenet.domain.tariffs import Tariff, TariffDimensionType, TariffError, load_tariff

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tariffs"


def document(**changes):
    base = {
        "country_code": "NL",
        "party_id": "CNT",
        "id": "T1",
        "currency": "EUR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": "0.25", "vat": "10", "step_size": 1}]}
        ],
        "last_updated": "2025-01-01T00:00:00Z",
    }
    return {**base, **changes}


def load(data) -> Tariff:
    return load_tariff(json.dumps(data))


def problems(data) -> str:
    with pytest.raises(TariffError) as caught:
        load(data)
    return str(caught.value)


def with_restrictions(**restrictions):
    return document(
        elements=[
            {
                "price_components": [{"type": "TIME", "price": "1", "step_size": 1}],
                "restrictions": restrictions,
            }
        ]
    )


@pytest.mark.parametrize(
    "path", sorted(FIXTURES.glob("*.json")) + sorted((ROOT / "docs" / "tariffs").glob("*tariff.json"))
)
def test_every_example_tariff_loads(path):
    tariff = load_tariff(path.read_text())
    assert tariff.elements


def test_numbers_are_exact_decimals():
    tariff = load_tariff((FIXTURES / "complex_current_weekday.json").read_text())
    component = tariff.elements[1].price_components[0]
    assert component.type is TariffDimensionType.TIME
    assert component.price == Decimal("1.00") and isinstance(component.price, Decimal)
    assert tariff.elements[1].restrictions.max_current == Decimal("32.00")
    assert component.step_size == 900


def test_restrictions_parse_to_times_and_dates_and_dump_back_as_ocpi():
    tariff = load(
        with_restrictions(
            start_time="22:00", end_time="06:00", start_date="2025-03-01", end_date="2025-04-01"
        )
    )
    restrictions = tariff.elements[0].restrictions
    assert (restrictions.start_time, restrictions.end_time) == (time(22), time(6))
    assert (restrictions.start_date, restrictions.end_date) == (date(2025, 3, 1), date(2025, 4, 1))
    dumped = tariff.model_dump(mode="json", exclude_none=True)
    assert dumped["elements"][0]["restrictions"] == {
        "start_time": "22:00",
        "end_time": "06:00",
        "start_date": "2025-03-01",
        "end_date": "2025-04-01",
    }
    assert load(dumped) == tariff


def test_vat_absent_is_not_vat_zero():
    tariff = load(
        document(
            elements=[
                {
                    "price_components": [
                        {"type": "ENERGY", "price": "0.25", "step_size": 1},
                        {"type": "FLAT", "price": "1", "vat": 0, "step_size": 1},
                    ]
                }
            ]
        )
    )
    energy, flat = tariff.elements[0].price_components
    assert energy.vat is None
    assert flat.vat == 0


def test_ocpi_datetimes_without_zone_are_utc():
    tariff = load(document(last_updated="2025-01-01T12:00:00", end_date_time="2026-01-01T00:00:00+01:00"))
    assert tariff.last_updated == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert tariff.end_date_time == datetime(2025, 12, 31, 23, tzinfo=UTC)


def test_errors_name_the_field_path_and_the_reason_on_separate_lines():
    data = document(
        elements=[
            {"price_components": [{"type": "ENERGY", "price": "-1", "vat": "10", "step_size": 0}]},
            {"price_components": [{"type": "HOURLY", "price": "1", "step_size": 1}]},
        ]
    )
    del data["party_id"]
    message = problems(data)
    lines = message.splitlines()
    assert lines[0] == "invalid tariff (4 problems):"
    assert "  party_id: Field required" in lines
    assert any(
        line.startswith("  elements[0].price_components[0].price: ") and "greater than or equal to 0" in line
        for line in lines
    )
    assert any(line.startswith("  elements[0].price_components[0].step_size: ") for line in lines)
    assert any(
        line.startswith("  elements[1].price_components[0].type: ") and "'ENERGY'" in line for line in lines
    )


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        (with_restrictions(max_kWh=10), "elements[0].restrictions.max_kWh", "Extra inputs are not permitted"),
        (
            with_restrictions(start_time="7:30"),
            "elements[0].restrictions.start_time",
            "not a time of day HH:MM",
        ),
        (with_restrictions(end_time="24:00"), "elements[0].restrictions.end_time", "not a time of day HH:MM"),
        (
            with_restrictions(start_date="2025-02-30"),
            "elements[0].restrictions.start_date",
            "day is out of range",
        ),
        (
            with_restrictions(start_date="01-03-2025"),
            "elements[0].restrictions.start_date",
            "not a date YYYY-MM-DD",
        ),
        (with_restrictions(day_of_week=["MON"]), "elements[0].restrictions.day_of_week[0]", "'MONDAY'"),
        (
            with_restrictions(min_kwh=20, max_kwh=10),
            "elements[0].restrictions",
            "min_kwh 20 must be below max_kwh 10",
        ),
        (
            with_restrictions(min_duration=60, max_duration=60),
            "elements[0].restrictions",
            "min_duration 60 must be below",
        ),
        (with_restrictions(min_power=-1), "elements[0].restrictions.min_power", "greater than or equal to 0"),
        (
            with_restrictions(start_time="10:00", end_time="10:00"),
            "elements[0].restrictions",
            "start_time equals end_time",
        ),
        (document(currency="eur"), "currency", "should match pattern"),
        (document(currency="XXX"), "currency", "unsupported currency 'XXX'"),
        (document(elements=[]), "elements", "at least 1 item"),
        (document(elements=[{"price_components": []}]), "elements[0].price_components", "at least 1 item"),
        (document(country_code="NLD"), "country_code", "should match pattern"),
        (
            document(min_price={"excl_vat": 5}, max_price={"excl_vat": 4}),
            "(document)",
            "min_price 5 is above max_price 4",
        ),
        (document(min_price={"excl_vat": "0.505"}), "(document)", "more decimals than EUR"),
        (document(max_price={"excl_vat": 10, "incl_vat": 9}), "max_price", "incl_vat 9 is below excl_vat 10"),
        (
            document(start_date_time="2025-02-01T00:00:00Z", end_date_time="2025-01-01T00:00:00Z"),
            "(document)",
            "start_date_time must be before end_date_time",
        ),
        (
            document(
                elements=[
                    {
                        "price_components": [
                            {"type": "ENERGY", "price": 1, "step_size": 1},
                            {"type": "ENERGY", "price": 2, "step_size": 1},
                        ]
                    }
                ]
            ),
            "elements[0]",
            "more than one ENERGY price component",
        ),
    ],
)
def test_invalid_tariffs_are_explained(data, path, reason):
    message = problems(data)
    matching = [line for line in message.splitlines() if line.startswith(f"  {path}: ")]
    assert matching, message
    assert reason in matching[0], message


def test_numbers_as_json_floats_are_read_exactly():
    tariff = load_tariff(
        '{"country_code": "NL", "party_id": "CNT", "id": "T", "currency": "EUR", '
        '"elements": [{"price_components": [{"type": "ENERGY", "price": 0.1, "step_size": 1}]}], '
        '"last_updated": "2025-01-01T00:00:00Z"}'
    )
    assert tariff.elements[0].price_components[0].price == Decimal("0.1")


def test_python_floats_are_refused():
    data = document(elements=[{"price_components": [{"type": "ENERGY", "price": 0.1, "step_size": 1}]}])
    with pytest.raises(ValidationError, match="is a float"):
        Tariff.model_validate(data)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "invalid tariff: not valid JSON: "),
        ("[1, 2]", "invalid tariff: expected a JSON object, got list"),
        ('{"price": NaN}', "invalid tariff: not valid JSON: NaN is not a number"),
    ],
)
def test_unreadable_documents(text, reason):
    with pytest.raises(TariffError, match="^" + reason.replace("(", r"\(")):
        load_tariff(text)


def test_tariff_error_is_a_value_error():
    assert issubclass(TariffError, ValueError)
