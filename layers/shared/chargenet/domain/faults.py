"""Faults on chargers and connectors, the rules that raise them, and when operators are paged.

Everything here is pure: sources turn what a charger said (or failed to say) into
FaultSignals and FaultResolutions; `observe`, `resolve` and `acknowledge` fold those
into a Fault record; AlertPolicy decides what an operator hears about it. Messages
arrive late and twice, so every transition is idempotent and ignores stale input.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chargenet.domain.clock import ocpp_time
from chargenet.domain.meter_values import MeterReading
from chargenet.domain.sessions import IDLE_POWER_W, RATED_POWER_TOLERANCE


class Severity(StrEnum):
    SAFETY_CRITICAL = "safety_critical"
    MAJOR = "major"
    MINOR = "minor"
    INFO = "info"


_SEVERITY_RANK = {Severity.INFO: 0, Severity.MINOR: 1, Severity.MAJOR: 2, Severity.SAFETY_CRITICAL: 3}


class FaultKind(StrEnum):
    CONNECTOR_ERROR = "connector_error"
    CHARGER_UNAVAILABLE = "charger_unavailable"
    OFFLINE = "offline"
    METERING = "metering"
    SESSION = "session"
    REBOOT_LOOP = "reboot_loop"
    SECURITY_EVENT = "security_event"
    CERTIFICATE_EXPIRY = "certificate_expiry"


class FaultState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class ExclusionReason(StrEnum):
    """Outage causes NEVI lets an operator exclude from uptime (23 CFR 680.116)."""

    UTILITY_OUTAGE = "utility_outage"
    NETWORK_OUTAGE = "network_outage"
    VEHICLE_FAULT = "vehicle_fault"
    SCHEDULED_MAINTENANCE = "scheduled_maintenance"
    VANDALISM = "vandalism"
    NATURAL_DISASTER = "natural_disaster"


NO_ERROR = "NoError"

# OCPP 1.6 ChargePointErrorCode -> severity. EVCommunicationError is listed as minor: a single
# one is usually the car; REPEATED_EV_COMMUNICATION_ERROR makes it major.
ERROR_CODE_SEVERITY: dict[str, Severity] = {
    "GroundFailure": Severity.SAFETY_CRITICAL,
    "OverCurrentFailure": Severity.SAFETY_CRITICAL,
    "OverVoltage": Severity.SAFETY_CRITICAL,
    "HighTemperature": Severity.SAFETY_CRITICAL,
    "ConnectorLockFailure": Severity.MAJOR,
    "PowerMeterFailure": Severity.MAJOR,
    "PowerSwitchFailure": Severity.MAJOR,
    "InternalError": Severity.MAJOR,
    "ResetFailure": Severity.MAJOR,
    "EVCommunicationError": Severity.MINOR,
    "WeakSignal": Severity.MINOR,
    "ReaderFailure": Severity.MINOR,
    "LocalListConflict": Severity.MINOR,
    "UnderVoltage": Severity.MINOR,
    "OtherError": Severity.MINOR,
}
# Earlier notifications of the same code that make an EVCommunicationError the charger's
# problem rather than one car's: a single car may retry once.
REPEATED_EV_COMMUNICATION_ERROR = 2

# SecurityEventNotification type -> severity: the OCPP 1.6 security whitepaper's event list plus
# FirmwareTampered, which some vendors send. Physical tampering may expose live parts; firmware that fails its signature check may be
# hostile. INFO events are routine (the charger logging its own reboots or updates) and
# raise no fault; reboot loops are caught from BootNotifications instead.
SECURITY_EVENT_SEVERITY: dict[str, Severity] = {
    "TamperDetectionActivated": Severity.SAFETY_CRITICAL,
    "FirmwareTampered": Severity.SAFETY_CRITICAL,
    "InvalidFirmwareSignature": Severity.MAJOR,
    "InvalidFirmwareSigningCertificate": Severity.MAJOR,
    "AttemptedReplayAttacks": Severity.MAJOR,
    "SecurityLogWasCleared": Severity.MAJOR,
    "InvalidChargePointCertificate": Severity.MAJOR,
    "InvalidCsmsCertificate": Severity.MAJOR,
    "FailedToAuthenticateAtCsms": Severity.MINOR,
    "CsmsFailedToAuthenticate": Severity.MINOR,
    "InvalidMessages": Severity.MINOR,
    "InvalidTLSVersion": Severity.MINOR,
    "InvalidTLSCipherSuite": Severity.MINOR,
    "ReconfigurationOfSecurityParameters": Severity.MINOR,
    "SettingSystemTime": Severity.MINOR,
    "MemoryExhaustion": Severity.MINOR,
    "FirmwareUpdated": Severity.INFO,
    "StartupOfTheDevice": Severity.INFO,
    "ResetOrReboot": Severity.INFO,
}

# Codes for faults that have no OCPP error code of their own.
FAULTED = "Faulted"
UNAVAILABLE = "Unavailable"
OFFLINE_CODE = "Offline"
REBOOT_LOOP_CODE = "RebootLoop"
STUCK_METER = "StuckMeter"
POWER_ABOVE_RATING = "PowerAboveRating"
SESSION_TOO_LONG = "SessionTooLong"
NO_METER_VALUES = "NoMeterValues"
CERTIFICATE_EXPIRY_CODE = "CertificateExpiry"

OUTAGE_STATUSES = frozenset({"Faulted", "Unavailable"})

EVIDENCE_LIMIT = 10
EVIDENCE_CHARS = 200
# A fault that re-opens within this long of clearing is flapping, not a new problem.
FLAP_WINDOW = timedelta(minutes=30)
# Heartbeats jitter: a charger is not late until a little after its second interval.
HEARTBEAT_SLACK = timedelta(minutes=1)
REBOOT_WINDOW = timedelta(minutes=30)
REBOOT_THRESHOLD = 3
STUCK_INTERVALS = 3
# Registers in kWh with one decimal advance in 100 Wh steps: expect at least that much
# before calling a register stuck.
STUCK_MIN_EXPECTED_WH = Decimal(100)
SESSION_LIMIT = timedelta(hours=24)
MISSED_METER_INTERVALS = 3
CERTIFICATE_WARN_DAYS = 30
CERTIFICATE_URGENT_DAYS = 7


def severity_of(error_code: str, repeated: bool = False) -> Severity | None:
    """The severity of an OCPP 1.6 error code; None for NoError.

    Unknown codes (a 2.0 or vendor code past schema validation) count as OtherError so
    they are at least visible.
    """
    if error_code == NO_ERROR:
        return None
    if error_code == "EVCommunicationError" and repeated:
        return Severity.MAJOR
    return ERROR_CODE_SEVERITY.get(error_code, Severity.MINOR)


def more_severe(a: Severity, b: Severity) -> Severity:
    return a if _SEVERITY_RANK[a] >= _SEVERITY_RANK[b] else b


def fault_id(charger_id: str, connector_id: int, kind: FaultKind, code: str) -> str:
    """Stable per (charger, connector, kind, code): observing it again finds the same record."""
    key = json.dumps([charger_id, connector_id, str(kind), code])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


class FaultSignal(BaseModel):
    """What a source observed that indicates a fault."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    site_id: str
    connector_id: int  # 0 = the whole charger
    kind: FaultKind
    code: str
    vendor_error_code: str | None = None
    severity: Severity
    at: datetime
    evidence: str

    @property
    def fault_id(self) -> str:
        return fault_id(self.charger_id, self.connector_id, self.kind, self.code)


