"""The fault tracker, shared by the functions that see faults (ingest, presence, fault sweep) and the
operator API (an operator's ack, resolve, exclude)."""

from __future__ import annotations

from datetime import timedelta

from chargenet.adapters.faults_dynamodb import DynamoFaultStore, SnsAlertPublisher
from chargenet.composition.settings import AlertEnvironment
from chargenet.domain.alerts import AlertPolicy
from chargenet.domain.clock import utc_now
from chargenet.services.fault_tracking import FaultTracker


def fault_tracker(env: AlertEnvironment) -> FaultTracker:
    """DynamoDB fault records, SNS alerts, and the alert delay the template configured."""
    major_after = timedelta(seconds=env.major_alert_after_s)
    return FaultTracker(
        DynamoFaultStore(), SnsAlertPublisher(), utc_now, AlertPolicy(major_after=major_after)
    )
