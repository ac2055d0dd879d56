"""Apply-once for charger CALLs, on Powertools idempotency (DynamoDB persistence)."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext

from chargenet.adapters.tables import dynamodb_connection
from chargenet.ports.messaging import Deduplicator

# MQTT and IoT redeliveries arrive within seconds; a charger's offline queue is
# flushed right after it reconnects. Fifteen minutes covers both.
REPLY_RETENTION_S = 15 * 60


class PowertoolsDeduplicator(Deduplicator):
    def __init__(self, table_name: str, expires_after_s: int = REPLY_RETENTION_S) -> None:
        # The tables' client: a client of its own would load the DynamoDB model again at cold start.
        self._store = DynamoDBPersistenceLayer(
            table_name=table_name, boto3_client=dynamodb_connection().client
        )
        self._config = IdempotencyConfig(expires_after_seconds=expires_after_s)

    def register_lambda_context(self, context: LambdaContext) -> None:
        self._config.register_lambda_context(context)

    def once(self, key: str, compute: Callable[[], str]) -> str | None:
        def apply(key: str) -> str:
            return compute()

        # The decorator, applied by hand: powertools types what it returns as Any.
        once_only: Callable[..., str] = idempotent_function(
            apply, data_keyword_argument="key", persistence_store=self._store, config=self._config
        )
        try:
            return once_only(key=key)
        except IdempotencyAlreadyInProgressError:
            return None