class FaultResolution(BaseModel):
    """What a source observed that clears faults: every fault of these kinds (and code, if given)."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    connector_id: int
    kinds: frozenset[FaultKind]
    code: str | None = None
    at: datetime

    def matches(self, fault: Fault) -> bool:
        return (
            fault.charger_id == self.charger_id
            and fault.connector_id == self.connector_id
            and fault.kind in self.kinds
            and (self.code is None or fault.code == self.code)
        )


class Fault(BaseModel):
    """One fault on a charger or connector; an episode runs from (re-)opening to resolution."""

    model_config = ConfigDict(frozen=True)

    fault_id: str
    charger_id: str
    site_id: str
    connector_id: int
    kind: FaultKind
    code: str
    vendor_error_code: str | None = None
    severity: Severity
    state: FaultState
    first_seen: datetime  # start of the current episode
    last_seen: datetime
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    episode: int = 1
    occurrences: int = 1  # signals in the current episode
    flaps: int = 0  # consecutive re-opens, each within FLAP_WINDOW of the clearing before it
    evidence: list[str] = []  # the latest signals, oldest first; also how duplicates are recognised
    excluded_reason: ExclusionReason | None = None


def observe(
    existing: Fault | None, signal: FaultSignal, now: datetime, flap_window: timedelta = FLAP_WINDOW
) -> Fault:
    """The fault after this signal: opened, updated, or re-opened as a new episode.

    A redelivered signal changes nothing, and a signal from before the fault's last
    resolution (a late message) cannot re-open it.
    """
    # Charger clocks drift: a timestamp from the future is taken as now.
    seen = min(signal.at, now)
    entry = _evidence_entry(signal)
    if existing is None:
        return _opened(signal, seen, entry)
    if existing.fault_id != signal.fault_id:
        raise ValueError(f"signal for {signal.fault_id} observed on another fault, {existing.fault_id}")
    if existing.state is FaultState.RESOLVED:
        # Compare the charger's own time, not the clamped one: the answer must not depend on `now`.
        if signal.at <= _cleared_at(existing):
            return existing
        return _reopened(existing, signal, seen, entry, flap_window)
    if entry in existing.evidence:
        return existing
    return existing.model_copy(
        update={
            "first_seen": min(existing.first_seen, seen),
            "last_seen": max(existing.last_seen, seen),
            "severity": more_severe(existing.severity, signal.severity),
            "vendor_error_code": signal.vendor_error_code or existing.vendor_error_code,
            "occurrences": existing.occurrences + 1,
            "evidence": _with_evidence(existing.evidence, entry),
        }
    )


def _evidence_entry(signal: FaultSignal) -> str:
    return f"{ocpp_time(signal.at)} {signal.evidence}"[:EVIDENCE_CHARS]


def _with_evidence(evidence: list[str], entry: str) -> list[str]:
    return [*evidence, entry][-EVIDENCE_LIMIT:]


def _opened(signal: FaultSignal, seen: datetime, entry: str) -> Fault:
    return Fault(
        fault_id=signal.fault_id,
        charger_id=signal.charger_id,
        site_id=signal.site_id,
        connector_id=signal.connector_id,
        kind=signal.kind,
        code=signal.code,
        vendor_error_code=signal.vendor_error_code,
        severity=signal.severity,
        state=FaultState.OPEN,
        first_seen=seen,
        last_seen=seen,
        evidence=[entry],
    )


def _reopened(
    existing: Fault, signal: FaultSignal, seen: datetime, entry: str, flap_window: timedelta
) -> Fault:
    cleared_for = seen - _cleared_at(existing)
    return existing.model_copy(
        update={
            "state": FaultState.OPEN,
            "severity": signal.severity,
            "vendor_error_code": signal.vendor_error_code,
            "first_seen": seen,
            "last_seen": seen,
            "resolved_at": None,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "excluded_reason": None,
            "episode": existing.episode + 1,
            "occurrences": 1,
            "flaps": existing.flaps + 1 if cleared_for <= flap_window else 0,
            "evidence": _with_evidence(existing.evidence, entry),
        }
    )


def resolve(existing: Fault | None, at: datetime) -> Fault | None:
    """The fault cleared at `at`; unchanged if already resolved or seen again after `at`."""
    if existing is None or existing.state is FaultState.RESOLVED:
        return existing
    # A late resolution must not close a fault the charger reported again since.
    if at < existing.last_seen:
        return existing
    return existing.model_copy(update={"state": FaultState.RESOLVED, "resolved_at": at})


def _cleared_at(fault: Fault) -> datetime:
    """When a resolved fault cleared; a record stored without the time cleared at its last sighting."""
    return fault.resolved_at or fault.last_seen


def acknowledge(existing: Fault, at: datetime, by: str) -> Fault:
    """An operator took ownership; the first acknowledgement of an episode is the one kept."""
    if existing.acknowledged_at is not None:
        return existing
    state = FaultState.ACKNOWLEDGED if existing.state is FaultState.OPEN else existing.state
    return existing.model_copy(update={"state": state, "acknowledged_at": at, "acknowledged_by": by})


def exclude(existing: Fault, reason: ExclusionReason | None) -> Fault:
    """The operator's NEVI exclusion for this episode's outage (None withdraws it)."""
    return existing.model_copy(update={"excluded_reason": reason})


# --- sources -----------------------------------------------------------------------------


def from_status_notification(
    charger_id: str,
    site_id: str,
    connector_id: int,
    status: str,
    error_code: str,
    vendor_error_code: str | None,
    info: str | None,
    at: datetime,
    recent_same_code: int,
) -> list[FaultSignal | FaultResolution]:
    """Resolutions first, then signals.

    `recent_same_code` counts earlier notifications with this error code on this connector
    within the caller's repeat window (this one not included).

    An operative status (neither Faulted nor Unavailable) ends unavailability; with NoError
    it also ends the connector's errors. Only a NoError status clears errors: a charger
    going Unavailable after a GroundFailure has not shown the ground failure is gone.
    """
    evidence = _status_evidence(connector_id, status, error_code, vendor_error_code, info)
    results: list[FaultSignal | FaultResolution] = []
    if status not in OUTAGE_STATUSES:
        kinds = {FaultKind.CHARGER_UNAVAILABLE}
        if error_code == NO_ERROR:
            kinds.add(FaultKind.CONNECTOR_ERROR)
        results.append(
            FaultResolution(charger_id=charger_id, connector_id=connector_id, kinds=frozenset(kinds), at=at)
        )
    raised = _status_faults(status, error_code, recent_same_code)
    results.extend(
        FaultSignal(
            charger_id=charger_id,
            site_id=site_id,
            connector_id=connector_id,
            kind=kind,
            code=code,
            vendor_error_code=vendor_error_code,
            severity=severity,
            at=at,
            evidence=evidence,
        )
        for kind, code, severity in raised
    )
    return results


def _status_faults(
    status: str, error_code: str, recent_same_code: int
) -> list[tuple[FaultKind, str, Severity]]:
    raised = []
    severity = severity_of(error_code, repeated=recent_same_code >= REPEATED_EV_COMMUNICATION_ERROR)
    if severity is not None:
        raised.append((FaultKind.CONNECTOR_ERROR, error_code, severity))
    elif status == "Faulted":
        # Faulted without a reason still takes the connector out of service.
        raised.append((FaultKind.CONNECTOR_ERROR, FAULTED, Severity.MAJOR))
    if status == "Unavailable":
        # Drivers cannot charge; a planned Inoperative is acknowledged or excluded by the operator.
        raised.append((FaultKind.CHARGER_UNAVAILABLE, UNAVAILABLE, Severity.MAJOR))
    return raised


def _status_evidence(
    connector_id: int, status: str, error_code: str, vendor_error_code: str | None, info: str | None
) -> str:
    text = f"StatusNotification connector {connector_id} {status}/{error_code}"
    if vendor_error_code:
        text += f" vendor={vendor_error_code}"
    if info:
        text += f" info={info}"
    return text


def heartbeat_grace(interval: timedelta) -> timedelta:
    """Silence a charger may keep before it counts as offline: one missed heartbeat is normal."""
    return 2 * interval + HEARTBEAT_SLACK


def offline_check(
    charger_id: str,
    site_id: str,
    last_seen: datetime | None,
    online: bool,
    now: datetime,
    grace: timedelta,
) -> FaultSignal | FaultResolution | None:
    """Offline once silent (or disconnected) for longer than `grace`; back when online and heard from.

    A charger that was never seen is not commissioned yet, not offline. A disconnected
    charger within the grace period may be reconnecting: nothing either way.
    """
    if last_seen is None:
        return None
    silent_for = now - last_seen
    if silent_for > grace:
        how = "no message" if online else "disconnected"
        return FaultSignal(
            charger_id=charger_id,
            site_id=site_id,
            connector_id=0,
            kind=FaultKind.OFFLINE,
            code=OFFLINE_CODE,
            severity=Severity.MAJOR,
            # The outage started when the charger was last heard from, not when we noticed.
            at=last_seen,
            evidence=f"{how} since {ocpp_time(last_seen)} (grace {grace})",
        )
    if online:
        return FaultResolution(
            charger_id=charger_id, connector_id=0, kinds=frozenset({FaultKind.OFFLINE}), at=now
        )
    return None


def reboot_loop(
    charger_id: str,
    site_id: str,
    boot_times: list[datetime],
    now: datetime,
    window: timedelta = REBOOT_WINDOW,
    threshold: int = REBOOT_THRESHOLD,
) -> FaultSignal | FaultResolution | None:
    """A loop is `threshold` BootNotifications within `window`; it is over after a window without one."""
    recent = sorted(t for t in boot_times if now - window < t <= now)
    if len(recent) >= threshold:
        return FaultSignal(
            charger_id=charger_id,
            site_id=site_id,
            connector_id=0,
            kind=FaultKind.REBOOT_LOOP,
            code=REBOOT_LOOP_CODE,
            severity=Severity.MAJOR,
            at=recent[-1],
            evidence=f"{len(recent)} BootNotifications within {window}",
        )
    if not recent:
        return FaultResolution(
            charger_id=charger_id, connector_id=0, kinds=frozenset({FaultKind.REBOOT_LOOP}), at=now
        )
    return None


def stuck_meter(
    charger_id: str,
    site_id: str,
    connector_id: int,
    readings: list[MeterReading],
    status: str,
    intervals: int = STUCK_INTERVALS,
) -> FaultSignal | FaultResolution | None:
    """The energy register stands still for `intervals` readings while Charging and drawing power."""
    energy = sorted((r for r in readings if r.energy_wh is not None), key=lambda r: r.at)
    if status != "Charging" or len(energy) < 2:
        return None
    if energy[-1].energy_wh > energy[-2].energy_wh:
        return _resolution(charger_id, connector_id, FaultKind.METERING, STUCK_METER, energy[-1].at)
    run = _flat_drawing_run(energy)
    if len(run) - 1 < intervals or _expected_wh(run) < STUCK_MIN_EXPECTED_WH:
        return None
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=connector_id,
        kind=FaultKind.METERING,
        code=STUCK_METER,
        severity=Severity.MAJOR,
        at=run[-1].at,
        evidence=f"register stuck at {run[-1].energy_wh} Wh since {ocpp_time(run[0].at)} while drawing power",
    )


def _flat_drawing_run(energy: list[MeterReading]) -> list[MeterReading]:
    """The latest readings, oldest first, with the same register and a power draw."""
    run: list[MeterReading] = []
    for reading in reversed(energy):
        drawing = reading.power_w is not None and reading.power_w > IDLE_POWER_W
        if reading.energy_wh != energy[-1].energy_wh or not drawing:
            break
        run.insert(0, reading)
    return run


def _expected_wh(run: list[MeterReading]) -> Decimal:
    """Energy the lowest sampled power would have delivered over the run."""
    micros = (run[-1].at - run[0].at) // timedelta(microseconds=1)
    lowest = min(r.power_w for r in run)
    return lowest * Decimal(micros) / Decimal(3_600_000_000)


def power_above_rating(
    charger_id: str,
    site_id: str,
    connector_id: int,
    power_w: Decimal,
    rated_w: int | None,
    at: datetime,
) -> FaultSignal | None:
    """Power beyond the rating (with the billing's tolerance): a wrong meter or a real overload."""
    if rated_w is None or power_w <= Decimal(rated_w) * RATED_POWER_TOLERANCE:
        return None
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=connector_id,
        kind=FaultKind.METERING,
        code=POWER_ABOVE_RATING,
        severity=Severity.MAJOR,
        at=at,
        evidence=f"{power_w} W above the rated {rated_w} W",
    )


