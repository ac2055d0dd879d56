"""IoT rule -> one OCPP frame from one charger. Parse the event, call the ingest service."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.ingest import deduplicator, ingest
from chargenet.services.ingest import IngestEvent, Outcome

logger = Logger()
metrics = Metrics()

_REJECTIONS = {Outcome.UNKNOWN_CHARGER, Outcome.CLIENT_MISMATCH, Outcome.REVOKED}


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=IngestEvent)
def lambda_handler(event: IngestEvent, context: LambdaContext) -> dict[str, str]:
    logger.append_keys(charger_id=event.charger_id)
    deduplicator().register_lambda_context(context)
    outcome = ingest(metrics).handle(event)
    metrics.add_metric(name=f"Frames_{outcome.value}", unit=MetricUnit.Count, value=1)
    if outcome in _REJECTIONS:
        logger.warning("frame rejected", extra={"reason": outcome.value, "client_id": event.client_id})
    else:
        logger.info("frame handled", extra={"outcome": outcome.value})
    return {"outcome": outcome.value}
