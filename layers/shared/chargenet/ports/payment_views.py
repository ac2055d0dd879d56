"""What operators list of payments, paid CDRs, subscribers and plans: one page (one Scan or Query
of at most `limit` items) per call, and a subscriber's invoices by their keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from chargenet.domain.billing import BillingRecord
from chargenet.domain.payments import IntentFacts, Payment, PaymentState
from chargenet.domain.subscriptions import InvoiceRun, Plan, Subscriber
from chargenet.ports.audit import Key, Page


class PaymentViews(Protocol):
    def payments(self, state: PaymentState | None, limit: int, start: Key | None) -> Page[Payment]:
        """A page of payments, of one state (its index, oldest first) or of any."""
        ...

    def charged_cdrs(self, since: datetime, limit: int, start: Key | None) -> Page[BillingRecord]:
        """A page of the session CDRs (no credit notes) that ended at or after `since`."""
        ...


class SubscriberViews(Protocol):
    def subscribers(self, limit: int, start: Key | None) -> Page[Subscriber]: ...

    def plans(self, limit: int, start: Key | None) -> Page[Plan]: ...

    def invoice_runs(self, id_tag: str, periods: Sequence[str]) -> list[InvoiceRun]:
        """The subscriber's invoice runs of these periods (those that exist), by period."""
        ...


class StripeReader(Protocol):
    """What reconciliation reads of the provider (StripeGateway)."""

    def intent(self, intent_id: str) -> IntentFacts: ...

    def refunded_minor(self, intent_id: str) -> int: ...