def session_too_long(
    charger_id: str,
    site_id: str,
    connector_id: int,
    transaction_id: int,
    started_at: datetime,
    now: datetime,
    limit: timedelta = SESSION_LIMIT,
) -> FaultSignal | FaultResolution:
    """A session past the limit probably lost its StopTransaction; a session within it clears the fault."""
    if now - started_at <= limit:
        return _resolution(charger_id, connector_id, FaultKind.SESSION, SESSION_TOO_LONG, now)
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=connector_id,
        kind=FaultKind.SESSION,
        code=SESSION_TOO_LONG,
        severity=Severity.MINOR,
        at=started_at + limit,
        evidence=f"transaction {transaction_id} open since {ocpp_time(started_at)}",
    )


def no_meter_values(
    charger_id: str,
    site_id: str,
    connector_id: int,
    last_reading_at: datetime,
    now: datetime,
    interval: timedelta,
    missed_intervals: int = MISSED_METER_INTERVALS,
) -> FaultSignal | FaultResolution:
    """An active session without readings for several sample intervals cannot be billed.

    `last_reading_at` is the session start when no reading has arrived yet.
    """
    silence = interval * missed_intervals
    if now - last_reading_at <= silence:
        return _resolution(charger_id, connector_id, FaultKind.SESSION, NO_METER_VALUES, now)
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=connector_id,
        kind=FaultKind.SESSION,
        code=NO_METER_VALUES,
        severity=Severity.MINOR,
        at=last_reading_at + silence,
        evidence=f"no MeterValues since {ocpp_time(last_reading_at)} ({missed_intervals} x {interval})",
    )


