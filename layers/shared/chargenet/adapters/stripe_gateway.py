"""Stripe behind the payment ports: hosted Checkout, PaymentIntents, refunds, webhook signatures.

stripe is imported on first use, not at module import: the pay page and the sweep's quiet runs
never load it, and a cold start is what a driver waits for in front of the charger.
Keys come from Secrets Manager, read once per container. `STRIPE_API_BASE` points the client at
another API host (the local stack's checkout front); everything else is real Stripe behaviour.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self

import boto3

from chargenet.domain.payments import (
    CheckoutCreated,
    CheckoutFacts,
    CheckoutRequest,
    IntentFacts,
    PaymentDeclined,
    PaymentProviderError,
    PaymentProviderUnavailable,
    Settlement,
    WebhookRejected,
)
from chargenet.services.payments.ports import PaymentGateway, WebhookVerifier

if TYPE_CHECKING:
    from stripe import StripeClient
    from stripe._base_address import BaseAddresses  # private module: StripeClient's own annotation
    from stripe.params.checkout import SessionCreateParams, SessionCreateParamsPaymentIntentData

WEBHOOK_TOLERANCE_S = 300  # SPEC section 6: older signatures are replays
# A hung Stripe must fail the call well inside the shortest Lambda timeout that calls it (payments
# API 15 s, capture 30 s with up to three attempts): stripe's own default waits 80 s per try.
STRIPE_TIMEOUT_S = 8.0


def read_secret(secret_arn: str) -> str:
    value: str = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    return value.strip()


def _checked(value: str, prefixes: tuple[str, ...], what: str) -> str:
    # A placeholder (the template generates a random one until the operator stores the real key)
    # must fail loudly, never act as a key: an unset webhook secret once accepted everything.
    if not value.startswith(prefixes):
        raise PaymentProviderUnavailable(
            f"the {what} secret is not set (expected {' or '.join(prefixes)}...)"
        )
    return value


class StripeGateway(PaymentGateway):
    """Implements chargenet.services.payments.PaymentGateway."""

    def __init__(self, api_key: Callable[[], str], api_base: str | None = None) -> None:
        self._api_key = api_key
        self._api_base = api_base
        self._stripe: StripeClient | None = None

    @classmethod
    def from_environment(cls) -> Self:  # StripeBilling too: its own class
        arn = os.environ["STRIPE_SECRET_ARN"]
        return cls(api_key=lambda: read_secret(arn), api_base=os.environ.get("STRIPE_API_BASE") or None)

    @property
    def _client(self) -> StripeClient:
        if self._stripe is None:  # the key is read once per gateway, on the first money call
            import stripe

            key = _checked(self._api_key(), ("sk_", "rk_"), "Stripe API key")
            base: BaseAddresses | None = {"api": self._api_base} if self._api_base else None
            self._stripe = stripe.StripeClient(
                key,
                base_addresses=base,
                http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_S),
                # Retries belong to the services (same idempotency key, then the sweep's backoff):
                # stripe's own on top would multiply the attempts past the Lambda timeout.
                max_network_retries=0,
            )
        return self._stripe

    def create_checkout(self, request: CheckoutRequest) -> CheckoutCreated:
        params = _checkout_params(request)
        with _mapped_errors():
            session = self._client.v1.checkout.sessions.create(
                params, options={"idempotency_key": request.idempotency_key}
            )
        return CheckoutCreated(checkout_session_id=session.id, url=str(session.url))

    def checkout(self, checkout_session_id: str) -> CheckoutFacts:
        with _mapped_errors():
            session = self._client.v1.checkout.sessions.retrieve(checkout_session_id)
        return CheckoutFacts(
            checkout_session_id=session.id,
            status=str(session.status),
            payment_intent_id=_id_of(session.payment_intent),
        )

    def intent(self, intent_id: str) -> IntentFacts:
        with _mapped_errors():
            intent = self._client.v1.payment_intents.retrieve(intent_id)
        return IntentFacts(
            intent_id=intent.id,
            status=intent.status,
            currency=intent.currency.upper(),
            amount_capturable=int(intent.amount_capturable or 0),
            amount_received=int(intent.amount_received or 0),
        )

    def refunded_minor(self, intent_id: str) -> int:
        """What has been refunded of the intent's charge (reconciliation: refunds are not on the intent)."""
        with _mapped_errors():
            intent = self._client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]})
        charge = intent.latest_charge
        return int(getattr(charge, "amount_refunded", 0) or 0)

    def set_receipt_email(self, intent_id: str, email: str) -> None:
        # Stripe sends the receipt of the charge to it, whatever the account's e-mail settings.
        with _mapped_errors():
            self._client.v1.payment_intents.update(intent_id, {"receipt_email": email})

    def capture(self, intent_id: str, amount_minor: int, idempotency_key: str) -> None:
        with _mapped_errors():
            self._client.v1.payment_intents.capture(
                intent_id, {"amount_to_capture": amount_minor}, options={"idempotency_key": idempotency_key}
            )

    def cancel(self, intent_id: str, idempotency_key: str) -> None:
        with _mapped_errors():
            self._client.v1.payment_intents.cancel(
                intent_id, {"cancellation_reason": "abandoned"}, options={"idempotency_key": idempotency_key}
            )

    def refund(self, intent_id: str, amount_minor: int, idempotency_key: str) -> None:
        with _mapped_errors():
            self._client.v1.refunds.create(
                {"payment_intent": intent_id, "amount": amount_minor},
                options={"idempotency_key": idempotency_key},
            )


