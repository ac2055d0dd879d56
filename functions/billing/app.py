"""Sessions table stream (completed sessions only, by filter) -> one CDR per session."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.domain.billing import BillingRecord
from chargenet.domain.clock import utc_now
from chargenet.services.billing import Biller, BillingOutcome

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class _CountedCdrStore(DynamoCdrStore):
    """Counts billed energy where the CDR is created: create() is True once per session,
    however often the stream redelivers it."""

    def create(self, record: BillingRecord) -> bool:
        created = super().create(record)
        if created:
            metrics.add_metric(name="EnergyDeliveredWh", unit=MetricUnit.NoUnit, value=record.energy_wh)
        return created


@cache
def _biller() -> Biller:
    return Biller(sessions=DynamoSessionStore(), cdrs=_CountedCdrStore(), clock=utc_now)


def bill_record(record: DynamoDBRecord) -> None:
    session_id = record.dynamodb.keys["session_id"]
    outcome = _biller().bill(session_id)
    logger.info("session billing", extra={"session_id": session_id, "outcome": outcome.value})
    metrics.add_metric(name=f"Billing_{outcome.value}", unit=MetricUnit.Count, value=1)
    if outcome is BillingOutcome.NO_TARIFF:
        logger.error("no tariff was in force when the session started", extra={"session_id": session_id})


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=bill_record, processor=processor, context=context
    )
