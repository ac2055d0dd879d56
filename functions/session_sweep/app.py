"""Scheduled: close stopped sessions past the idle limit (billing follows from the sessions stream)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.session_sweep import session_sweep
from chargenet.domain.clock import utc_now

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    closed = session_sweep().close_idle(utc_now())
    if closed:
        logger.info("closed sessions at the idle limit", extra={"sessions": closed})
    return {"closed": closed}
