"""Ad-hoc payments: a hold (or a Swish prepay) taken before charging, settled from the billing record.

Pure: no I/O. Amounts are integer minor units (what payment providers take) or Decimals rounded
by `chargenet.domain.money`, the project's one rounding rule.

The rules
---------
- A card/wallet/Link payment is a *hold* (Stripe manual capture) of a configured amount per
  currency. At session end the billing record's total incl. VAT is captured, never more than the
  hold; the rest of the hold is released by the capture itself.
- Swish has no manual capture: the hold amount is *prepaid* and the difference refunded.
- Below the provider's minimum charge the session is free: the hold is cancelled (the prepay
  refunded in full). The same rule for every method, so a driver's bill never depends on it.
- Card holds expire (Stripe cancels uncaptured intents after 7 days): a hold older than
  `hold_max_age` is settled from the running cost before that.
- No incremental authorization in SCA countries: the session is stopped when its running cost
  reaches the hold minus a safety margin (the cost of the last meter interval still to come).
- Every money-moving call carries an idempotency key derived from the payment, so a retry after
  a timeout can never capture or refund twice.

The package, one module per part of the rules
----------------------------------------------
- `model`: the payment record, its states and the state machine (`transition`);
- `config`: one deployment's settings (`PaymentConfig`, `load_config`);
- `errors`: what the rules and the provider refuse;
- `identifiers`: the driver's token, the charger's tag, the idempotency keys;
- `availability`: whether a connector can be paid for now;
- `checkout`: a new payment, its hosted checkout and the authorization that secures the money;
- `starting`: the charger's start and the session it runs;
- `running`: the cost cap and the card hold's expiry while the session runs;
- `settlement`: capture, cancel or refund at the end, retries, an operator's settlement of a failure;
- `refunds`: an operator's refund;
- `receipt`: the receipt's cost lines.

Everything public is importable from `chargenet.domain.payments` itself.
"""

from chargenet.domain.payments.availability import Availability, connector_availability
from chargenet.domain.payments.checkout import (
    CheckoutCreated,
    CheckoutFacts,
    CheckoutRequest,
    IntentFacts,
    authorization_late,
    authorize,
    checkout_ended,
    checkout_opened,
    checkout_request,
    new_payment,
)
from chargenet.domain.payments.config import PaymentConfig, load_config
from chargenet.domain.payments.errors import (
    HoldGone,
    InvalidTransition,
    NotAuthorized,
    PaymentDeclined,
    PaymentError,
    PaymentProviderError,
    PaymentProviderUnavailable,
    RefundRefused,
    WebhookRejected,
)
from chargenet.domain.payments.identifiers import (
    PAYMENT_TAG_PREFIX,
    cancel_key,
    capture_key,
    checkout_key,
    is_payment_tag,
    new_driver_token,
    new_payment_tag,
    refund_key,
    token_digest,
)
from chargenet.domain.payments.model import (
    HOLD_METHOD_TYPES,
    MINIMUM_CHARGE,
    OPEN_STATES,
    SWISH,
    SWISH_CURRENCY,
    TRANSITIONS,
    CheckoutMethod,
    Payment,
    PaymentState,
    Reason,
    Settlement,
    transition,
)
from chargenet.domain.payments.receipt import ReceiptLine, receipt_lines
from chargenet.domain.payments.refunds import plan_refund, refunded
from chargenet.domain.payments.running import cap_minor, cap_reached, hold_expiring, stop_requested
from chargenet.domain.payments.settlement import (
    MAX_CAPTURE_BACKOFF,
    MoneyAction,
    MoneyCall,
    SettlementPlan,
    failed_again,
    failed_intent_id,
    hold_lost,
    minimum_minor,
    plan_abort,
    plan_failed_release,
    plan_failed_settlement,
    plan_settlement,
    settled,
    settlement_failed,
)
from chargenet.domain.payments.starting import StartProgress, link_session, start_progress, start_sent

__all__ = [
    "HOLD_METHOD_TYPES",
    "MAX_CAPTURE_BACKOFF",
    "MINIMUM_CHARGE",
    "OPEN_STATES",
    "PAYMENT_TAG_PREFIX",
    "SWISH",
    "SWISH_CURRENCY",
    "TRANSITIONS",
    "Availability",
    "CheckoutCreated",
    "CheckoutFacts",
    "CheckoutMethod",
    "CheckoutRequest",
    "HoldGone",
    "IntentFacts",
    "InvalidTransition",
    "MoneyAction",
    "MoneyCall",
    "NotAuthorized",
    "Payment",
    "PaymentConfig",
    "PaymentDeclined",
    "PaymentError",
    "PaymentProviderError",
    "PaymentProviderUnavailable",
    "PaymentState",
    "Reason",
    "ReceiptLine",
    "RefundRefused",
    "Settlement",
    "SettlementPlan",
    "StartProgress",
    "WebhookRejected",
    "authorization_late",
    "authorize",
    "cancel_key",
    "cap_minor",
    "cap_reached",
    "capture_key",
    "checkout_ended",
    "checkout_key",
    "checkout_opened",
    "checkout_request",
    "connector_availability",
    "failed_again",
    "failed_intent_id",
    "hold_expiring",
    "hold_lost",
    "is_payment_tag",
    "link_session",
    "load_config",
    "minimum_minor",
    "new_driver_token",
    "new_payment",
    "new_payment_tag",
    "plan_abort",
    "plan_failed_release",
    "plan_failed_settlement",
    "plan_refund",
    "plan_settlement",
    "receipt_lines",
    "refund_key",
    "refunded",
    "settled",
    "settlement_failed",
    "start_progress",
    "start_sent",
    "stop_requested",
    "token_digest",
    "transition",
]
