"""Scheduled: offline chargers, stuck sessions, delayed alerts; publishes the fleet's health metrics."""

from __future__ import annotations

import os
from datetime import timedelta

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.adapters.dynamodb import DynamoChargerRegistry
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.composition import fault_tracker
from chargenet.domain.clock import utc_now
from chargenet.domain.faults import Severity
from chargenet.services.fault_sweep import FleetHealth, SweepSettings, sweep_faults

logger = Logger()
metrics = Metrics()
registry = DynamoChargerRegistry()
sessions = DynamoSessionStore()
tracker = fault_tracker()


def _settings() -> SweepSettings:
    return SweepSettings(
        heartbeat_interval=timedelta(seconds=int(os.environ["HEARTBEAT_INTERVAL_S"])),
        reconnect_grace=timedelta(seconds=int(os.environ["OFFLINE_GRACE_S"])),
        meter_interval=timedelta(seconds=int(os.environ["METER_INTERVAL_S"])),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, int]:
    health = sweep_faults(registry, sessions, tracker, utc_now(), _settings())
    _publish(health)
    if health.alerts:
        logger.info("alerts sent", extra={"alerts": [a.subject for a in health.alerts]})
    return {"chargers": health.chargers, "offline": health.offline, "alerts": len(health.alerts)}


def _publish(health: FleetHealth) -> None:
    """Fleet-wide figures only: a per-charger dimension would be a billed metric per charger."""
    metrics.add_metric(name="Chargers", unit=MetricUnit.Count, value=health.chargers)
    metrics.add_metric(name="OfflineChargers", unit=MetricUnit.Count, value=health.offline)
    metrics.add_metric(name="OfflineSharePercent", unit=MetricUnit.Percent, value=health.offline_percent)
    for severity in (Severity.SAFETY_CRITICAL, Severity.MAJOR, Severity.MINOR):
        # One dimension value per metric: single_metric flushes each with its own dimension.
        with single_metric(
            name="OpenFaults",
            unit=MetricUnit.Count,
            value=health.open_by_severity.get(severity, 0),
            namespace=os.environ["POWERTOOLS_METRICS_NAMESPACE"],
        ) as metric:
            metric.add_dimension(name="Severity", value=severity.value)
