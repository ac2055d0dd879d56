"""The rules that turn what a charger said (or failed to say) into fault signals and resolutions.

Each rule is a pure function of what the caller read; the FaultTracker service applies
its result to the stored fault records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from chargenet.domain.clock import ocpp_time
from chargenet.domain.faults import (
    Fault,
    FaultKind,
    FaultResolution,
    FaultSignal,
    FaultState,
    Severity,
    fault_id,
    more_severe,
)
from chargenet.domain.meter_values import MeterReading
from chargenet.domain.models import Charger, PendingCall, SessionRecord
from chargenet.domain.ocpp201_messages import EventData
from chargenet.domain.sessions import (
    IDLE_POWER_W,
    Anomaly,
    AnomalyCode,
    EventKind,
    SessionEvent,
    SessionFacts,
)

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
POWER_ABOVE_RATING = AnomalyCode.POWER_ABOVE_RATING.value
SESSION_TOO_LONG = "SessionTooLong"
NO_METER_VALUES = "NoMeterValues"
CERTIFICATE_EXPIRY_CODE = "CertificateExpiry"

OUTAGE_STATUSES = frozenset({"Faulted", "Unavailable"})

# Heartbeats jitter, and last-seen is written at most once a minute (ingest.SEEN_WRITE_INTERVAL).
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
    inoperative_by_operator: bool = False,
) -> list[FaultSignal | FaultResolution]:
    """Resolutions first, then signals.

    `recent_same_code` counts earlier notifications with this error code on this connector
    within the caller's repeat window (this one not included). `inoperative_by_operator`: an
    operator's ChangeAvailability Inoperative explains an Unavailable (see `made_inoperative`).

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
    raised = _status_faults(status, error_code, recent_same_code, inoperative_by_operator)
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


def status_raises_fault(status: str, error_code: str) -> bool:
    """Whether `from_status_notification` raises anything for this status (it then resolves
    only what the status shows gone): a clean operative status only ever resolves."""
    return error_code != NO_ERROR or status in OUTAGE_STATUSES


def _status_faults(
    status: str, error_code: str, recent_same_code: int, inoperative_by_operator: bool
) -> list[tuple[FaultKind, str, Severity]]:
    raised = []
    severity = severity_of(error_code, repeated=recent_same_code >= REPEATED_EV_COMMUNICATION_ERROR)
    if severity is not None:
        if _out_of_service(status, inoperative_by_operator):
            # The code says why; the status says the connector cannot deliver energy (OCPP 1.6,
            # 4.9), whatever the reason: a WeakSignal that stops charging is no minor matter.
            severity = more_severe(severity, Severity.MAJOR)
        raised.append((FaultKind.CONNECTOR_ERROR, error_code, severity))
    elif status == "Faulted":
        # Faulted without a reason still takes the connector out of service.
        raised.append((FaultKind.CONNECTOR_ERROR, FAULTED, Severity.MAJOR))
    if status == "Unavailable":
        # Drivers cannot charge; a planned Inoperative is acknowledged or excluded by the operator.
        raised.append((FaultKind.CHARGER_UNAVAILABLE, UNAVAILABLE, Severity.MAJOR))
    return raised


def _out_of_service(status: str, inoperative_by_operator: bool) -> bool:
    return status == "Faulted" or (status == "Unavailable" and not inoperative_by_operator)


def names_the_problem(kind: FaultKind, code: str) -> bool:
    """A connector error that says what is wrong (a code, a device-model component), unlike the
    bare "Faulted" of a status without one."""
    return kind is FaultKind.CONNECTOR_ERROR and code != FAULTED


def is_bare_faulted(kind: FaultKind, code: str) -> bool:
    return kind is FaultKind.CONNECTOR_ERROR and code == FAULTED


def bare_faulted_id(charger_id: str, connector_id: int) -> str:
    return fault_id(charger_id, connector_id, FaultKind.CONNECTOR_ERROR, FAULTED)


def named_problems_since(faults: Iterable[Fault]) -> dict[tuple[str, int], datetime]:
    """(charger, connector) -> when the earliest connector error naming its problem that is open
    there began: any of them explains a Faulted status, which then needs no fault of its own
    (one problem, one episode, one page)."""
    since: dict[tuple[str, int], datetime] = {}
    for fault in faults:
        if fault.state is not FaultState.RESOLVED and names_the_problem(fault.kind, fault.code):
            where = (fault.charger_id, fault.connector_id)
            since[where] = min(fault.first_seen, since.get(where, fault.first_seen))
    return since


