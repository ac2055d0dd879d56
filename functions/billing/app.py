"""Sessions table stream (completed sessions only, by filter) -> one CDR per session."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.billing import biller
from chargenet.services.billing import BillingOutcome

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def bill_record(record: DynamoDBRecord) -> None:
    stream = record.dynamodb
    assert stream is not None  # a table stream's record always carries its keys
    session_id = stream.keys["session_id"]
    outcome = biller(metrics).bill(session_id)
    logger.info("session billing", extra={"session_id": session_id, "outcome": outcome.value})
    if outcome is BillingOutcome.NO_TARIFF:
        logger.error("no tariff was in force when the session started", extra={"session_id": session_id})


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=bill_record, processor=processor, context=context
    )
