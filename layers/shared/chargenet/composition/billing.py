"""BillingFunction: a completed session -> its CDR."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.composition.settings import FunctionEnvironment, environment
from chargenet.domain.billing import BillingRecord
from chargenet.domain.clock import utc_now
from chargenet.services.billing import Biller

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics


class _CountedCdrStore(DynamoCdrStore):
    """Counts billed energy where the CDR is created: create() is True once per session,
    however often the stream redelivers it."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = metrics

    def create(self, record: BillingRecord) -> bool:
        created = super().create(record)
        if created:
            self._metrics.add_metric(name="EnergyDeliveredWh", unit=MetricUnit.NoUnit, value=record.energy_wh)
        return created


@cache
def biller(metrics: Metrics) -> Biller:
    """The biller; `metrics` (the handler's) counts the energy billed."""
    environment(FunctionEnvironment)
    return Biller(sessions=DynamoSessionStore(), cdrs=_CountedCdrStore(metrics), clock=utc_now)