def certificate_expiry(
    charger_id: str,
    site_id: str,
    not_after: datetime,
    now: datetime,
    warn_days: int = CERTIFICATE_WARN_DAYS,
) -> FaultSignal | FaultResolution:
    """Minor within `warn_days` of expiry, major within a week or once expired; a renewal clears it.

    One code for every stage, so the fault escalates instead of multiplying.
    """
    left = not_after - now
    if left > timedelta(days=warn_days):
        return _resolution(charger_id, 0, FaultKind.CERTIFICATE_EXPIRY, CERTIFICATE_EXPIRY_CODE, now)
    urgent = left <= timedelta(days=CERTIFICATE_URGENT_DAYS)
    state = "expired" if left <= timedelta(0) else "expires"
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=0,
        kind=FaultKind.CERTIFICATE_EXPIRY,
        code=CERTIFICATE_EXPIRY_CODE,
        severity=Severity.MAJOR if urgent else Severity.MINOR,
        at=now,
        evidence=f"certificate {state} {ocpp_time(not_after)}",
    )


def security_event(
    charger_id: str, site_id: str, event_type: str, tech_info: str | None, at: datetime
) -> FaultSignal | None:
    """A SecurityEventNotification as a fault (see SECURITY_EVENT_SEVERITY); routine events raise none.

    Unknown types are minor: a vendor's own security event deserves a look.
    """
    severity = SECURITY_EVENT_SEVERITY.get(event_type, Severity.MINOR)
    if severity is Severity.INFO:
        return None
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=0,
        kind=FaultKind.SECURITY_EVENT,
        code=event_type,
        severity=severity,
        at=at,
        evidence=f"SecurityEventNotification {event_type}" + (f": {tech_info}" if tech_info else ""),
    )


