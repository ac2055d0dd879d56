"""IoT rule -> one OCPP frame from one charger. Parse the event, call the ingest service."""

from __future__ import annotations

import os
from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.adapters.dynamodb import DynamoChargerRegistry, DynamoPendingCalls
from chargenet.adapters.idempotency import PowertoolsDeduplicator
from chargenet.adapters.iot_certificates import IotCertificateAuthority
from chargenet.adapters.iot_data import IotDataChannel
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.composition import fault_tracker
from chargenet.domain.clock import utc_now
from chargenet.domain.models import SessionRecord
from chargenet.services.ingest import IngestEvent, IngestSettings, OcppIngest, Outcome

logger = Logger()
metrics = Metrics()

_REJECTIONS = {Outcome.UNKNOWN_CHARGER, Outcome.CLIENT_MISMATCH, Outcome.REVOKED}


class _CountedSessionStore(DynamoSessionStore):
    """Counts sessions where they are created: open() is True once per session, however often
    the StartTransaction is repeated or retried, so the count needs nothing from the domain."""

    def open(self, record: SessionRecord) -> bool:
        created = super().open(record)
        if created:
            metrics.add_metric(name="SessionsStarted", unit=MetricUnit.Count, value=1)
        return created


@cache
def _deduplicator() -> PowertoolsDeduplicator:
    return PowertoolsDeduplicator(os.environ["IDEMPOTENCY_TABLE"])


@cache
def _ingest() -> OcppIngest:
    return OcppIngest(
        registry=DynamoChargerRegistry(),
        sessions=_CountedSessionStore(),
        tags=DynamoTagDirectory(),
        tariffs=DynamoTariffBook(),
        faults=fault_tracker(),
        pending=DynamoPendingCalls(),
        channel=IotDataChannel(),
        dedupe=_deduplicator(),
        settings=IngestSettings(
            heartbeat_interval_s=int(os.environ["HEARTBEAT_INTERVAL_S"]),
            max_frame_bytes=int(os.environ["MAX_FRAME_BYTES"]),
        ),
        clock=utc_now,
        certificates=IotCertificateAuthority(),
    )


@logger.inject_lambda_context
@metrics.log_metrics
@event_parser(model=IngestEvent)
def lambda_handler(event: IngestEvent, context: LambdaContext) -> dict[str, str]:
    logger.append_keys(charger_id=event.charger_id)
    _deduplicator().register_lambda_context(context)
    outcome = _ingest().handle(event)
    metrics.add_metric(name=f"Frames_{outcome.value}", unit=MetricUnit.Count, value=1)
    if outcome in _REJECTIONS:
        logger.warning("frame rejected", extra={"reason": outcome.value, "client_id": event.client_id})
    else:
        logger.info("frame handled", extra={"outcome": outcome.value})
    return {"outcome": outcome.value}
