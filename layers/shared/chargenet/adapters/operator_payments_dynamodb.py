"""DynamoDB adapters of the operator payments API: one-page listings of payments, CDRs since a
date, subscribers and plans, and a subscriber's invoice runs by key (never a whole-table scan)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chargenet.adapters.audit_dynamodb import _raw
from chargenet.adapters.cdrs_dynamodb import CdrItem
from chargenet.adapters.payments_dynamodb import PaymentItem
from chargenet.adapters.subscriptions_dynamodb import INVOICE, PLAN, SUBSCRIBER, SubscriptionItem
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.billing import BillingRecord
from chargenet.domain.payments import Payment, PaymentState
from chargenet.domain.subscriptions import InvoiceRun, Plan, Subscriber
from chargenet.ports.audit import Key, Page
from chargenet.ports.payment_views import PaymentViews, SubscriberViews

# A BatchGetItem call reads at most 100 keys.
MAX_BATCH_KEYS = 100


@raises_store_unavailable
class DynamoPaymentViews(PaymentViews):
    def payments(self, state: PaymentState | None, limit: int, start: Key | None) -> Page[Payment]:
        connection = PaymentItem._get_connection()
        if state is not None:
            found = connection.query(
                state.value, index_name="by-state", limit=limit, exclusive_start_key=start
            )
        else:
            # Checkout slots share the table without a state: the filter leaves them out.
            found = connection.scan(
                filter_condition=PaymentItem.state.exists(), limit=limit, exclusive_start_key=_raw(start)
            )
        items = [PaymentItem.from_raw_data(item).to_domain() for item in found.get("Items", [])]
        return Page(items, found.get("LastEvaluatedKey"))

    def charged_cdrs(self, since: datetime, limit: int, start: Key | None) -> Page[BillingRecord]:
        condition = (CdrItem.end_date_time >= since) & CdrItem.credit_reference_id.does_not_exist()
        found = CdrItem._get_connection().scan(
            filter_condition=condition, limit=limit, exclusive_start_key=_raw(start)
        )
        records = [CdrItem.from_raw_data(item).to_domain() for item in found.get("Items", [])]
        return Page(sorted(records, key=lambda r: r.end_date_time), found.get("LastEvaluatedKey"))


@raises_store_unavailable
class DynamoSubscriberViews(SubscriberViews):
    def subscribers(self, limit: int, start: Key | None) -> Page[Subscriber]:
        items, next_key = _page(SUBSCRIBER, limit, start)
        found = sorted((Subscriber.model_validate_json(i.body) for i in items), key=lambda s: s.id_tag)
        return Page(found, next_key)

    def plans(self, limit: int, start: Key | None) -> Page[Plan]:
        items, next_key = _page(PLAN, limit, start)
        return Page(
            sorted((Plan.model_validate_json(i.body) for i in items), key=lambda p: p.plan_id), next_key
        )

    def invoice_runs(self, id_tag: str, periods: Sequence[str]) -> list[InvoiceRun]:
        keys = [f"{INVOICE}#{id_tag}#{period}" for period in periods][-MAX_BATCH_KEYS:]
        runs = (InvoiceRun.model_validate_json(i.body) for i in SubscriptionItem.batch_get(keys))
        return sorted(runs, key=lambda r: r.period)


def _page(kind: str, limit: int, start: Key | None) -> tuple[list[SubscriptionItem], Key | None]:
    found: dict[str, Any] = SubscriptionItem._get_connection().scan(
        filter_condition=SubscriptionItem.kind == kind, limit=limit, exclusive_start_key=_raw(start)
    )
    items = [SubscriptionItem.from_raw_data(item) for item in found.get("Items", [])]
    return items, found.get("LastEvaluatedKey")
