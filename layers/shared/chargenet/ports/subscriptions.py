"""Subscriptions: subscribers and plans, their tags, the provider's invoices, operator alerts (member
tariffs: tags_tariffs.MemberTariffs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chargenet.domain.models import TagStatus
    from chargenet.domain.payments import CheckoutCreated
    from chargenet.domain.subscriptions import InvoiceRun, InvoiceState, Line, Plan, Subscriber


class SubscriberStore(Protocol):
    def plan(self, plan_id: str) -> Plan | None: ...

    def save_plan(self, plan: Plan) -> None: ...

    def plans(self) -> list[Plan]: ...

    def get(self, id_tag: str) -> Subscriber | None: ...

    def create(self, subscriber: Subscriber) -> bool:
        """Store a new subscriber; False when the tag already has one."""
        ...

    def save(self, subscriber: Subscriber) -> bool:
        """Store the change unless the stored version is not `subscriber.version - 1`."""
        ...

    def subscribers(self) -> list[Subscriber]: ...

    def invoice_run(self, id_tag: str, period: str) -> InvoiceRun | None: ...

    def save_invoice_run(self, run: InvoiceRun) -> None: ...


class TagGate(Protocol):
    """The tag directory entries of subscribers (what Authorize/StartTransaction read)."""

    def register(self, id_tag: str, status: TagStatus) -> bool:
        """Create the tag; False when the tag exists (it belongs to someone already)."""
        ...

    def set_status(self, id_tag: str, status: TagStatus) -> None: ...


class BillingGateway(Protocol):
    """The provider's customers, saved cards and invoices (Stripe). Raises the PaymentProviderError family."""

    def create_customer(self, email: str, id_tag: str) -> str: ...

    def create_setup_checkout(
        self, customer_id: str, id_tag: str, currency: str, return_url: str
    ) -> CheckoutCreated: ...

    def saved_card(self, checkout_session_id: str) -> str | None:
        """The payment method a completed setup checkout saved, else None."""
        ...

    def set_default_card(self, customer_id: str, payment_method_id: str) -> None: ...

    def add_invoice_item(self, customer_id: str, line: Line) -> None: ...

    def create_invoice(self, customer_id: str, metadata: dict[str, str], idempotency_key: str) -> str: ...

    def pay_invoice(self, invoice_id: str) -> InvoiceState:
        """Finalize (when a draft) and charge the default card unless paid: PAID, or FAILED when
        declined. The provider never charges an invoice twice, so no idempotency key is needed."""
        ...

    def invoice_state(self, invoice_id: str) -> InvoiceState: ...


class OperatorAlerts(Protocol):
    def subscriber_blocked(self, subscriber: Subscriber) -> None: ...
