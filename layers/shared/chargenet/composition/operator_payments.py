"""OperatorPaymentsFunction: the operator's payment, subscriber and plan use cases, from DynamoDB,
Stripe (its key from Secrets Manager) and the operator access (audit trail, cursor key)."""

from __future__ import annotations

import os
from functools import cache

from pydantic import Field

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.dynamodb import DynamoChargerRegistry
from chargenet.adapters.operator_payments_dynamodb import DynamoPaymentViews, DynamoSubscriberViews
from chargenet.adapters.payment_metrics import EmfPaymentAlarm
from chargenet.adapters.payments_dynamodb import DynamoPaymentStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.stripe_billing import StripeBilling
from chargenet.adapters.stripe_gateway import StripeGateway
from chargenet.adapters.subscriptions_dynamodb import (
    DynamoSubscriberStore,
    DynamoTagGate,
    SnsSubscriberAlerts,
)
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.composition.operator_api import OperatorAccessEnvironment, operator_access
from chargenet.composition.settings import environment
from chargenet.composition.subscriptions import SubscriptionEnvironment
from chargenet.domain.clock import utc_now
from chargenet.domain.payments import load_config
from chargenet.services.operator_payments import OperatorPayments
from chargenet.services.payments import PaymentSettlements
from chargenet.services.subscriptions import SubscriberDesk, SubscriptionBilling


class OperatorPaymentsEnvironment(OperatorAccessEnvironment, SubscriptionEnvironment):
    """Its tables, the Stripe key's secret (STRIPE_SECRET_ARN, read by the Stripe adapters) and
    the drivers' public base URL (the template's PublicBaseUrl; empty: the API's own domain)."""

    stripe_secret_arn: str = Field(alias="STRIPE_SECRET_ARN")
    public_base_url: str = Field("", alias="PUBLIC_BASE_URL")


@cache
def operator_payments() -> OperatorPayments:
    env = environment(OperatorPaymentsEnvironment)
    payments, sessions, cdrs = DynamoPaymentStore(), DynamoSessionStore(), DynamoCdrStore()
    gateway = StripeGateway.from_environment()
    store, billing_gateway, tags, tariffs = (
        DynamoSubscriberStore(),
        StripeBilling.from_environment(),
        DynamoTagGate(),
        DynamoTariffBook(),
    )
    registry = DynamoChargerRegistry()
    settlements = PaymentSettlements(
        payments, gateway, DynamoTagDirectory(), EmfPaymentAlarm(), load_config(os.environ), utc_now
    )
    return OperatorPayments(
        access=operator_access(env),
        payments=payments,
        views=DynamoPaymentViews(),
        settlements=settlements,
        sessions=sessions,
        cdrs=cdrs,
        stripe=gateway,
        charger_exists=lambda charger_id: registry.get(charger_id) is not None,
        subscriber_views=DynamoSubscriberViews(),
        desk=SubscriberDesk(store, billing_gateway, tags, tariffs, utc_now),
        billing=SubscriptionBilling(
            store, billing_gateway, tags, tariffs, sessions, cdrs, SnsSubscriberAlerts(), env.grace, utc_now
        ),
        clock=utc_now,
    )


def public_base_url() -> str:
    """PublicBaseUrl without a trailing slash; empty when unset."""
    return environment(OperatorPaymentsEnvironment).public_base_url.rstrip("/")
