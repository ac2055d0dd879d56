"""Scheduled: close stopped sessions past the idle limit (billing follows from the sessions stream)."""

from __future__ import annotations

import os
from datetime import timedelta

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.domain.clock import utc_now
from chargenet.services.session_sweep import close_idle_sessions

logger = Logger()
metrics = Metrics()
store = DynamoSessionStore()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, list[str]]:
    idle_limit = timedelta(minutes=int(os.environ["IDLE_LIMIT_MINUTES"]))
    closed = close_idle_sessions(store, utc_now(), idle_limit)
    metrics.add_metric(name="SessionsClosedAtIdleLimit", unit=MetricUnit.Count, value=len(closed))
    if closed:
        logger.info("closed sessions at the idle limit", extra={"sessions": closed})
    return {"closed": closed}
