"""The periodic fault pass: what only the passing of time reveals, and the fleet's health."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from chargenet.domain.alerts import AlertDecision
from chargenet.domain.fault_rules import (
    SESSION_LIMIT,
    certificate_expiry,
    heartbeat_grace,
    no_meter_values,
    offline_check,
    reboot_loop,
    session_too_long,
)
from chargenet.domain.faults import FaultKind, FaultResolution, FaultSignal, Severity
from chargenet.domain.models import Charger, SessionRecord
from chargenet.domain.sessions import SessionState
from chargenet.ports.faults import ActiveSessions, Fleet
from chargenet.services.fault_tracking import FaultTracker


@dataclass(frozen=True)
class SweepSettings:
    heartbeat_interval: timedelta
    reconnect_grace: timedelta  # a disconnected charger may take this long to come back
    meter_interval: timedelta  # MeterValueSampleInterval configured on chargers
    session_limit: timedelta = SESSION_LIMIT


@dataclass(frozen=True)
class FleetHealth:
    chargers: int
    offline: int
    open_by_severity: dict[Severity, int]
    alerts: list[AlertDecision]

    @property
    def offline_percent(self) -> float:
        return 100 * self.offline / self.chargers if self.chargers else 0.0


def sweep_faults(
    fleet: Fleet, sessions: ActiveSessions, tracker: FaultTracker, now: datetime, settings: SweepSettings
) -> FleetHealth:
    chargers = fleet.list()
    items = [item for charger in chargers for item in _charger_checks(charger, now, settings)]
    active = sessions.in_state(SessionState.ACTIVE.value)
    items += [item for session in active for item in _session_checks(session, now, settings)]
    alerts = tracker.sweep(items)
    open_faults = tracker.open_faults()
    return FleetHealth(
        chargers=len(chargers),
        offline=len({f.charger_id for f in open_faults if f.kind is FaultKind.OFFLINE}),
        open_by_severity=dict(Counter(f.severity for f in open_faults)),
        alerts=alerts,
    )


def _charger_checks(
    charger: Charger, now: datetime, settings: SweepSettings
) -> list[FaultSignal | FaultResolution]:
    silence_grace = heartbeat_grace(settings.heartbeat_interval)
    checks = (
        offline_check(charger, now, silence_grace, settings.reconnect_grace),
        reboot_loop(charger, now),
        certificate_expiry(charger, now),
    )
    return [item for item in checks if item is not None]


def _session_checks(
    session: SessionRecord, now: datetime, settings: SweepSettings
) -> list[FaultSignal | FaultResolution]:
    where = (session.charger_id, session.site_id, session.connector_id)
    last_reading = session.last_reading_at or session.started_at
    return [
        session_too_long(*where, session.transaction_id, session.started_at, now, settings.session_limit),
        no_meter_values(*where, last_reading, now, settings.meter_interval),
    ]
