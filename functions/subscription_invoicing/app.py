"""Scheduled (daily): invoice every active subscriber for the month that ended - the monthly fee plus
the pending usage lines, charged to the saved card - and block tags unpaid past the grace period.

Idempotent per (subscriber, period), so the daily runs after the first only catch up on what failed
to run. `{"period": "YYYY-MM"}` in the event invoices that month instead (an operator's re-run).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.subscriptions import subscription_billing
from chargenet.domain.clock import utc_now
from chargenet.domain.subscriptions import period, previous_period

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    billed = period(event["period"]) if event.get("period") else previous_period(utc_now())
    outcomes = subscription_billing().run(billed, retry_failed=bool(event.get("period")))
    logger.info("subscribers invoiced", extra={"period": billed.name, "outcomes": dict(outcomes)})
    return dict(outcomes)
