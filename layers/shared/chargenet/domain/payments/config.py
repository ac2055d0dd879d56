"""One deployment's payment settings: hold amounts, methods, the cost cap margin, time limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from chargenet.domain.money import parse_decimal, round_money, to_minor_units
from chargenet.domain.payments.errors import PaymentError
from chargenet.domain.payments.model import (
    HOLD_METHOD_TYPES,
    MINIMUM_CHARGE,
    SWISH,
    SWISH_CURRENCY,
    CheckoutMethod,
)


@dataclass(frozen=True)
class PaymentConfig:
    """One deployment's payment settings (template parameters, see `load_config`)."""

    holds: Mapping[str, Decimal]  # hold (and Swish prepay) amount per currency, major units
    hold_methods: tuple[str, ...] = ("card", "link")
    swish: bool = False
    cap_margin_percent: Decimal = Decimal(10)
    start_timeout: timedelta = timedelta(minutes=2)
    hold_max_age: timedelta = timedelta(days=6)
    capture_max_attempts: int = 6
    # Stripe refuses an expiry under 30 minutes from creation: one more for the time the request takes.
    checkout_ttl: timedelta = timedelta(minutes=31)
    # Checkouts opened on one connector within checkout_ttl. Anyone may open one, unauthenticated:
    # without a bound one client could fill the payments table (and every sweep) with open checkouts.
    # A driver needs one; the others are for the driver who backs out of the hosted page and retries.
    checkouts_per_connector: int = 3

    def __post_init__(self) -> None:
        for currency, amount in self.holds.items():
            minimum = MINIMUM_CHARGE.get(currency)
            if minimum is None:
                raise PaymentError(f"no known minimum charge for {currency}: cannot take payments in it")
            if round_money(amount, currency) != amount or amount < minimum:
                raise PaymentError(f"hold {amount} {currency} must be whole minor units, at least {minimum}")
        unknown = set(self.hold_methods) - HOLD_METHOD_TYPES
        if not self.hold_methods or unknown:
            raise PaymentError(
                f"hold methods must be some of {sorted(HOLD_METHOD_TYPES)}, got {self.hold_methods}"
            )
        if not Decimal(0) <= self.cap_margin_percent < Decimal(100):
            raise PaymentError("the cost cap margin is a percentage of the hold, 0 to below 100")
        if self.capture_max_attempts < 1:
            raise PaymentError("capture_max_attempts must be at least 1")
        if self.checkouts_per_connector < 1:
            raise PaymentError("checkouts_per_connector must be at least 1")

    def hold_minor(self, currency: str) -> int | None:
        amount = self.holds.get(currency)
        return to_minor_units(amount, currency) if amount is not None else None

    def methods_for(self, currency: str) -> list[CheckoutMethod]:
        if currency not in self.holds:
            return []
        swish = self.swish and currency == SWISH_CURRENCY
        return [CheckoutMethod.CARD, *([CheckoutMethod.SWISH] if swish else [])]


def load_config(env: Mapping[str, str]) -> PaymentConfig:
    """From the function environment: PAYMENT_HOLDS="EUR=50.00,SEK=500.00",
    PAYMENT_METHODS="card,link,swish", PAYMENT_CAP_MARGIN_PERCENT, PAYMENT_START_TIMEOUT_S,
    PAYMENT_HOLD_MAX_AGE_S."""
    holds = {}
    for entry in filter(None, (part.strip() for part in env.get("PAYMENT_HOLDS", "").split(","))):
        currency, _, amount = entry.partition("=")
        holds[currency.strip().upper()] = parse_decimal(amount)
    methods = [m.strip() for m in env.get("PAYMENT_METHODS", "card,link").split(",") if m.strip()]
    defaults = PaymentConfig(holds={})
    return PaymentConfig(
        holds=holds,
        hold_methods=tuple(m for m in methods if m != SWISH),
        swish=SWISH in methods,
        cap_margin_percent=parse_decimal(env.get("PAYMENT_CAP_MARGIN_PERCENT", defaults.cap_margin_percent)),
        start_timeout=_seconds(env, "PAYMENT_START_TIMEOUT_S", defaults.start_timeout),
        hold_max_age=_seconds(env, "PAYMENT_HOLD_MAX_AGE_S", defaults.hold_max_age),
    )


def _seconds(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    return timedelta(seconds=int(env[name])) if name in env else default