def _resolution(
    charger_id: str, connector_id: int, kind: FaultKind, code: str, at: datetime
) -> FaultResolution:
    return FaultResolution(
        charger_id=charger_id, connector_id=connector_id, kinds=frozenset({kind}), code=code, at=at
    )


# --- alerts ------------------------------------------------------------------------------

# What an operator can try from the back office, by error code first, then by fault kind.
SUGGESTED_ACTION_BY_CODE: dict[str, str] = {
    "GroundFailure": "inspect on site; do not reset remotely",
    "OverCurrentFailure": "inspect on site; do not reset remotely",
    "OverVoltage": "ChangeAvailability Inoperative; check site supply; inspect on site before re-enabling",
    "HighTemperature": "TriggerMessage MeterValues for temperature; check cooling; inspect on site if it persists",
    "ConnectorLockFailure": "UnlockConnector",
    "PowerMeterFailure": "GetDiagnostics; schedule meter check",
    "PowerSwitchFailure": "GetDiagnostics; schedule contactor check on site",
    "InternalError": "Reset (soft, then hard)",
    "ResetFailure": "Reset (soft, then hard)",
    "EVCommunicationError": "check cable and control pilot; GetDiagnostics if it repeats with different cars",
    "WeakSignal": "check modem and antenna; TriggerMessage Heartbeat",
    "ReaderFailure": "Reset (soft); schedule RFID reader check",
    "LocalListConflict": "SendLocalList (Full) to resynchronise",
    "UnderVoltage": "check site supply with the utility",
    "OtherError": "read the vendor error code; GetDiagnostics",
    FAULTED: "TriggerMessage StatusNotification; GetDiagnostics",
    UNAVAILABLE: "ChangeAvailability Operative if the outage is not planned",
    STUCK_METER: "TriggerMessage MeterValues; GetDiagnostics; schedule meter check",
    POWER_ABOVE_RATING: "GetConfiguration to check meter and rating settings; schedule meter check",
    SESSION_TOO_LONG: "RemoteStopTransaction; look for a lost StopTransaction",
    NO_METER_VALUES: "TriggerMessage MeterValues; GetConfiguration MeterValueSampleInterval",
    "TamperDetectionActivated": "ChangeAvailability Inoperative; inspect on site",
    "FirmwareTampered": "ChangeAvailability Inoperative; SignedUpdateFirmware with a trusted image",
    "InvalidFirmwareSignature": "SignedUpdateFirmware with a correctly signed image",
}
SUGGESTED_ACTION_BY_KIND: dict[FaultKind, str] = {
    FaultKind.CONNECTOR_ERROR: "TriggerMessage StatusNotification; GetDiagnostics",
    FaultKind.CHARGER_UNAVAILABLE: "ChangeAvailability Operative if the outage is not planned",
    FaultKind.OFFLINE: "check site power/network; TriggerMessage BootNotification when back",
    FaultKind.METERING: "GetDiagnostics; schedule meter check",
    FaultKind.SESSION: "TriggerMessage MeterValues; review the session",
    FaultKind.REBOOT_LOOP: "GetDiagnostics; check the firmware version, roll back a recent update",
    FaultKind.SECURITY_EVENT: "GetLog (SecurityLog) and review",
    FaultKind.CERTIFICATE_EXPIRY: "ExtendedTriggerMessage SignChargePointCertificate to renew",
}


