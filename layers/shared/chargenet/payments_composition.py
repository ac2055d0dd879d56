"""The payment services assembled from their AWS and Stripe adapters and the function's environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.dynamodb import DynamoChargerRegistry, DynamoPendingCalls
from chargenet.adapters.iot_data import IotDataChannel
from chargenet.adapters.payment_metrics import EmfPaymentAlarm
from chargenet.adapters.payments_dynamodb import DynamoPaymentStore, DynamoProcessedEvents
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.stripe_gateway import StripeGateway, StripeWebhookVerifier
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.clock import utc_now
from chargenet.domain.payments import load_config
from chargenet.services.commands import ChargerCommands
from chargenet.services.payment_monitor import PaymentMonitor
from chargenet.services.payment_webhooks import ProviderWebhooks
from chargenet.services.payments import (
    BillingCapture,
    PaymentAuthorizations,
    PaymentDesk,
    PaymentSettlements,
)
from chargenet.subscriptions_composition import subscription_billing


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
