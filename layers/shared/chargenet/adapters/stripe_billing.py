"""Stripe behind the subscription ports: customers, Checkout in setup mode, invoice items, invoices.

Same client, key handling and error mapping as the payment gateway (`StripeGateway`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chargenet.adapters.stripe_gateway import StripeGateway, _id_of, _mapped_errors
from chargenet.domain.payments import CheckoutCreated, PaymentDeclined
from chargenet.domain.subscriptions import InvoiceState, Line
from chargenet.ports.subscriptions import BillingGateway

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams


class StripeBilling(StripeGateway, BillingGateway):
    def create_customer(self, email: str, id_tag: str) -> str:
        with _mapped_errors():
            customer = self._client.v1.customers.create(
                {"email": email, "metadata": {"id_tag": id_tag}},
                options={"idempotency_key": f"customer-{id_tag}"},
            )
        return customer.id

    def create_setup_checkout(
        self, customer_id: str, id_tag: str, currency: str, return_url: str
    ) -> CheckoutCreated:
        # stripe 16 (API 2026-10-28) no longer types payment_method_types on create; the API still takes it.
        params: SessionCreateParams = {  # type: ignore[typeddict-unknown-key]
            "mode": "setup",
            "customer": customer_id,
            "currency": currency.lower(),
            "payment_method_types": ["card"],
            # The webhook finds the subscriber by this, and knows it is not an ad-hoc payment.
            "metadata": {"subscriber_tag": id_tag},
            "setup_intent_data": {"metadata": {"subscriber_tag": id_tag}},
            "success_url": return_url,
            "cancel_url": return_url,
        }
        with _mapped_errors():
            session = self._client.v1.checkout.sessions.create(params)
        return CheckoutCreated(checkout_session_id=session.id, url=str(session.url))

    def saved_card(self, checkout_session_id: str) -> str | None:
        with _mapped_errors():
            session = self._client.v1.checkout.sessions.retrieve(checkout_session_id)
            setup_intent_id = _id_of(session.setup_intent)
            if session.status != "complete" or setup_intent_id is None:
                return None
            setup = self._client.v1.setup_intents.retrieve(setup_intent_id)
        return _id_of(setup.payment_method) if setup.status == "succeeded" else None

    def set_default_card(self, customer_id: str, payment_method_id: str) -> None:
        with _mapped_errors():
            self._client.v1.customers.update(
                customer_id, {"invoice_settings": {"default_payment_method": payment_method_id}}
            )

    def add_invoice_item(self, customer_id: str, line: Line) -> None:
        with _mapped_errors():
            self._client.v1.invoice_items.create(
                {
                    "customer": customer_id,
                    "amount": line.amount_minor,
                    "currency": line.currency.lower(),
                    "description": line.description,
                    "metadata": line.metadata,
                },
                options={"idempotency_key": line.idempotency_key},
            )

    def create_invoice(self, customer_id: str, metadata: dict[str, str], idempotency_key: str) -> str:
        with _mapped_errors():
            invoice = self._client.v1.invoices.create(
                {
                    "customer": customer_id,
                    # Since API 2022-08-01 a new invoice leaves pending items out unless asked.
                    "pending_invoice_items_behavior": "include",
                    "metadata": metadata,
                },
                options={"idempotency_key": idempotency_key},
            )
        return invoice.id

    def pay_invoice(self, invoice_id: str) -> InvoiceState:
        if self.invoice_state(invoice_id) is InvoiceState.PAID:
            return InvoiceState.PAID  # paying again would be refused ("already paid")
        try:
            with _mapped_errors():
                # Paying a draft finalizes it first (Stripe: "automatically finalizes drafts before
                # attempting payment"), so this is finalize + charge the default card in one call.
                invoice = self._client.v1.invoices.pay(invoice_id)
        except PaymentDeclined:
            return InvoiceState.FAILED
        return InvoiceState.PAID if invoice.status == "paid" else InvoiceState.FAILED

    def invoice_state(self, invoice_id: str) -> InvoiceState:
        with _mapped_errors():
            invoice = self._client.v1.invoices.retrieve(invoice_id)
        if invoice.status == "paid":
            return InvoiceState.PAID
        attempted = invoice.status == "open" and bool(getattr(invoice, "attempted", False))
        return InvoiceState.FAILED if attempted else InvoiceState.OPEN
