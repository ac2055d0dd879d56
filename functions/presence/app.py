"""IoT lifecycle event (connected/disconnected) -> the charger's online state; a reconnect ends an outage."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.presence import presence
from chargenet.domain.models import PresenceEvent

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=PresenceEvent)
def lambda_handler(event: PresenceEvent, context: LambdaContext) -> dict[str, bool]:
    applied = presence().apply(event)
    logger.info(
        "presence event",
        extra={
            "charger_id": event.client_id,
            "event": event.event_type,
            "version": event.version_number,
            "applied": applied,
        },
    )
    if applied:
        metrics.add_metric(name=f"Chargers_{event.event_type.value}", unit=MetricUnit.Count, value=1)
    return {"applied": applied}