def _checkout_params(request: CheckoutRequest) -> SessionCreateParams:
    intent_data: SessionCreateParamsPaymentIntentData = {
        "description": request.description,
        # Events about the intent (amount_capturable_updated, canceled) name the payment this way.
        "metadata": {"payment_id": request.payment_id},
    }
    if request.settlement is Settlement.HOLD:
        intent_data["capture_method"] = "manual"
    # stripe 16 (API 2026-10-28) no longer types payment_method_types on create; the API still takes it.
    return {  # type: ignore[typeddict-unknown-key]
        "mode": "payment",
        "payment_method_types": list(request.method_types),
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": request.currency.lower(),
                    "unit_amount": request.amount_minor,
                    "product_data": {"name": request.description},
                },
            }
        ],
        "payment_intent_data": intent_data,
        "client_reference_id": request.payment_id,
        "metadata": {"payment_id": request.payment_id},
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "expires_at": int(request.expires_at.timestamp()),
    }


def _id_of(value: object) -> str | None:
    """An expandable field: an id, or the expanded object."""
    if value is None or isinstance(value, str):
        return value
    return str(getattr(value, "id", None) or "") or None


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """Stripe's errors as the few the services act on: declined, try again later, refused for good."""
    import stripe

    try:
        yield
    except stripe.CardError as error:
        raise PaymentDeclined(_message(error)) from error
    except (
        stripe.APIConnectionError,
        stripe.APIError,
        stripe.RateLimitError,
        stripe.AuthenticationError,
        stripe.PermissionError,
    ) as error:
        # Outages, throttling and a revoked or mistyped key all heal without changing the call.
        raise PaymentProviderUnavailable(_message(error)) from error
    except stripe.StripeError as error:
        raise PaymentProviderError(_message(error)) from error


def _message(error: Exception) -> str:
    code = getattr(error, "code", None)
    return f"{type(error).__name__}{f' ({code})' if code else ''}: {getattr(error, 'user_message', None) or error}"


class StripeWebhookVerifier(WebhookVerifier):
    """Implements chargenet.services.payments.ports.WebhookVerifier with stripe's own check."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret_source = secret
        self._secret_value: str | None = None

    @classmethod
    def from_environment(cls) -> StripeWebhookVerifier:
        arn = os.environ["STRIPE_WEBHOOK_SECRET_ARN"]
        return cls(secret=lambda: read_secret(arn))

    def _secret(self) -> str:
        if self._secret_value is None:  # read once per verifier
            self._secret_value = _checked(self._secret_source(), ("whsec_",), "Stripe webhook")
        return self._secret_value

    def verify(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        import stripe

        secret = self._secret()  # raises before any event is looked at when the secret is unset
        if signature is not None and not signature.isascii():
            # stripe's hmac.compare_digest raises TypeError on non-ASCII text instead of refusing it.
            raise WebhookRejected("the Stripe-Signature header is malformed")
        try:
            # The header only: construct_event also builds a stripe.Event, which crashes on a signed
            # body that is JSON but no object (`null`); the shape is checked below and by the service.
            stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_S)
            event = json.loads(payload)
        except stripe.SignatureVerificationError as error:
            raise WebhookRejected(str(error).split(".")[0]) from error
        except (ValueError, UnicodeDecodeError) as error:
            raise WebhookRejected("the body is not a JSON event") from error
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or "type" not in event:
            raise WebhookRejected("the body is not a Stripe event")
        return event