def made_inoperative(calls: Iterable[PendingCall], connector_id: int, by: datetime) -> bool:
    """Whether an operator had made the connector Inoperative by `by` (the backend's clock).

    The latest ChangeAvailability for the connector or the whole charger (connectorId 0) that
    the charger did not refuse decides. An unanswered one counts: the charger often sends its
    Unavailable before its answer is processed.
    """
    changes = [
        call
        for call in calls
        if call.action == "ChangeAvailability"
        and call.sent_at <= by
        and _availability_target(call.payload) in (0, connector_id)
        and not _refused(call)
    ]
    latest = max(changes, key=lambda call: call.sent_at, default=None)
    return latest is not None and _availability(latest.payload) == "Inoperative"


def _availability_target(payload: dict[str, Any]) -> Any:
    """The connector a ChangeAvailability is for, 0 for the whole charger: 1.6's connectorId, or
    2.0.1's EVSE (our connector; without one, the whole station)."""
    if "operationalStatus" in payload:
        return (payload.get("evse") or {}).get("id", 0)
    return payload.get("connectorId")


def _availability(payload: dict[str, Any]) -> Any:
    """Operative or Inoperative: 1.6's `type`, 2.0.1's `operationalStatus`."""
    return payload.get("type", payload.get("operationalStatus"))


def _refused(call: PendingCall) -> bool:
    outcome = call.outcome or {}
    return "error" in outcome or outcome.get("result", {}).get("status") == "Rejected"


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
    """Silence a connected charger may keep before it counts as offline.

    One missed heartbeat is normal. The last-seen time is written once it is half an interval
    old (services.ingest), so it lags the last frame by less than that: within the grace too.
    """
    return 2 * interval + HEARTBEAT_SLACK


def offline_check(
    charger: Charger, now: datetime, silence_grace: timedelta, reconnect_grace: timedelta
) -> FaultSignal | FaultResolution | None:
    """Offline once disconnected past `reconnect_grace`, or connected but silent past `silence_grace`.

    A disconnect (an IoT lifecycle event) is definite: the grace only lets a blip reconnect.
    Silence on a live connection (a half-open socket) is judged on heartbeats. A charger
    never seen is not commissioned yet, not offline. Connected and heard from: back.
    """
    disconnected_at = charger.presence_changed_at if not charger.online else None
    if disconnected_at is not None and now - disconnected_at > reconnect_grace:
        return _offline(charger, disconnected_at, f"disconnected since {ocpp_time(disconnected_at)}")
    if not charger.online or charger.last_seen_at is None:
        return None
    if now - charger.last_seen_at > silence_grace:
        since = charger.last_seen_at
        return _offline(charger, since, f"connected but no message since {ocpp_time(since)}")
    return _resolution(charger.charger_id, 0, FaultKind.OFFLINE, OFFLINE_CODE, now)


def _offline(charger: Charger, since: datetime, evidence: str) -> FaultSignal:
    return FaultSignal(
        charger_id=charger.charger_id,
        site_id=charger.site_id,
        connector_id=0,
        kind=FaultKind.OFFLINE,
        code=OFFLINE_CODE,
        severity=Severity.MAJOR,
        # The outage started when the charger was last heard from, not when we noticed.
        at=since,
        evidence=evidence,
    )


def reboot_loop(
    charger: Charger, now: datetime, window: timedelta = REBOOT_WINDOW, threshold: int = REBOOT_THRESHOLD
) -> FaultSignal | FaultResolution | None:
    """A loop is `threshold` BootNotifications within `window`; it is over after a window without one."""
    recent = sorted({t for t in charger.recent_boots if now - window < t <= now})
    if len(recent) >= threshold:
        return FaultSignal(
            charger_id=charger.charger_id,
            site_id=charger.site_id,
            connector_id=0,
            kind=FaultKind.REBOOT_LOOP,
            code=REBOOT_LOOP_CODE,
            severity=Severity.MAJOR,
            at=recent[-1],
            evidence=f"{len(recent)} BootNotifications within {window}",
        )
    if not recent:
        return _resolution(charger.charger_id, 0, FaultKind.REBOOT_LOOP, REBOOT_LOOP_CODE, now)
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
    last_wh, before_wh = energy[-1].energy_wh, energy[-2].energy_wh
    if last_wh is not None and before_wh is not None and last_wh > before_wh:
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
    lowest = min(r.power_w for r in run if r.power_w is not None)  # a drawing run: all have power
    return lowest * Decimal(micros) / Decimal(3_600_000_000)


