"""Subscribers: drivers who charge with an RFID tag and pay a monthly invoice (pure rules).

A subscriber is pending until the card is saved on the hosted setup page, then active. A failed
invoice makes it past due (the tag still works, the driver gets time to fix the card); once the
grace period is over the tag is blocked until the invoice is paid.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import TagStatus
from chargenet.domain.money import minor_unit_exponent, parse_decimal, round_money, to_minor_units

DEFAULT_GRACE = timedelta(days=3)
PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class SubscriptionError(ValueError):
    """A request the rules refuse (unknown plan, bad period, ...): the operator fixes the input."""


class SubscriberState(StrEnum):
    PENDING = "pending"  # customer created, no card saved yet
    ACTIVE = "active"
    PAST_DUE = "past_due"  # an invoice failed: the tag still works during the grace period
    BLOCKED = "blocked"  # the grace period ended unpaid: the tag is refused until paid


# What Authorize/StartTransaction answer for the tag in each state.
TAG_STATUS = {
    SubscriberState.PENDING: TagStatus.BLOCKED,
    SubscriberState.ACTIVE: TagStatus.ACCEPTED,
    SubscriberState.PAST_DUE: TagStatus.ACCEPTED,
    SubscriberState.BLOCKED: TagStatus.BLOCKED,
}


class Plan(BaseModel):
    """A monthly fee and the member tariff (an OCPI tariff id in the tariff book)."""

    model_config = ConfigDict(frozen=True)

    plan_id: str
    monthly_fee: Decimal
    currency: str
    tariff_id: str

    @field_validator("monthly_fee", mode="before")
    @classmethod
    def _exact(cls, value: object) -> Decimal:
        try:
            return parse_decimal(value)
        except TypeError as error:  # a float: pydantic reports ValueErrors as validation errors
            raise ValueError(str(error)) from error

    @model_validator(mode="after")
    def _valid_money(self) -> Plan:
        minor_unit_exponent(self.currency)  # raises for an unknown currency
        if self.monthly_fee < 0 or round_money(self.monthly_fee, self.currency) != self.monthly_fee:
            raise ValueError(f"the monthly fee must be a non-negative amount in {self.currency}")
        return self


class Subscriber(BaseModel):
    model_config = ConfigDict(frozen=True)

    id_tag: str
    email: str
    plan_id: str
    customer_id: str
    state: SubscriberState = SubscriberState.PENDING
    created_at: datetime
    setup_url: str | None = None
    payment_method_id: str | None = None
    activated_at: datetime | None = None
    past_due_since: datetime | None = None
    blocked_at: datetime | None = None
    version: int = 0  # optimistic locking: each save is conditional on the version read

    @property
    def tag_status(self) -> TagStatus:
        return TAG_STATUS[self.state]


def _next(subscriber: Subscriber, **changes: object) -> Subscriber:
    return subscriber.model_copy(update={**changes, "version": subscriber.version + 1})


def card_saved(subscriber: Subscriber, payment_method_id: str, at: datetime) -> Subscriber:
    """The card is the default payment method now; a pending subscriber becomes active."""
    if subscriber.payment_method_id == payment_method_id and subscriber.state is not SubscriberState.PENDING:
        return subscriber  # a repeated webhook
    if subscriber.state is SubscriberState.PENDING:
        return _next(
            subscriber, payment_method_id=payment_method_id, state=SubscriberState.ACTIVE, activated_at=at
        )
    # A new card does not settle a failed invoice: only a paid invoice does.
    return _next(subscriber, payment_method_id=payment_method_id)


def payment_failed(subscriber: Subscriber, at: datetime) -> Subscriber:
    if subscriber.state is not SubscriberState.ACTIVE:
        return subscriber  # already past due or blocked: the grace runs from the first failure
    return _next(subscriber, state=SubscriberState.PAST_DUE, past_due_since=at)


def grace_over(subscriber: Subscriber, grace: timedelta, now: datetime) -> bool:
    return (
        subscriber.state is SubscriberState.PAST_DUE
        and subscriber.past_due_since is not None
        and now >= subscriber.past_due_since + grace
    )


def block_if_grace_over(subscriber: Subscriber, grace: timedelta, now: datetime) -> Subscriber:
    if not grace_over(subscriber, grace, now):
        return subscriber
    return _next(subscriber, state=SubscriberState.BLOCKED, blocked_at=now)


def paid(subscriber: Subscriber) -> Subscriber:
    """An invoice was paid: a past-due or blocked subscriber is active again."""
    if subscriber.state not in (SubscriberState.PAST_DUE, SubscriberState.BLOCKED):
        return subscriber
    return _next(subscriber, state=SubscriberState.ACTIVE, past_due_since=None, blocked_at=None)


class Period(BaseModel):
    """A calendar month in UTC, `YYYY-MM`."""

    model_config = ConfigDict(frozen=True)

    name: str
    start: datetime
    end: datetime  # exclusive


def period(name: str) -> Period:
    match = PERIOD_PATTERN.match(name)
    if match is None:
        raise SubscriptionError(f"{name!r} is not a period: expected YYYY-MM")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return Period(name=name, start=start, end=end)


def previous_period(now: datetime) -> Period:
    """The month that ended last: what the scheduled run invoices."""
    last_month = now.astimezone(UTC).replace(day=1) - timedelta(days=1)
    return period(f"{last_month:%Y-%m}")


def billable(subscriber: Subscriber, billed: Period) -> bool:
    """A subscriber pays for a month only when it was active before that month ended."""
    return (
        subscriber.state is not SubscriberState.PENDING
        and subscriber.activated_at is not None
        and subscriber.activated_at < billed.end
    )


class Line(BaseModel):
    """An invoice item in minor units, created once per idempotency key."""

    model_config = ConfigDict(frozen=True)

    amount_minor: int
    currency: str
    description: str
    idempotency_key: str
    metadata: dict[str, str]


def usage_line(record: BillingRecord, id_tag: str) -> Line:
    """A CDR as the subscriber's usage line: its total incl. VAT, keyed by the CDR id so a replayed
    stream record never bills twice. Times are the site's, as the driver saw them on the wall."""
    kwh = (Decimal(record.energy_wh) / 1000).quantize(Decimal("0.001"))
    zone = ZoneInfo(record.time_zone)
    start, end = record.start_date_time.astimezone(zone), record.end_date_time.astimezone(zone)
    return Line(
        amount_minor=to_minor_units(record.total_incl_vat, record.currency),
        currency=record.currency,
        description=(
            f"Charging session {record.session_id}: {kwh} kWh, "
            f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} {record.time_zone}"
        ),
        idempotency_key=f"usage-{record.cdr_id}",
        metadata={"cdr_id": record.cdr_id, "session_id": record.session_id, "id_tag": id_tag},
    )


def fee_line(subscriber: Subscriber, plan: Plan, billed: Period) -> Line:
    return Line(
        amount_minor=to_minor_units(plan.monthly_fee, plan.currency),
        currency=plan.currency,
        description=f"{plan.plan_id} monthly fee {billed.name}",
        idempotency_key=f"fee-{subscriber.id_tag}-{billed.name}",
        metadata={"id_tag": subscriber.id_tag, "period": billed.name},
    )


def invoice_key(subscriber: Subscriber, billed: Period) -> str:
    return f"invoice-{subscriber.id_tag}-{billed.name}"


class InvoiceState(StrEnum):
    OPEN = "open"  # created, payment not (yet) succeeded
    PAID = "paid"
    FAILED = "failed"  # the payment attempt was declined


class InvoiceRun(BaseModel):
    """One subscriber's invoice for one period: the record that makes the monthly run idempotent
    beyond the provider's 24 h idempotency window."""

    model_config = ConfigDict(frozen=True)

    id_tag: str
    period: str
    invoice_id: str
    state: InvoiceState = InvoiceState.OPEN
