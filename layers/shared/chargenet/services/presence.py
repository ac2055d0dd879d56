"""Lifecycle events: the registry's online state, and the end of an outage on reconnect."""

from __future__ import annotations

from chargenet.domain.clock import from_epoch_ms
from chargenet.domain.faults import FaultKind, FaultResolution
from chargenet.domain.models import PresenceEvent, PresenceEventType
from chargenet.ports.faults import FaultMonitor
from chargenet.ports.registry import ChargerRegistry


def apply_presence(registry: ChargerRegistry, faults: FaultMonitor, event: PresenceEvent) -> bool:
    """True when the event was newer than the stored state and applied.

    Going offline waits for the sweep's grace period (a blip reconnects); coming back is
    certain at once. The resolution is applied even for a stale connect: resolving is
    idempotent and ignores faults seen again after it.
    """
    applied = registry.apply_presence(event)
    if event.event_type is PresenceEventType.CONNECTED:
        back = FaultResolution(
            charger_id=event.client_id,
            connector_id=0,
            kinds=frozenset({FaultKind.OFFLINE}),
            at=from_epoch_ms(event.timestamp),
        )
        faults.apply([back])
    return applied
