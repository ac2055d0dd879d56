"""Ad-hoc payments: the pay page and checkout, the authorization that starts the charger, and
settling the money (capture, cancel, refund) with retries that never take it twice.

The payment's tag is an ordinary OCPP idTag in the tag directory, valid on one StartTransaction
within the start window: the charger, the ingest path and billing need nothing payment-specific.
A session is the payment's when it runs on that tag on the payment's connector.

The package: `ports` (what the services need from the world, implemented by the adapters),
`desk` (pay page and checkout), `authorizations` (the money secured, the charger started),
`settlements` (capture, cancel, refund), `capture` (from the billing record), `webhooks` (the
provider's events), `monitor` (the sweep and the driver's session page), `store` (conditional
writes). Everything public is importable from `chargenet.services.payments` itself.
"""

from chargenet.services.payments.authorizations import PaymentAuthorizations
from chargenet.services.payments.capture import BillingCapture, CaptureOutcome
from chargenet.services.payments.desk import (
    TOO_MANY_CHECKOUTS,
    CheckoutRefused,
    CheckoutStarted,
    PaymentDesk,
    PayPage,
)
from chargenet.services.payments.monitor import (
    CHECKOUT_POLL_GRACE,
    RUNNING,
    DriverView,
    PaymentMonitor,
    StopOutcome,
    SweepReport,
    running_cost,
)
from chargenet.services.payments.ports import (
    CdrReader,
    PaymentAlarm,
    PaymentGateway,
    PaymentStore,
    ProcessedEvents,
    SessionReader,
    SubscriptionEvents,
    TagIssuer,
    WebhookVerifier,
)
from chargenet.services.payments.settlements import QUICK_RETRY_DELAYS_S, PaymentSettlements
from chargenet.services.payments.store import require, saved
from chargenet.services.payments.webhooks import (
    ACTED_ON,
    CHECKOUT_CLOSED,
    INTENT_CANCELED,
    INVOICE_SETTLED,
    SECURED,
    ProviderEvent,
    ProviderWebhooks,
    Subject,
    WebhookOutcome,
)

__all__ = [
    "ACTED_ON",
    "CHECKOUT_CLOSED",
    "CHECKOUT_POLL_GRACE",
    "INTENT_CANCELED",
    "INVOICE_SETTLED",
    "QUICK_RETRY_DELAYS_S",
    "RUNNING",
    "SECURED",
    "TOO_MANY_CHECKOUTS",
    "BillingCapture",
    "CaptureOutcome",
    "CdrReader",
    "CheckoutRefused",
    "CheckoutStarted",
    "DriverView",
    "PayPage",
    "PaymentAlarm",
    "PaymentAuthorizations",
    "PaymentDesk",
    "PaymentGateway",
    "PaymentMonitor",
    "PaymentSettlements",
    "PaymentStore",
    "ProcessedEvents",
    "ProviderEvent",
    "ProviderWebhooks",
    "SessionReader",
    "StopOutcome",
    "Subject",
    "SubscriptionEvents",
    "SweepReport",
    "TagIssuer",
    "WebhookOutcome",
    "WebhookVerifier",
    "require",
    "running_cost",
    "saved",
]
