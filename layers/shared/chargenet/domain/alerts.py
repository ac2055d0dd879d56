"""When an operator is paged about a fault, and what the page says."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chargenet.domain.clock import ocpp_time
from chargenet.domain.fault_rules import (
    FAULTED,
    NO_METER_VALUES,
    POWER_ABOVE_RATING,
    SESSION_TOO_LONG,
    STUCK_METER,
    UNAVAILABLE,
)
from chargenet.domain.faults import FLAP_WINDOW, Fault, FaultKind, FaultState, Severity, cleared_at
from chargenet.domain.sessions import AnomalyCode

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
    AnomalyCode.NO_START_REGISTER.value: (
        "GetVariables SampledDataCtrlr.TxStartedMeasurands: it should name Energy.Active.Import.Register; "
        "review the session"
    ),
    AnomalyCode.MISSING_EVENTS.value: (
        "review the session; GetLog if TransactionEvents keep going missing (the charger's offline queue)"
    ),
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
    """An alert decided, as stored to decide the next one and to send it if a crash did not.

    `published` is False from the decision until the topic accepted the alert: the record is
    its own outbox, and whatever stays unpublished is sent again (`overdue`, `redelivery`).
    """

    model_config = ConfigDict(frozen=True)

    fault_id: str
    episode: int
    kind: AlertKind
    at: datetime
    published: bool

    def as_published(self) -> AlertRecord:
        return self.model_copy(update={"published": True})


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
        return AlertRecord(
            fault_id=self.fault_id, episode=self.episode, kind=self.kind, at=self.at, published=False
        )


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
        if paged_this_episode(fault, previous_alerts_for_fault):
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
        cleared_for = now - cleared_at(fault)
        if last.kind is AlertKind.FLAPPING and cleared_for < self.flap_quiet:
            return None
        return _decision(fault, AlertKind.RESOLVED, now, _resolved_text(fault, last))


def paged_this_episode(fault: Fault, alerts: list[AlertRecord]) -> bool:
    """Whether an operator was paged (raised or flapping) about the fault's current episode."""
    return any(a.episode == fault.episode and a.kind is not AlertKind.RESOLVED for a in alerts)


def overdue(alerts: list[AlertRecord], decided_by: datetime) -> list[AlertRecord]:
    """Alerts decided by the cut-off and still unpublished, oldest first."""
    return sorted((a for a in alerts if not a.published and a.at <= decided_by), key=lambda a: a.at)


def redelivery(fault: Fault, record: AlertRecord, alerts: list[AlertRecord]) -> AlertDecision:
    """The alert `record` stands for, to publish again; its text describes the fault as stored now."""
    if record.kind is AlertKind.RESOLVED:
        earlier = max((a for a in alerts if a.at < record.at), key=lambda a: a.at, default=None)
        text = _resolved_text(fault, earlier)
    elif record.kind is AlertKind.FLAPPING:
        text = _flapping_text(fault)
    else:
        text = _raised_text(fault)
    return _decision(fault, record.kind, record.at, text, episode=record.episode)


def _decision(
    fault: Fault, kind: AlertKind, now: datetime, text: tuple[str, str], episode: int | None = None
) -> AlertDecision:
    subject, message = text
    return AlertDecision(
        fault_id=fault.fault_id,
        episode=fault.episode if episode is None else episode,
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


def _resolved_text(fault: Fault, last: AlertRecord | None) -> tuple[str, str]:
    subject = f"[RESOLVED] {fault.code} on {_where(fault)}"
    lines = [*_details(fault), f"Resolved: {ocpp_time(cleared_at(fault))}"]
    if last is not None and last.kind is AlertKind.FLAPPING:
        lines.append(f"Re-opened {fault.episode - last.episode} more times after the flapping alert.")
    return subject, "\n".join(lines)
