"""PresenceFunction: IoT lifecycle events -> the charger's online state."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from chargenet.adapters.dynamodb import DynamoChargerRegistry
from chargenet.composition.faults import fault_tracker
from chargenet.composition.settings import AlertEnvironment, environment
from chargenet.domain.models import PresenceEvent
from chargenet.services.fault_tracking import FaultTracker
from chargenet.services.presence import apply_presence


@dataclass(frozen=True)
class Presence:
    registry: DynamoChargerRegistry
    tracker: FaultTracker

    def apply(self, event: PresenceEvent) -> bool:
        return apply_presence(self.registry, self.tracker, event)


@cache
def presence() -> Presence:
    env = environment(AlertEnvironment)
    return Presence(DynamoChargerRegistry(), fault_tracker(env))
