"""The receipt's cost lines, from the billing record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chargenet.domain.billing import BillingRecord
from chargenet.domain.money import parse_decimal


@dataclass(frozen=True)
class ReceiptLine:
    label: str
    volume: str
    excl_vat: Decimal
    incl_vat: Decimal


def receipt_lines(record: BillingRecord) -> list[ReceiptLine]:
    """The CDR's cost lines that cost something; they add up to its total (money's line rule)."""
    ocpi = record.ocpi
    hours = _volume(ocpi, "total_time")
    parking = _volume(ocpi, "total_parking_time")
    candidates = (
        ("Start fee", "total_fixed_cost", ""),
        ("Energy", "total_energy_cost", f"{_volume(ocpi, 'total_energy'):f} kWh"),
        (
            "Charging time",
            "total_time_cost",
            f"{(hours - parking).normalize():f} h",
        ),  # OCPI's total_time includes parking
        ("Idle fee", "total_parking_cost", f"{parking:f} h"),
    )
    lines = []
    for label, field, volume in candidates:
        cost = ocpi.get(field)
        if not isinstance(cost, dict):
            continue
        excl = parse_decimal(str(cost["excl_vat"]))
        incl = parse_decimal(str(cost["incl_vat"])) if cost.get("incl_vat") is not None else excl
        if excl or incl:
            lines.append(ReceiptLine(label=label, volume=volume, excl_vat=excl, incl_vat=incl))
    return lines


def _volume(ocpi: Mapping[str, Any], field: str) -> Decimal:
    return parse_decimal(str(ocpi.get(field) or 0)).normalize()