# Session anomalies that say something about the charger. A missing StartTransaction is a
# bookkeeping problem, reviewed with the session rather than raised against the charger.
ANOMALY_FAULTS: dict[AnomalyCode, tuple[FaultKind, Severity]] = {
    AnomalyCode.STOP_BELOW_START: (FaultKind.METERING, Severity.MAJOR),
    AnomalyCode.METER_RESET: (FaultKind.METERING, Severity.MAJOR),
    AnomalyCode.REGISTER_BACKWARDS: (FaultKind.METERING, Severity.MAJOR),
    AnomalyCode.IMPOSSIBLE_JUMP: (FaultKind.METERING, Severity.MAJOR),
    # A wrong meter or a real overload: the kind of the meter faults, and it stays open until a
    # later session on the connector runs within the rating.
    AnomalyCode.POWER_ABOVE_RATING: (FaultKind.METERING, Severity.MAJOR),
    AnomalyCode.NO_READINGS: (FaultKind.SESSION, Severity.MINOR),
    # 2.0.1's gaps are missing data like NoReadings, not a register contradicting itself: minor
    # session faults, on the dashboard, that keep the session from vouching for the connector's meter.
    AnomalyCode.NO_START_REGISTER: (FaultKind.SESSION, Severity.MINOR),
    AnomalyCode.MISSING_EVENTS: (FaultKind.SESSION, Severity.MINOR),
}


def session_metering(
    session: SessionRecord, facts: SessionFacts, events: list[SessionEvent]
) -> list[FaultSignal | FaultResolution]:
    """Metering faults seen in one session: its anomalies (power above the rating among them) and
    a stuck register.

    While the session runs only signals are returned (a clean reading is the normal case and
    must not cost a fault lookup per MeterValues). A session that stopped clean shows the
    connector's meter works: it clears the connector's metering and session faults. A session
    with an anomaly never does, however it ended: its own stop cannot vouch for its meter.
    """
    where = (session.charger_id, session.site_id, session.connector_id)
    found: list[FaultSignal | FaultResolution] = [
        _anomaly_signal(*where, session.session_id, anomaly)
        for anomaly in facts.anomalies
        if anomaly.code in ANOMALY_FAULTS
    ]
    readings = [e.reading for e in events if e.kind is EventKind.METER and e.reading is not None]
    statuses = sorted((e.at, e.status) for e in events if e.kind is EventKind.STATUS and e.status)
    # Chargers that do not report Charging are taken to charge while the session runs.
    status = statuses[-1][1] if statuses else ("Charging" if facts.stopped_at is None else "Finishing")
    stuck = stuck_meter(*where, readings, status)
    if isinstance(stuck, FaultSignal):
        found.append(stuck)
    if facts.stopped_at is not None and not found:
        return [
            FaultResolution(
                charger_id=session.charger_id,
                connector_id=session.connector_id,
                kinds=frozenset({FaultKind.METERING, FaultKind.SESSION}),
                at=facts.stopped_at,
            )
        ]
    return found


def _anomaly_signal(
    charger_id: str,
    site_id: str,
    connector_id: int,
    session_id: str,
    anomaly: Anomaly,
) -> FaultSignal:
    kind, severity = ANOMALY_FAULTS[anomaly.code]
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=connector_id,
        kind=kind,
        code=anomaly.code.value,
        severity=severity,
        at=anomaly.at,
        evidence=f"session {session_id}: {anomaly.detail}",
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
    charger: Charger, now: datetime, warn_days: int = CERTIFICATE_WARN_DAYS
) -> FaultSignal | FaultResolution | None:
    """Minor within `warn_days` of expiry, major within a week or once expired; a renewal clears it.

    One code for every stage, so the fault escalates instead of multiplying. The condition is
    dated when the sweep first sees it (`now`), never earlier: a certificate issued at 11:00
    must not have been expiring since midnight, nor skip the major delay. Each stage is one
    standing sighting, so sweeps a minute apart repeat it instead of rewriting the fault.
    """
    not_after = charger.certificate_not_after
    if not_after is None:
        return None
    left = not_after - now
    if left > timedelta(days=warn_days):
        return _resolution(charger.charger_id, 0, FaultKind.CERTIFICATE_EXPIRY, CERTIFICATE_EXPIRY_CODE, now)
    urgent = left <= timedelta(days=CERTIFICATE_URGENT_DAYS)
    if left <= timedelta(0):
        stage = f"expired {ocpp_time(not_after)}"
    else:
        within = CERTIFICATE_URGENT_DAYS if urgent else warn_days
        stage = f"expires {ocpp_time(not_after)}, within {within} days"
    return FaultSignal(
        charger_id=charger.charger_id,
        site_id=charger.site_id,
        connector_id=0,
        kind=FaultKind.CERTIFICATE_EXPIRY,
        code=CERTIFICATE_EXPIRY_CODE,
        severity=Severity.MAJOR if urgent else Severity.MINOR,
        at=now,
        evidence=f"certificate {stage}",
        standing=True,
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
    evidence = f"SecurityEventNotification {event_type}" + (f": {tech_info}" if tech_info else "")
    return _security_fault(charger_id, site_id, event_type, severity, at, evidence)


def certificate_abuse(charger_id: str, site_id: str, code: str, detail: str, at: datetime) -> FaultSignal:
    """The backend's own finding about a charger's certificate requests (too many signings, a
    confirmation over another certificate): major, since only a stolen key or a broken shim
    explains it, and the operator decides whether to revoke. Never quotes the CSR."""
    return _security_fault(charger_id, site_id, code, Severity.MAJOR, at, detail)


def _security_fault(
    charger_id: str, site_id: str, code: str, severity: Severity, at: datetime, evidence: str
) -> FaultSignal:
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=0,
        kind=FaultKind.SECURITY_EVENT,
        code=code,
        severity=severity,
        at=at,
        evidence=evidence,
    )


