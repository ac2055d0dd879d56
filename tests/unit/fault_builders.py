"""Shared builders for the fault domain's unit tests."""

from datetime import UTC, datetime, timedelta

from chargenet.domain.faults import Fault, FaultKind, FaultResolution, FaultSignal, Severity, observe, resolve
from chargenet.domain.models import SessionRecord, TagStatus

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SC, MAJ, MIN = Severity.SAFETY_CRITICAL, Severity.MAJOR, Severity.MINOR


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def signal(
    minutes=0,
    code="GroundFailure",
    severity=SC,
    kind=FaultKind.CONNECTOR_ERROR,
    connector=1,
    evidence="StatusNotification",
    vendor=None,
):
    return FaultSignal(
        charger_id="CP-1",
        site_id="S-1",
        connector_id=connector,
        kind=kind,
        code=code,
        vendor_error_code=vendor,
        severity=severity,
        at=at(minutes),
        evidence=evidence,
    )


def session_record(started: datetime, connector: int = 1, **fields: object) -> SessionRecord:
    """Session 7 (tag TAG-1) on CP-1 at site S-1."""
    return SessionRecord(
        session_id="7",
        transaction_id=7,
        charger_id="CP-1",
        site_id="S-1",
        connector_id=connector,
        id_tag="TAG-1",
        tag_status=TagStatus.ACCEPTED,
        started_at=started,
        **fields,
    )


def opened(minutes=0, **kwargs):
    return observe(None, signal(minutes, **kwargs), at(minutes))


def apply(faults: dict[str, Fault], results, now) -> dict[str, Fault]:
    """What the fault service does with a source rule's output."""
    faults = dict(faults)
    for result in results if isinstance(results, list) else [results]:
        if isinstance(result, FaultSignal):
            faults[result.fault_id] = observe(faults.get(result.fault_id), result, now)
        elif isinstance(result, FaultResolution):
            for key, fault in faults.items():
                if result.matches(fault):
                    faults[key] = resolve(fault, result.at)
    return faults
