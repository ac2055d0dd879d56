"""The operator API's payment use cases: payments (list, show, settle a failed one), refunds,
reconciliation with Stripe, a connector's pay link, subscribers (add, list, show, the monthly
invoicing) and plans (add, list).

Money moves only through the payment and subscription services (their rules and idempotency
keys). Permissions, the audit trail and cursors: chargenet.services.operator_access.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from chargenet.domain.billing import BillingRecord
from chargenet.domain.models import mask_tag
from chargenet.domain.money import parse_decimal, round_money, to_minor_units
from chargenet.domain.operators import Operator, Permission
from chargenet.domain.payments import (
    Payment,
    PaymentError,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentState,
    is_payment_tag,
)
from chargenet.domain.payments.reconciliation import StripeMoney, mismatch, money
from chargenet.domain.subscriptions import Plan, Subscriber, SubscriptionError, period
from chargenet.ports.payment_views import PaymentViews, StripeReader, SubscriberViews
from chargenet.services.operator_access import (
    BadRequest,
    Conflict,
    NotFound,
    OperatorAccess,
    RequestInfo,
    Unavailable,
    charger_target,
    checked_charger_id,
    require,
)
from chargenet.services.payments import CdrReader, PaymentSettlements, PaymentStore, SessionReader
from chargenet.services.subscriptions import SubscriberDesk, SubscriptionBilling

ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
TAG = re.compile(r"[A-Za-z0-9_-]{1,20}")  # an OCPP idToken is at most 20 characters
EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
MAX_GRACE_DAYS = 60
MAX_CONNECTOR_ID = 99


@dataclasses.dataclass(frozen=True)
class OperatorPayments:
    access: OperatorAccess
    payments: PaymentStore
    views: PaymentViews
    settlements: PaymentSettlements
    sessions: SessionReader
    cdrs: CdrReader
    stripe: StripeReader
    charger_exists: Callable[[str], bool]
    subscriber_views: SubscriberViews
    desk: SubscriberDesk
    billing: SubscriptionBilling
    clock: Callable[[], datetime]

    # ------------------------------------------------------------------ payments
    def payment_list(
        self, operator: Operator, state: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        require(operator, Permission.PAYMENTS_READ)
        wanted = _state(state)
        scope = f"payments?state={state or ''}"
        page = self.views.payments(wanted, limit, self.access.start(cursor, scope))
        return self.access.listing([self._view(p) for p in page.items], page, scope)

    def payment(self, operator: Operator, payment_id: str) -> dict[str, Any]:
        require(operator, Permission.PAYMENTS_READ)
        found = self.payments.get(_checked_id(payment_id, "payment id"))
        if found is None:
            raise NotFound(f"no payment {payment_id}")
        return self._view(found)

    def settle(
        self, operator: Operator, request: RequestInfo, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """A failed payment settled for its CDR total, or (`cancel`) its hold released."""
        require(operator, Permission.PAYMENTS_WRITE)
        targets = {"session_id": "(not read)"}
        with self.access.audited(operator, request, targets):
            body = read_body()
            session_id = _checked_id(body.get("session_id"), "session_id")
            targets["session_id"] = session_id
            cancel = body.get("cancel", False)
            if not isinstance(cancel, bool):
                raise BadRequest("cancel is true or false")
            payment = self._payment_of_session(session_id)
            targets["payment_id"] = payment.payment_id
            record = None if cancel else self.cdrs.get(session_id)
            if not cancel and record is None:
                raise Conflict(
                    f"session {session_id} has no CDR: nothing to capture (cancel releases the hold)"
                )
            with _money_errors("settle"):
                if record is None:
                    updated = self.settlements.release_failed(payment.payment_id)
                else:
                    updated = self.settlements.settle_failed(payment.payment_id, record)
            due = to_minor_units(record.total_incl_vat, updated.currency) if record else None
            return {"payment": self._view(updated), "cdr_total_incl_vat": money(due, updated.currency)}
        raise AssertionError("unreachable")  # pragma: no cover

    def refund(
        self, operator: Operator, request: RequestInfo, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Part or all of what is left of a session's capture; a request id already applied
        (the client's retry) refunds nothing more and answers the same refund."""
        require(operator, Permission.PAYMENTS_REFUND)
        targets = {"session_id": "(not read)"}
        with self.access.audited(operator, request, targets):
            body = read_body()
            session_id = _checked_id(body.get("session_id"), "session_id")
            targets["session_id"] = session_id
            request_id = body.get("request_id")
            # Required: a client that sends a refund again (its answer was lost) must not refund twice.
            if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
                raise BadRequest("request_id is 8 to 64 letters, digits, _ or -, the same for a retry")
            payment = self._payment_of_session(session_id)
            targets["payment_id"] = payment.payment_id
            amount = _minor_amount(body.get("amount"), payment.currency)
            if amount is not None:
                targets["amount"] = money(amount, payment.currency) or ""
            repeated = request_id in payment.refund_requests
            with _money_errors("refund"):
                updated = self.settlements.refund(payment.payment_id, amount, request_id)
            given = updated.refund_requests.get(request_id, 0)
            targets["amount"] = money(given, updated.currency) or ""
            return {
                "payment": self._view(updated),
                "refunded": money(given, updated.currency),
                "repeated": repeated,
            }
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ reconciliation
    def reconcile(
        self, operator: Operator, since: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """One page of CDRs ended since `since`: how many were paid through the link (`checked`)
        and those whose Stripe state does not match (`items`)."""
        require(operator, Permission.RECONCILE)
        start = _moment(since)
        scope = f"reconcile?since={start.isoformat()}"
        page = self.views.charged_cdrs(start, limit, self.access.start(cursor, scope))
        checked, mismatches = 0, []
        with _money_errors("reconcile"):
            for record in page.items:
                paid = self._paid(record)
                if paid is None:
                    continue  # a subscriber's or an RFID session: not paid through the link
                checked += 1
                found = mismatch(record, [(p, self._stripe_money(p)) for p in paid])
                if found is not None:
                    mismatches.append(dataclasses.asdict(found))
        return {**self.access.listing(mismatches, page, scope), "checked": checked}

    def pay_link(
        self, operator: Operator, charger_id: str, connector_id: str, base_url: str
    ) -> dict[str, Any]:
        """The URL a connector's QR code carries: the deployment's public base (PublicBaseUrl)."""
        require(operator, Permission.PAYMENTS_READ)
        checked_charger_id(charger_id)
        if not connector_id.isdigit() or not 1 <= int(connector_id) <= MAX_CONNECTOR_ID:
            raise BadRequest(f"connector id is a number from 1 to {MAX_CONNECTOR_ID}")
        if not self.charger_exists(charger_id):
            raise NotFound(f"no charger {charger_target(charger_id)}")
        url = f"{base_url.rstrip('/')}/pay/{charger_id}/{int(connector_id)}"
        return {"charger_id": charger_id, "connector_id": int(connector_id), "url": url}

    # ------------------------------------------------------------------ subscribers and plans
    def subscriber_list(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.SUBSCRIBERS_READ)
        page = self.subscriber_views.subscribers(limit, self.access.start(cursor, "subscribers"))
        return self.access.listing([s.model_dump(mode="json") for s in page.items], page, "subscribers")

    def subscriber(self, operator: Operator, id_tag: str) -> dict[str, Any]:
        require(operator, Permission.SUBSCRIBERS_READ)
        found = self.desk.store.get(_tag(id_tag))
        if found is None:
            raise NotFound(f"no subscriber with tag {mask_tag(id_tag)}")
        runs = self.subscriber_views.invoice_runs(id_tag, _periods(found, self.clock()))
        return {
            **found.model_dump(mode="json"),
            "tag_status": found.tag_status.value,
            "invoices": [r.model_dump(mode="json") for r in runs],
        }

    def add_subscriber(
        self, operator: Operator, request: RequestInfo, read_body: Callable[[], dict[str, Any]], base_url: str
    ) -> dict[str, Any]:
        """201: the subscriber, pending, with the hosted link where the driver saves the card."""
        require(operator, Permission.SUBSCRIBERS_WRITE)
        targets = {"tag": "(not read)"}
        with self.access.audited(operator, request, targets, ok_status=201):
            body = read_body()
            id_tag = _tag(body.get("tag"))
            targets["tag"] = mask_tag(id_tag)
            plan_id = _checked_id(body.get("plan", "basic"), "plan")
            targets["plan"] = plan_id
            email = body.get("email")
            if not isinstance(email, str) or len(email) > 254 or not EMAIL.fullmatch(email):
                raise BadRequest("email is not an e-mail address")
            with _money_errors("add the subscriber"):
                added = self.desk.add_subscriber(email, id_tag, plan_id, base_url)
            return added.model_dump(mode="json")
        raise AssertionError("unreachable")  # pragma: no cover

    def invoice(
        self,
        operator: Operator,
        request: RequestInfo,
        read_body: Callable[[], dict[str, Any]],
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        """One page of subscribers invoiced for the period (declined invoices retried, a new card
        may be saved by now), those past their grace blocked; the client follows `next`."""
        require(operator, Permission.SUBSCRIBERS_WRITE)
        targets = {"period": "(not read)"}
        with self.access.audited(operator, request, targets):
            body = read_body()
            name = body.get("period")
            if not isinstance(name, str):
                raise BadRequest("period is YYYY-MM")
            with _money_errors("invoice"):
                billed = period(name)
            targets["period"] = billed.name
            billing = self.billing
            grace_days = body.get("grace_days")
            if grace_days is not None:
                if (
                    not isinstance(grace_days, int)
                    or isinstance(grace_days, bool)
                    or not 0 <= grace_days <= MAX_GRACE_DAYS
                ):
                    raise BadRequest(f"grace_days is a whole number from 0 to {MAX_GRACE_DAYS}")
                billing = dataclasses.replace(billing, grace=timedelta(days=grace_days))
            scope = "invoice-runs"
            page = self.subscriber_views.subscribers(limit, self.access.start(cursor, scope))
            with _money_errors("invoice"):
                outcomes = billing.run_page(page.items, billed, retry_failed=True)
            listing = self.access.listing([], page, scope)
            return {"period": billed.name, "outcomes": dict(outcomes), "next": listing["next"]}
        raise AssertionError("unreachable")  # pragma: no cover

    def plan_list(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        # No plans.read in the permission table: whoever may read subscribers reads their plans.
        require(operator, Permission.SUBSCRIBERS_READ)
        page = self.subscriber_views.plans(limit, self.access.start(cursor, "plans"))
        return self.access.listing([p.model_dump(mode="json") for p in page.items], page, "plans")

    def set_plan(
        self, operator: Operator, request: RequestInfo, plan_id: str, read_body: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Create or replace a plan: a monthly fee and the member tariff (in the tariff book)."""
        require(operator, Permission.PLANS_WRITE)
        targets = {"plan": plan_id if ID.fullmatch(plan_id) else "(not a plan id)"}
        with self.access.audited(operator, request, targets):
            _checked_id(plan_id, "plan id")
            body = read_body()
            fee, currency, tariff = body.get("monthly_fee"), body.get("currency"), body.get("tariff")
            if not isinstance(fee, str) or not isinstance(currency, str) or not isinstance(tariff, str):
                raise BadRequest(
                    'the body is JSON: {"monthly_fee": "9.00", "currency": "EUR", "tariff": "..."}'
                )
            try:
                plan = Plan(plan_id=plan_id, monthly_fee=fee, currency=currency.upper(), tariff_id=tariff)  # type: ignore[arg-type]
            except ValidationError as error:
                raise BadRequest(f"invalid plan: {error.errors()[0]['msg']}") from None
            with _money_errors("add the plan"):
                return self.desk.add_plan(plan).model_dump(mode="json")
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ helpers
    def _view(self, payment: Payment) -> dict[str, Any]:
        record = self.cdrs.get(payment.session_id) if payment.session_id else None
        return payment_view(payment, record)

    def _payment_of_session(self, session_id: str) -> Payment:
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFound(f"no session {session_id}")
        payment = self.payments.by_tag(session.id_tag) if is_payment_tag(session.id_tag) else None
        if payment is None or payment.session_id not in (None, session_id):
            raise Conflict(f"session {session_id} was not paid through the pay link")
        return payment

    def _paid(self, record: BillingRecord) -> list[Payment] | None:
        """The payments of a CDR paid through the link (its session's tag); None: not a pay-link CDR."""
        session = self.sessions.get(record.session_id)
        if session is None or not is_payment_tag(session.id_tag):
            return None
        payment = self.payments.by_tag(session.id_tag)
        return [payment] if payment is not None else []

    def _stripe_money(self, payment: Payment) -> StripeMoney | None:
        if payment.payment_intent_id is None:
            return None
        facts = self.stripe.intent(payment.payment_intent_id)
        refunded = self.stripe.refunded_minor(facts.intent_id)
        return StripeMoney(facts.intent_id, facts.status, facts.amount_received, refunded)


def payment_view(payment: Payment, record: BillingRecord | None) -> dict[str, Any]:
    """A payment as `chargenet payment show --json` prints it."""
    c = payment.currency
    return {
        "payment_id": payment.payment_id,
        "state": payment.state.value,
        "reason": payment.reason.value if payment.reason else None,
        "charger_id": payment.charger_id,
        "connector_id": payment.connector_id,
        "method": payment.settlement.value,
        "held": money(payment.hold_minor, c),
        "captured": money(payment.captured_minor, c),
        "refunded": money(payment.refunded_minor, c),
        "kept": money(payment.kept_minor, c),
        "uncollected": money(payment.uncollected_minor, c),
        "session_id": payment.session_id,
        "cdr_total_incl_vat": f"{record.total_incl_vat} {record.currency}" if record else None,
        "stripe_checkout_session": payment.checkout_session_id,
        "stripe_payment_intent": payment.payment_intent_id,
        "failure": payment.failure,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
    }


@contextmanager
def _money_errors(action: str) -> Iterator[None]:
    """The rules' refusals (409 or 400) and Stripe's trouble (503: try again) as the API answers them."""
    try:
        yield
    except PaymentProviderUnavailable as error:
        raise Unavailable(f"Stripe did not answer ({action}): {error}") from None
    except PaymentProviderError as error:
        raise Conflict(f"Stripe refused to {action}: {error}") from None
    except PaymentError as error:
        raise Conflict(f"{action} refused: {error}") from None
    except SubscriptionError as error:
        raise BadRequest(str(error)) from None


def _state(value: str | None) -> PaymentState | None:
    if value is None or value == "":
        return None
    try:
        return PaymentState(value)
    except ValueError:
        raise BadRequest(f"state is one of {', '.join(s.value for s in PaymentState)}") from None


def _checked_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise BadRequest(f"{what} is 1 to 64 letters, digits, _ . : or -")
    return value


def _tag(value: object) -> str:
    if not isinstance(value, str) or not TAG.fullmatch(value):
        raise BadRequest("tag is 1 to 20 letters, digits, _ or -")
    return value


def _minor_amount(amount: object, currency: str) -> int | None:
    """The amount in major units ("12.50") as minor units; None: all that is left."""
    if amount is None:
        return None
    try:
        value: Decimal = parse_decimal(amount)
    except (TypeError, ValueError, ArithmeticError):
        raise BadRequest(f'amount must be a decimal amount in {currency}, like "12.50"') from None
    if value <= 0:
        raise BadRequest("amount must be more than zero")
    if value != round_money(value, currency):
        raise BadRequest(f"amount {amount}: more decimals than {currency} has")
    return to_minor_units(value, currency)


def _moment(value: str | None) -> datetime:
    if not value:
        raise BadRequest("since is required: an ISO date or date-time (UTC if naive)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"since is not an ISO date: {value[:40]!a}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _periods(subscriber: Subscriber, now: datetime) -> list[str]:
    """The months a subscriber can have been invoiced for: from its sign-up to next month."""
    month = subscriber.created_at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    this_month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (this_month + timedelta(days=32)).replace(day=1)
    found = []
    while month <= last:
        found.append(f"{month:%Y-%m}")
        month = (month + timedelta(days=32)).replace(day=1)
    return found
