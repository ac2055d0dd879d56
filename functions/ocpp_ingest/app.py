"""IoT rule -> one OCPP frame from one charger. Parse the event, call the ingest service."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.ingest import deduplicator, ingest
from chargenet.services.ingest import IngestEvent, Outcome

logger = Logger()
metrics = Metrics()

_REJECTIONS = {Outcome.UNKNOWN_CHARGER, Outcome.CLIENT_MISMATCH, Outcome.REVOKED}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    # pydantic directly: Powertools' parser utility imports every event model it ships (~0.3 baselines)
    event = IngestEvent.model_validate(raw_event)
    logger.append_keys(charger_id=event.charger_id, ocpp_version=event.ocpp_version.value)
    deduplicator().register_lambda_context(context)
    outcome = ingest(metrics).handle(event)
    if outcome in _REJECTIONS:
        logger.warning("frame rejected", extra={"reason": outcome.value, "client_id": event.client_id})
    else:
        # DEBUG: a line per frame is the largest log cost and no operator or alarm reads it.
        logger.debug("frame handled", extra={"outcome": outcome.value})
    return {"outcome": outcome.value}
