"""What the payment rules and the payment provider refuse."""

from __future__ import annotations


class PaymentError(ValueError):
    """A payment rule refused the operation."""


class InvalidTransition(PaymentError):
    pass


class NotAuthorized(PaymentError):
    """The provider's payment is not (yet) in a state that secures the money."""


class RefundRefused(PaymentError):
    pass


class HoldGone(PaymentError):
    """The provider no longer holds the money a failed payment's settlement needs."""


class PaymentProviderError(Exception):
    """The provider refused a call for good: retrying the same call cannot succeed."""


class PaymentDeclined(PaymentProviderError):
    """The card (or wallet, or bank) declined."""


class PaymentProviderUnavailable(PaymentProviderError):
    """Network error, provider outage, rate limit, bad credentials: the same call may succeed later."""


class WebhookRejected(ValueError):
    """Not a genuine, fresh provider event: unsigned, wrongly signed, stale, or unreadable."""
