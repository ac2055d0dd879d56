"""The PaymentFailures metric, as an EMF line CloudWatch Logs turns into a metric.

Written by hand rather than through Powertools Metrics: Powertools adds the function's `service`
dimension, and failures come from several functions (API, capture, sweep) while one alarm
watches them all, so the metric has no dimensions. The log line names the payment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from chargenet.domain.payments import Payment
from chargenet.services.payments.ports import PaymentAlarm

NAMESPACE = "chargenet"
METRIC = "PaymentFailures"


class EmfPaymentAlarm(PaymentAlarm):
    """Implements chargenet.services.payments.PaymentAlarm."""

    def __init__(self, emit: Callable[[str], None] = print) -> None:
        self._emit = emit

    def failed(self, payment: Payment) -> None:
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [[]],
                        "Metrics": [{"Name": METRIC, "Unit": "Count"}],
                    }
                ],
            },
            METRIC: 1,
            "payment_id": payment.payment_id,
            "charger_id": payment.charger_id,
            "reason": payment.reason.value if payment.reason else None,
            "failure": payment.failure,
        }
        self._emit(json.dumps(document))
