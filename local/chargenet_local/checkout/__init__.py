"""The local Stripe front: Checkout Sessions, the hosted payment page, and localstripe behind.

- `model`: a Checkout Session, built from the create call's parameters as Stripe checks them;
- `front`: the HTTP front (`CheckoutFront`): Checkout Sessions, webhook endpoints and the hosted
  page served here, every other `/v1/...` call passed to localstripe through `stripe_gaps`;
- `pages`: the hosted page at `/c/pay/<id>`, its card form and its HTML.
"""

from chargenet_local.checkout.front import CheckoutFront
from chargenet_local.checkout.model import CheckoutSession, LineItem, build_session
from chargenet_local.checkout.pages import Card, PageError, parse_card

__all__ = ["Card", "CheckoutFront", "CheckoutSession", "LineItem", "PageError", "build_session", "parse_card"]
