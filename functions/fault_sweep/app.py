"""Scheduled: offline chargers, stuck sessions, delayed alerts; publishes the fleet's health metrics."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.fault_sweep import fault_sweep
from chargenet.domain.clock import utc_now
from chargenet.domain.faults import Severity
from chargenet.services.fault_sweep import FleetHealth

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    sweep = fault_sweep()
    health = sweep.sweep(utc_now())
    _publish(health, sweep.metrics_namespace)
    if health.alerts:
        logger.info("alerts sent", extra={"alerts": [a.subject for a in health.alerts]})
    return {"chargers": health.chargers, "offline": health.offline, "alerts": len(health.alerts)}


def _publish(health: FleetHealth, namespace: str) -> None:
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
            namespace=namespace,
        ) as metric:
            metric.add_dimension(name="Severity", value=severity.value)
