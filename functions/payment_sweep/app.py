"""Scheduled: every open payment checked - charger starts and refusals, the cost cap, holds that
could expire, capture retries, checkouts whose webhook never came."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.payments import payment_services

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    report = payment_services().monitor.sweep()
    # Every run, 0 too: a payment that keeps failing is caught here, so Lambda's Errors never sees
    # it; SweepPaymentErrorsAlarm watches this count instead.
    metrics.add_metric(name="SweepPaymentErrors", unit=MetricUnit.Count, value=len(report.failed))
    logger.info("payments swept", extra={"states": dict(report.states), "failed": report.failed})
    return dict(report.states)
