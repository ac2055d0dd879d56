"""Services assembled from their AWS adapters and the function's environment (for Lambda handlers)."""

from __future__ import annotations

import os
from datetime import timedelta

from chargenet.adapters.faults_dynamodb import DynamoFaultStore, SnsAlertPublisher
from chargenet.domain.alerts import AlertPolicy
from chargenet.domain.clock import utc_now
from chargenet.services.fault_tracking import FaultTracker


def fault_tracker() -> FaultTracker:
    """DynamoDB fault records, SNS alerts, and the alert delay the template configured."""
    major_after = timedelta(seconds=int(os.environ.get("MAJOR_ALERT_AFTER_S", "600")))
    return FaultTracker(
        DynamoFaultStore(), SnsAlertPublisher(), utc_now, AlertPolicy(major_after=major_after)
    )
