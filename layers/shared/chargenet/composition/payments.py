"""PaymentsApiFunction, PaymentCaptureFunction and PaymentSweepFunction: the payment services,
from their AWS and Stripe adapters."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.dynamodb import DynamoChargerRegistry, DynamoPendingCalls
from chargenet.adapters.iot_data import IotDataChannel
from chargenet.adapters.payment_metrics import EmfPaymentAlarm
from chargenet.adapters.payments_dynamodb import DynamoPaymentStore, DynamoProcessedEvents
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.stripe_gateway import StripeGateway, StripeWebhookVerifier
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.composition.settings import FunctionEnvironment, environment
from chargenet.composition.subscriptions import subscription_billing
from chargenet.domain.clock import utc_now
from chargenet.domain.payments import load_config
from chargenet.services.commands import ChargerCommands
from chargenet.services.payments import (
    BillingCapture,
    PaymentAuthorizations,
    PaymentDesk,
    PaymentMonitor,
    PaymentSettlements,
    ProviderWebhooks,
)


class PaymentsApiEnvironment(BaseModel):
    """The payments API's own setting, read per request (a function's environment never changes
    in a container; the tests change it between requests)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    public_base_url: str = Field("", alias="PUBLIC_BASE_URL")


def public_base_url() -> str:
    """The template's PublicBaseUrl, without a trailing slash; empty when unset."""
    return PaymentsApiEnvironment.model_validate(dict(os.environ)).public_base_url.rstrip("/")


@dataclass(frozen=True)
class PaymentServices:
    desk: PaymentDesk
    settlements: PaymentSettlements
    authorizations: PaymentAuthorizations
    capture: BillingCapture
    monitor: PaymentMonitor


@cache
def payment_services() -> PaymentServices:
    """One set per container: the Stripe key is read on the first money call, once."""
    environment(FunctionEnvironment)
    config = load_config(os.environ)
    payments, gateway, tags = DynamoPaymentStore(), StripeGateway.from_environment(), DynamoTagDirectory()
    registry, pending, sessions, cdrs = (
        DynamoChargerRegistry(),
        DynamoPendingCalls(),
        DynamoSessionStore(),
        DynamoCdrStore(),
    )
    commands = ChargerCommands(registry, pending, IotDataChannel(), utc_now)
    settlements = PaymentSettlements(payments, gateway, tags, EmfPaymentAlarm(), config, utc_now)
    authorizations = PaymentAuthorizations(payments, gateway, tags, commands, settlements, config, utc_now)
    capture = BillingCapture(payments, sessions, cdrs, settlements, utc_now)
    return PaymentServices(
        desk=PaymentDesk(registry, DynamoTariffBook(), payments, gateway, config, utc_now),
        settlements=settlements,
        authorizations=authorizations,
        capture=capture,
        monitor=PaymentMonitor(
            payments,
            sessions,
            cdrs,
            registry,
            pending,
            commands,
            gateway,
            authorizations,
            settlements,
            capture,
            config,
            utc_now,
        ),
    )


@cache
def provider_webhooks() -> ProviderWebhooks:
    return ProviderWebhooks(
        StripeWebhookVerifier.from_environment(),
        DynamoProcessedEvents(),
        payment_services().authorizations,
        utc_now,
        subscriptions=subscription_billing(),
    )
