"""OcppIngestFunction: one OCPP frame from one charger."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field

from chargenet.adapters.dynamodb import DynamoChargerRegistry, DynamoPendingCalls
from chargenet.adapters.idempotency import PowertoolsDeduplicator
from chargenet.adapters.iot_certificates import IotCertificateAuthority
from chargenet.adapters.iot_data import IotDataChannel
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.composition.faults import fault_tracker
from chargenet.composition.settings import AlertEnvironment, environment
from chargenet.domain.clock import utc_now
from chargenet.domain.models import SessionRecord
from chargenet.domain.sessions import SessionFacts
from chargenet.ports.sessions import SessionStart, StartOutcome, StartResult
from chargenet.services.ingest import IngestSettings, OcppIngest

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics


class IngestEnvironment(AlertEnvironment):
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    heartbeat_interval_s: int = Field(alias="HEARTBEAT_INTERVAL_S")
    max_frame_bytes: int = Field(alias="MAX_FRAME_BYTES")
    charger_policy_name: str = Field(alias="CHARGER_POLICY_NAME")


class _CountedSessionStore(DynamoSessionStore):
    """Counts sessions where they are created: open() is True, start() OPENED, once per session,
    however often the StartTransaction is repeated or retried, so the count needs nothing from
    the domain."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = metrics

    def open(
        self, record: SessionRecord, start_facts: SessionFacts | None = None, event_count: int = 1
    ) -> bool:
        created = super().open(record, start_facts, event_count)
        if created:
            self._count_started()
        return created

    def start(self, start: SessionStart) -> StartResult:
        result = super().start(start)
        if result.outcome is StartOutcome.OPENED:
            self._count_started()
        return result

    def _count_started(self) -> None:
        self._metrics.add_metric(name="SessionsStarted", unit=MetricUnit.Count, value=1)


@cache
def deduplicator() -> PowertoolsDeduplicator:
    return PowertoolsDeduplicator(environment(IngestEnvironment).idempotency_table)


@cache
def ingest(metrics: Metrics) -> OcppIngest:
    """The ingest service; `metrics` (the handler's) counts the sessions it starts."""
    env = environment(IngestEnvironment)
    return OcppIngest(
        registry=DynamoChargerRegistry(),
        sessions=_CountedSessionStore(metrics),
        tags=DynamoTagDirectory(),
        tariffs=DynamoTariffBook(),
        faults=fault_tracker(env),
        pending=DynamoPendingCalls(),
        channel=IotDataChannel(),
        dedupe=deduplicator(),
        settings=IngestSettings(
            heartbeat_interval_s=env.heartbeat_interval_s, max_frame_bytes=env.max_frame_bytes
        ),
        clock=utc_now,
        certificates=IotCertificateAuthority(env.charger_policy_name),
    )
