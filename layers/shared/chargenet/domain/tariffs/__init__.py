"""OCPI 2.2.1 tariffs: the model, the pricing engine (billing) and the price display (before a session)."""

from chargenet.domain.tariffs.display import PriceDisplay, describe, price_display
from chargenet.domain.tariffs.engine import (
    CdrDimension,
    CdrDimensionType,
    ChargingPeriod,
    PricedSession,
    SessionPeriod,
    SessionProfile,
    load_session,
    price_session,
)
from chargenet.domain.tariffs.model import (
    DayOfWeek,
    Price,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffError,
    TariffRestrictions,
    TariffType,
    load_tariff,
)

__all__ = [
    "CdrDimension",
    "CdrDimensionType",
    "ChargingPeriod",
    "DayOfWeek",
    "Price",
    "PriceComponent",
    "PriceDisplay",
    "PricedSession",
    "SessionPeriod",
    "SessionProfile",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffError",
    "TariffRestrictions",
    "TariffType",
    "describe",
    "load_session",
    "load_tariff",
    "price_display",
    "price_session",
]
