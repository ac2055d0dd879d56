"""FaultSweepFunction: offline chargers, stuck sessions, delayed alerts; the fleet's health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from pydantic import Field

from chargenet.adapters.dynamodb import DynamoChargerRegistry
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.composition.faults import fault_tracker
from chargenet.composition.settings import AlertEnvironment, environment
from chargenet.services.fault_sweep import FleetHealth, SweepSettings, sweep_faults
from chargenet.services.fault_tracking import FaultTracker


class FaultSweepEnvironment(AlertEnvironment):
    heartbeat_interval_s: int = Field(alias="HEARTBEAT_INTERVAL_S")
    offline_grace_s: int = Field(alias="OFFLINE_GRACE_S")
    meter_interval_s: int = Field(alias="METER_INTERVAL_S")
    metrics_namespace: str = Field(alias="POWERTOOLS_METRICS_NAMESPACE")


@dataclass(frozen=True)
class FaultSweep:
    registry: DynamoChargerRegistry
    sessions: DynamoSessionStore
    tracker: FaultTracker
    settings: SweepSettings
    metrics_namespace: str

    def sweep(self, now: datetime) -> FleetHealth:
        return sweep_faults(self.registry, self.sessions, self.tracker, now, self.settings)


@cache
def fault_sweep() -> FaultSweep:
    env = environment(FaultSweepEnvironment)
    return FaultSweep(
        registry=DynamoChargerRegistry(),
        sessions=DynamoSessionStore(),
        tracker=fault_tracker(env),
        settings=SweepSettings(
            heartbeat_interval=timedelta(seconds=env.heartbeat_interval_s),
            reconnect_grace=timedelta(seconds=env.offline_grace_s),
            meter_interval=timedelta(seconds=env.meter_interval_s),
        ),
        metrics_namespace=env.metrics_namespace,
    )
