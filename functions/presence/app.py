"""IoT lifecycle event (connected/disconnected) -> the charger's online state; a reconnect ends an outage."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.presence import presence
from chargenet.domain.models import PresenceEvent

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(raw_event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    # pydantic directly: Powertools' parser utility imports every event model it ships (~0.3 baselines)
    event = PresenceEvent.model_validate(raw_event)
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
    return {"applied": applied}
