"""SubscriptionUsageFunction and SubscriptionInvoicingFunction (and the payments API's webhooks):
the subscription services, from their AWS and Stripe adapters."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from pydantic import Field, field_validator

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.stripe_billing import StripeBilling
from chargenet.adapters.subscriptions_dynamodb import (
    DynamoSubscriberStore,
    DynamoTagGate,
    SnsSubscriberAlerts,
)
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTariffBook
from chargenet.composition.settings import FunctionEnvironment, environment
from chargenet.domain.clock import utc_now
from chargenet.domain.subscriptions import DEFAULT_GRACE
from chargenet.services.subscriptions import SubscriberDesk, SubscriptionBilling


class SubscriptionEnvironment(FunctionEnvironment):
    # The template's SubscriptionGraceDays; unset or empty: the default 3 days.
    grace_days: int | None = Field(None, alias="SUBSCRIPTION_GRACE_DAYS")

    @field_validator("grace_days", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None

    @property
    def grace(self) -> timedelta:
        return DEFAULT_GRACE if self.grace_days is None else timedelta(days=self.grace_days)


@cache
def subscription_billing() -> SubscriptionBilling:
    env = environment(SubscriptionEnvironment)
    return SubscriptionBilling(
        store=DynamoSubscriberStore(),
        gateway=StripeBilling.from_environment(),
        tags=DynamoTagGate(),
        tariffs=DynamoTariffBook(),
        sessions=DynamoSessionStore(),
        cdrs=DynamoCdrStore(),
        alerts=SnsSubscriberAlerts(),
        grace=env.grace,
        clock=utc_now,
    )


def subscriber_desk() -> SubscriberDesk:
    environment(SubscriptionEnvironment)
    return SubscriberDesk(
        store=DynamoSubscriberStore(),
        gateway=StripeBilling.from_environment(),
        tags=DynamoTagGate(),
        tariffs=DynamoTariffBook(),
        clock=utc_now,
    )