def _resolution(
    charger_id: str, connector_id: int, kind: FaultKind, code: str, at: datetime
) -> FaultResolution:
    return FaultResolution(
        charger_id=charger_id, connector_id=connector_id, kinds=frozenset({kind}), code=code, at=at
    )


# OCPP 2.0.1 NotifyEvent: the device-model component that reports a problem -> the OCPP 1.6 error
# code of the same failure, so a 2.0.1 charger's faults have the kinds, codes and severities of a
# 1.6 one (ERROR_CODE_SEVERITY). Components not listed report as OtherError (minor, but visible).
# The table is repeated in docs/faults.md ("OCPP 2.0.1 device-model events").
DEVICE_COMPONENT_CODES: dict[str, str] = {
    "RCD": "GroundFailure",
    "GroundIsolationProtection": "GroundFailure",
    "OverCurrentProtection": "OverCurrentFailure",
    "TemperatureSensor": "HighTemperature",
    "ExternalTemperatureSensor": "HighTemperature",
    "ConnectorPlugRetentionLock": "ConnectorLockFailure",
    "EVRetentionLock": "ConnectorLockFailure",
    "FiscalMetering": "PowerMeterFailure",
    "ControlMetering": "PowerMeterFailure",
    "PowerContactor": "PowerSwitchFailure",
    "AcDcConverter": "InternalError",
    "Controller": "InternalError",
    "CPPWMController": "InternalError",
    "ChargingStation": "InternalError",
    "TokenReader": "ReaderFailure",
    "DataLink": "WeakSignal",
}
# Boolean variables that say "this component is failing" when "true" (OCPP 2.0.1 part 2,
# the standardized variables); any variable that a monitor raised (trigger Alerting) says so too.
PROBLEM_VARIABLES = frozenset({"Problem", "Tripped"})
ALERTING = "Alerting"


def device_event(charger_id: str, site_id: str, event: EventData) -> FaultSignal | FaultResolution | None:
    """A NotifyEvent entry as a connector error on its EVSE (0: the station), or None when it
    reports no problem (a Delta or Periodic value of any other variable: device-model news).

    A problem opens (or is seen again in) the fault of its component's code; `cleared`, or a
    problem variable back to "false", resolves that code's fault. The episode is the fault's:
    a monitor alerting again on an open fault is a sighting, not a new alert.
    """
    is_problem_variable = event.variable.name in PROBLEM_VARIABLES
    if not (is_problem_variable or event.trigger == ALERTING):
        return None
    code = DEVICE_COMPONENT_CODES.get(event.component.name, "OtherError")
    connector_id = event.component.evse_id
    gone = event.cleared is True or (is_problem_variable and event.actual_value.lower() == "false")
    if gone:
        return _resolution(charger_id, connector_id, FaultKind.CONNECTOR_ERROR, code, event.timestamp)
    return FaultSignal(
        charger_id=charger_id,
        site_id=site_id,
        connector_id=connector_id,
        kind=FaultKind.CONNECTOR_ERROR,
        code=code,
        vendor_error_code=event.tech_code,
        severity=ERROR_CODE_SEVERITY.get(code, Severity.MINOR),
        at=event.timestamp,
        evidence=_device_event_evidence(event),
    )


def _device_event_evidence(event: EventData) -> str:
    component, variable = event.component, event.variable
    where = component.name + (f"[{component.instance}]" if component.instance else "")
    what = variable.name + (f"[{variable.instance}]" if variable.instance else "")
    text = f"NotifyEvent EVSE {component.evse_id} {where}/{what}={event.actual_value} ({event.trigger})"
    return text + (f" techInfo={event.tech_info}" if event.tech_info else "")