def suggested_action(fault: Fault) -> str:
    return SUGGESTED_ACTION_BY_CODE.get(fault.code) or SUGGESTED_ACTION_BY_KIND[fault.kind]


class AlertKind(StrEnum):
    RAISED = "raised"
    RESOLVED = "resolved"
    FLAPPING = "flapping"


class AlertRecord(BaseModel):
    """An alert that was sent, as stored to decide the next one."""

    model_config = ConfigDict(frozen=True)

    fault_id: str
    episode: int
    kind: AlertKind
    at: datetime


class AlertDecision(BaseModel):
    """An alert to publish now."""

    model_config = ConfigDict(frozen=True)

    fault_id: str
    episode: int
    kind: AlertKind
    severity: Severity
    charger_id: str
    site_id: str
    connector_id: int
    code: str
    since: datetime
    suggested_action: str
    subject: str
    message: str
    at: datetime

    def record(self) -> AlertRecord:
        return AlertRecord(fault_id=self.fault_id, episode=self.episode, kind=self.kind, at=self.at)


class AlertPolicy(BaseModel):
    """When an operator is paged about a fault.

    - safety-critical: at once; major: once open `major_after`; minor: only if `minor_after`
      is set; info: never. An acknowledged fault is not paged: someone already owns it.
    - one RAISED alert per episode; a RESOLVED message when a fault that was alerted clears.
    - a fault re-opening `flap_threshold` times in a row (each within the flap window of its
      clearing) is paged once as FLAPPING with the count, at once if its severity is paged at
      all; further re-opens stay silent until it has stayed clear for `flap_quiet`, then one
      RESOLVED closes the storm.

    `decide` is also meant for a periodic sweep: the major delay and the flapping quiet time
    only pass between messages.
    """

    model_config = ConfigDict(frozen=True)

    major_after: timedelta = timedelta(minutes=10)
    minor_after: timedelta | None = None
    flap_threshold: int = 3
    flap_quiet: timedelta = FLAP_WINDOW

    def decide(
        self, fault: Fault, previous_alerts_for_fault: list[AlertRecord], now: datetime
    ) -> AlertDecision | None:
        last = max(previous_alerts_for_fault, key=lambda a: a.at, default=None)
        if fault.state is FaultState.RESOLVED:
            return self._resolution(fault, last, now)
        if last is not None and last.kind is AlertKind.FLAPPING:
            return None
        if any(
            a.episode == fault.episode and a.kind is not AlertKind.RESOLVED for a in previous_alerts_for_fault
        ):
            return None
        if fault.state is FaultState.ACKNOWLEDGED or not self._paged(fault, now):
            return None
        if fault.flaps >= self.flap_threshold:
            return _decision(fault, AlertKind.FLAPPING, now, _flapping_text(fault))
        return _decision(fault, AlertKind.RAISED, now, _raised_text(fault))

    def _paged(self, fault: Fault, now: datetime) -> bool:
        delay = self._delay(fault.severity)
        if delay is None:
            return False
        return fault.flaps >= self.flap_threshold or now - fault.first_seen >= delay

    def _delay(self, severity: Severity) -> timedelta | None:
        return {
            Severity.SAFETY_CRITICAL: timedelta(0),
            Severity.MAJOR: self.major_after,
            Severity.MINOR: self.minor_after,
            Severity.INFO: None,
        }[severity]

    def _resolution(self, fault: Fault, last: AlertRecord | None, now: datetime) -> AlertDecision | None:
        if last is None or last.kind is AlertKind.RESOLVED:
            return None
        cleared_for = now - _cleared_at(fault)
        if last.kind is AlertKind.FLAPPING and cleared_for < self.flap_quiet:
            return None
        return _decision(fault, AlertKind.RESOLVED, now, _resolved_text(fault, last))


