"""The secrets and names a payment carries: the driver's token, the charger's tag, and the
idempotency keys that make every money-moving call safe to repeat.
"""

from __future__ import annotations

import hashlib
import secrets

from chargenet.domain.payments.model import Payment

PAYMENT_TAG_PREFIX = "PAY"  # OCPP idTag is at most 20 characters: PAY + 16 hex digits


def new_driver_token() -> str:
    """The secret in the driver's session link: 256 random bits, never derived from an id."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_payment_tag() -> str:
    return f"{PAYMENT_TAG_PREFIX}{secrets.token_hex(8).upper()}"


def is_payment_tag(id_tag: str) -> bool:
    return id_tag.startswith(PAYMENT_TAG_PREFIX) and len(id_tag) == len(PAYMENT_TAG_PREFIX) + 16


# ------------------------------------------------------------------ idempotency keys
def checkout_key(payment: Payment) -> str:
    return f"checkout-{payment.payment_id}"


def capture_key(payment: Payment) -> str:
    return f"capture-{payment.payment_id}"


def cancel_key(payment: Payment) -> str:
    return f"cancel-{payment.payment_id}"


def refund_key(payment: Payment, number: int) -> str:
    return f"refund-{payment.payment_id}-{number}"
