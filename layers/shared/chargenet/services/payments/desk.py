"""The pay page and the checkout: what a connector costs, and the payment and hosted checkout
a driver opens for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from chargenet.domain import payments as rules
from chargenet.domain.models import Charger
from chargenet.domain.payments import (
    Availability,
    CheckoutMethod,
    PaymentConfig,
    PaymentProviderError,
    Reason,
)
from chargenet.domain.tariffs import PriceDisplay, TariffError, describe, load_tariff, price_display
from chargenet.ports.registry import ChargerRegistry
from chargenet.ports.tags_tariffs import TariffBook
from chargenet.services.payments.ports import PaymentGateway, PaymentStore

TOO_MANY_CHECKOUTS = "too_many_checkouts"


class CheckoutRefused(Exception):
    """No payment for this connector now; `availability` (or no price, or TOO_MANY_CHECKOUTS) says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PayPage:
    charger_id: str
    connector_id: int
    availability: Availability
    display: PriceDisplay | None
    price_lines: list[str]
    hold_minor: int | None
    methods: list[CheckoutMethod]

    @property
    def payable(self) -> bool:
        return self.availability is Availability.AVAILABLE and self.display is not None and bool(self.methods)


@dataclass(frozen=True)
class CheckoutStarted:
    payment_id: str
    url: str


@dataclass(frozen=True)
class PaymentDesk:
    registry: ChargerRegistry
    tariffs: TariffBook
    payments: PaymentStore
    gateway: PaymentGateway
    config: PaymentConfig
    clock: Callable[[], datetime]
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    new_token: Callable[[], str] = rules.new_driver_token
    new_tag: Callable[[], str] = rules.new_payment_tag

    def pay_page(self, charger_id: str, connector_id: int) -> PayPage | None:
        """None when there is no such charger."""
        charger = self.registry.get(charger_id)
        if charger is None:
            return None
        availability = rules.connector_availability(
            charger, self.registry.connectors(charger_id), connector_id
        )
        display = self._price(charger, connector_id)
        currency = display.currency if display else None
        return PayPage(
            charger_id=charger_id,
            connector_id=connector_id,
            availability=availability,
            display=display,
            price_lines=describe(display) if display else [],
            hold_minor=self.config.hold_minor(currency) if currency else None,
            methods=self.config.methods_for(currency) if currency else [],
        )

    def _price(self, charger: Charger, connector_id: int) -> PriceDisplay | None:
        in_force = self.tariffs.in_force(charger.charger_id, connector_id)
        if in_force is None:
            return None
        try:
            return price_display(load_tariff(in_force[1]), self.clock(), self.registry.time_zone_of(charger))
        except TariffError:  # not in force right now (its dates): nothing to sell
            return None

    def open_checkout(
        self,
        charger_id: str,
        connector_id: int,
        method: CheckoutMethod,
        base_url: str,
        page: PayPage | None = None,
    ) -> CheckoutStarted:
        """A payment and its hosted checkout, which returns the driver to the session page.

        `base_url` is the deployment's public URL, from configuration: never the request's Host.
        `page`: the pay page of this connector the caller read just now (the API reads it before
        the request body), so it is not read twice."""
        page = page or self.pay_page(charger_id, connector_id)
        if page is None or page.display is None or not page.payable or method not in page.methods:
            raise CheckoutRefused(page.availability.value if page and not page.payable else "not_offered")
        now, token, payment_id = self.clock(), self.new_token(), self.new_id()
        until = now + self.config.checkout_ttl
        slots = self.config.checkouts_per_connector
        if not self.payments.reserve_checkout(charger_id, connector_id, payment_id, now, until, slots):
            raise CheckoutRefused(TOO_MANY_CHECKOUTS)
        payment = rules.new_payment(
            self.config,
            payment_id=payment_id,
            token=token,
            id_tag=self.new_tag(),
            charger_id=charger_id,
            connector_id=connector_id,
            currency=page.display.currency,
            method=method,
            now=now,
        )
        # Stored before the provider hears of it: every webhook finds its payment.
        self.payments.create(payment)
        request = rules.checkout_request(
            payment,
            self.config,
            success_url=f"{base_url}/session/{token}",
            cancel_url=f"{base_url}/pay/{charger_id}/{connector_id}",
            now=now,
        )
        try:
            created = self.gateway.create_checkout(request)
        except PaymentProviderError:
            self.payments.save(rules.checkout_ended(payment, Reason.CHECKOUT_FAILED, self.clock()))
            raise
        self.payments.save(rules.checkout_opened(payment, created, self.clock()))
        return CheckoutStarted(payment_id=payment.payment_id, url=created.url)
