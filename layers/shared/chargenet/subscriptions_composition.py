"""The subscription services assembled from their AWS and Stripe adapters and the function's environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from functools import cache

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.stripe_billing import StripeBilling
from chargenet.adapters.subscriptions_dynamodb import (
    DynamoSubscriberStore,
    DynamoTagGate,
    SnsSubscriberAlerts,
)
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTariffBook
from chargenet.domain.clock import utc_now
from chargenet.domain.subscriptions import DEFAULT_GRACE
from chargenet.services.subscriptions import SubscriberDesk, SubscriptionBilling


def grace_from(environ: Mapping[str, str]) -> timedelta:
    """`SUBSCRIPTION_GRACE_DAYS` (the template's SubscriptionGraceDays), else the default 3 days."""
    days = environ.get("SUBSCRIPTION_GRACE_DAYS")
    return timedelta(days=int(days)) if days else DEFAULT_GRACE


@cache
def subscription_billing() -> SubscriptionBilling:
    return SubscriptionBilling(
        store=DynamoSubscriberStore(),
        gateway=StripeBilling.from_environment(),
        tags=DynamoTagGate(),
        tariffs=DynamoTariffBook(),
        sessions=DynamoSessionStore(),
        cdrs=DynamoCdrStore(),
        alerts=SnsSubscriberAlerts(),
        grace=grace_from(os.environ),
        clock=utc_now,
    )


def subscriber_desk() -> SubscriberDesk:
    return SubscriberDesk(
        store=DynamoSubscriberStore(),
        gateway=StripeBilling.from_environment(),
        tags=DynamoTagGate(),
        tariffs=DynamoTariffBook(),
        clock=utc_now,
    )