def _decision(fault: Fault, kind: AlertKind, now: datetime, text: tuple[str, str]) -> AlertDecision:
    subject, message = text
    return AlertDecision(
        fault_id=fault.fault_id,
        episode=fault.episode,
        kind=kind,
        severity=fault.severity,
        charger_id=fault.charger_id,
        site_id=fault.site_id,
        connector_id=fault.connector_id,
        code=fault.code,
        since=fault.first_seen,
        suggested_action=suggested_action(fault),
        subject=subject,
        message=message,
        at=now,
    )


def _where(fault: Fault) -> str:
    connector = "whole charger" if fault.connector_id == 0 else f"connector {fault.connector_id}"
    return f"{fault.charger_id} {connector} (site {fault.site_id})"


def _details(fault: Fault) -> list[str]:
    vendor = f" (vendor {fault.vendor_error_code})" if fault.vendor_error_code else ""
    return [
        f"Charger: {fault.charger_id}",
        f"Site: {fault.site_id}",
        f"Connector: {fault.connector_id}",
        f"Fault: {fault.kind} {fault.code}{vendor}",
        f"Severity: {fault.severity}",
        f"Since: {ocpp_time(fault.first_seen)}",
        f"Suggested action: {suggested_action(fault)}",
        "Evidence:",
        *(f"  {line}" for line in fault.evidence),
    ]


def _raised_text(fault: Fault) -> tuple[str, str]:
    subject = f"[{fault.severity.upper()}] {fault.code} on {_where(fault)}"
    lines = [*_details(fault), f"Occurrences: {fault.occurrences}"]
    return subject, "\n".join(lines)


def _flapping_text(fault: Fault) -> tuple[str, str]:
    subject = (
        f"[{fault.severity.upper()}] {fault.code} flapping on {_where(fault)}: re-opened {fault.flaps} times"
    )
    lines = [
        *_details(fault),
        f"Re-opened {fault.flaps} times in a row; further re-opens are not alerted until it stays clear.",
    ]
    return subject, "\n".join(lines)


def _resolved_text(fault: Fault, last: AlertRecord) -> tuple[str, str]:
    subject = f"[RESOLVED] {fault.code} on {_where(fault)}"
    lines = [*_details(fault), f"Resolved: {ocpp_time(_cleared_at(fault))}"]
    if last.kind is AlertKind.FLAPPING:
        lines.append(f"Re-opened {fault.episode - last.episode} more times after the flapping alert.")
    return subject, "\n".join(lines)
