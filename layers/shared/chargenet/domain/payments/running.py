"""While the session runs: the cost cap (no incremental authorization) and the card hold's expiry."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from chargenet.domain.money import from_minor_units, round_money, to_minor_units
from chargenet.domain.payments.config import PaymentConfig
from chargenet.domain.payments.model import Payment, Settlement, changed


def cap_minor(payment: Payment, config: PaymentConfig) -> int:
    """Stop charging at this running cost: the hold minus a margin for the last meter interval."""
    hold = from_minor_units(payment.hold_minor, payment.currency)
    margin = round_money(hold * config.cap_margin_percent / 100, payment.currency)
    return payment.hold_minor - to_minor_units(margin, payment.currency)


def cap_reached(payment: Payment, running_cost_incl_vat: Decimal, config: PaymentConfig) -> bool:
    return to_minor_units(running_cost_incl_vat, payment.currency) >= cap_minor(payment, config)


def hold_expiring(payment: Payment, now: datetime, config: PaymentConfig) -> bool:
    """A card hold the network may soon drop; a prepay cannot expire."""
    return (
        payment.settlement is Settlement.HOLD
        and payment.authorized_at is not None
        and now - payment.authorized_at >= config.hold_max_age
    )


def stop_requested(payment: Payment, now: datetime) -> Payment:
    return changed(payment, now, stop_requested_at=now)
