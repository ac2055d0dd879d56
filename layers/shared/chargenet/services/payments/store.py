"""Writing payments: every write is conditional on the version read, and when a concurrent
path changed the payment first, its change stands.
"""

from __future__ import annotations

from chargenet.domain.payments import Payment, PaymentError
from chargenet.services.payments.ports import PaymentStore


def saved(store: PaymentStore, payment: Payment) -> Payment:
    """Store the change; when a concurrent path changed the payment first, theirs stands."""
    return payment if store.save(payment) else require(store, payment.payment_id)


def require(store: PaymentStore, payment_id: str) -> Payment:
    payment = store.get(payment_id)
    if payment is None:
        raise PaymentError(f"no payment {payment_id}")
    return payment
