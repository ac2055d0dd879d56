"""CDRs table stream (new billing records) -> a subscriber's CDR becomes an invoice item in Stripe,
once per CDR (its id is the idempotency key). Ad-hoc payments are settled by PaymentCaptureFunction
from the same stream; this consumer only needs the subscription side's permissions."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.composition.subscriptions import subscription_billing

logger = Logger()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def usage_record(record: DynamoDBRecord) -> None:
    stream = record.dynamodb
    assert stream is not None  # a table stream's record always carries its keys
    cdr_id = stream.keys["cdr_id"]
    outcome = subscription_billing().on_record(cdr_id)
    logger.info("billing record seen", extra={"cdr_id": cdr_id, "outcome": outcome.value})


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=usage_record, processor=processor, context=context
    )
