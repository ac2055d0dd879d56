"""The rules that raise and clear faults, one source at a time."""

from datetime import timedelta
from decimal import Decimal

import pytest

from chargenet.domain.alerts import (
    SUGGESTED_ACTION_BY_CODE,
)
from chargenet.domain.fault_rules import (
    ANOMALY_FAULTS,
    ERROR_CODE_SEVERITY,
    SECURITY_EVENT_SEVERITY,
    certificate_expiry,
    from_status_notification,
    heartbeat_grace,
    made_inoperative,
    no_meter_values,
    offline_check,
    reboot_loop,
    security_event,
    session_metering,
    session_too_long,
    severity_of,
    stuck_meter,
)
from chargenet.domain.faults import (
    FaultKind,
    FaultResolution,
    FaultSignal,
    FaultState,
    Severity,
)
from chargenet.domain.meter_values import MeterReading
from chargenet.domain.models import Charger, PendingCall, SessionRecord
from chargenet.domain.sessions import AnomalyCode, EventKind, SessionEvent, fold
from tests.unit.fault_builders import MAJ, MIN, SC, T0, apply, at, session_record

# --- severity --------------------------------------------------------------------------

OCPP_16_ERROR_CODES = {
    "ConnectorLockFailure": MAJ,
    "EVCommunicationError": MIN,
    "GroundFailure": SC,
    "HighTemperature": SC,
    "InternalError": MAJ,
    "LocalListConflict": MIN,
    "NoError": None,
    "OtherError": MIN,
    "OverCurrentFailure": SC,
    "PowerMeterFailure": MAJ,
    "PowerSwitchFailure": MAJ,
    "ReaderFailure": MIN,
    "ResetFailure": MAJ,
    "UnderVoltage": MIN,
    "OverVoltage": SC,
    "WeakSignal": MIN,
}


@pytest.mark.parametrize(("code", "expected"), OCPP_16_ERROR_CODES.items())
def test_every_ocpp_error_code_has_its_severity(code, expected):
    assert severity_of(code) is expected


def test_the_table_covers_exactly_the_ocpp_16_codes():
    assert set(ERROR_CODE_SEVERITY) | {"NoError"} == set(OCPP_16_ERROR_CODES)


@pytest.mark.parametrize(
    "code", [c for c in OCPP_16_ERROR_CODES if c not in ("EVCommunicationError", "NoError")]
)
def test_only_ev_communication_error_changes_when_repeated(code):
    assert severity_of(code, repeated=True) is severity_of(code)


def test_repeated_ev_communication_error_is_major():
    assert severity_of("EVCommunicationError", repeated=True) is MAJ


def test_an_unknown_code_is_visible_as_minor():
    assert severity_of("VendorSpecificThing") is MIN


def test_every_error_code_has_a_suggested_action_of_its_own():
    assert set(ERROR_CODE_SEVERITY) <= set(SUGGESTED_ACTION_BY_CODE)


# --- StatusNotification ----------------------------------------------------------------


def status(status_name, error_code="NoError", minutes=0, connector=1, recent=0, vendor=None, info=None):
    return from_status_notification(
        "CP-1", "S-1", connector, status_name, error_code, vendor, info, at(minutes), recent
    )


def test_faulted_with_an_error_code_raises_a_connector_error():
    (raised,) = status("Faulted", "GroundFailure", vendor="GF-7", info="RCD tripped")
    assert (raised.kind, raised.code, raised.severity) == (FaultKind.CONNECTOR_ERROR, "GroundFailure", SC)
    assert raised.vendor_error_code == "GF-7"
    assert "RCD tripped" in raised.evidence and "GF-7" in raised.evidence


def test_faulted_without_an_error_code_is_still_a_major_fault():
    (raised,) = status("Faulted")
    assert (raised.kind, raised.code, raised.severity) == (FaultKind.CONNECTOR_ERROR, "Faulted", MAJ)


def test_unavailable_raises_unavailability():
    (raised,) = status("Unavailable")
    assert (raised.kind, raised.code, raised.severity) == (FaultKind.CHARGER_UNAVAILABLE, "Unavailable", MAJ)


def test_unavailable_with_an_error_raises_both():
    kinds = {(r.kind, r.code) for r in status("Unavailable", "InternalError")}
    assert kinds == {
        (FaultKind.CONNECTOR_ERROR, "InternalError"),
        (FaultKind.CHARGER_UNAVAILABLE, "Unavailable"),
    }


@pytest.mark.parametrize("operative", ["Available", "Preparing", "Charging", "SuspendedEV", "Finishing"])
def test_an_operative_status_without_error_resolves_the_connectors_faults(operative):
    (resolution,) = status(operative, minutes=10)
    assert resolution.kinds == {FaultKind.CONNECTOR_ERROR, FaultKind.CHARGER_UNAVAILABLE}
    assert resolution.at == at(10)


def test_an_operative_status_with_an_error_ends_unavailability_only():
    resolution, raised = status("Available", "WeakSignal")
    assert resolution.kinds == {FaultKind.CHARGER_UNAVAILABLE}
    assert (raised.code, raised.severity) == ("WeakSignal", MIN)


ERROR_CODES = [code for code in OCPP_16_ERROR_CODES if code != "NoError"]
OPERATIVE_MINOR = [code for code in ERROR_CODES if OCPP_16_ERROR_CODES[code] is MIN]


@pytest.mark.parametrize("code", ERROR_CODES)
def test_a_faulted_connector_is_at_least_a_major_fault_whatever_its_code(code):
    (raised,) = status("Faulted", code)
    assert (raised.kind, raised.code) == (FaultKind.CONNECTOR_ERROR, code)
    assert raised.severity is (SC if OCPP_16_ERROR_CODES[code] is SC else MAJ)


@pytest.mark.parametrize("code", OPERATIVE_MINOR)
def test_the_same_codes_with_an_operative_status_stay_minor(code):
    _, raised = status("Available", code)
    assert raised.severity is MIN


@pytest.mark.parametrize("code", OPERATIVE_MINOR)
def test_an_unavailable_the_operator_did_not_ask_for_is_out_of_service_too(code):
    error = next(r for r in status("Unavailable", code) if r.kind is FaultKind.CONNECTOR_ERROR)
    assert error.severity is MAJ


def test_an_unavailable_the_operator_asked_for_keeps_the_codes_severity():
    planned = from_status_notification(
        "CP-1", "S-1", 1, "Unavailable", "WeakSignal", None, None, at(0), 0, inoperative_by_operator=True
    )
    by_kind = {r.kind: r.severity for r in planned}
    assert by_kind == {FaultKind.CONNECTOR_ERROR: MIN, FaultKind.CHARGER_UNAVAILABLE: MAJ}


def availability(minutes, connector, kind, answer="Accepted"):
    outcome = None if answer is None else {"result": {"status": answer}}
    return PendingCall(
        charger_id="CP-1",
        message_id=f"ca-{minutes}",
        action="ChangeAvailability",
        payload={"connectorId": connector, "type": kind},
        sent_at=at(minutes),
        outcome=outcome,
    )


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([], False),
        ([availability(0, 1, "Inoperative")], True),
        ([availability(0, 0, "Inoperative")], True),  # the whole charger
        ([availability(0, 2, "Inoperative")], False),  # another connector
        ([availability(0, 1, "Inoperative", answer="Scheduled")], True),
        ([availability(0, 1, "Inoperative", answer=None)], True),  # its answer still on its way
        ([availability(0, 1, "Inoperative", answer="Rejected")], False),
        ([availability(0, 1, "Inoperative"), availability(1, 1, "Operative")], False),
        ([availability(0, 1, "Inoperative"), availability(1, 1, "Operative", answer="Rejected")], True),
        ([availability(6, 1, "Inoperative")], False),  # sent after the status arrived
    ],
)
def test_an_operator_made_the_connector_inoperative(calls, expected):
    other = PendingCall(
        charger_id="CP-1", message_id="r", action="Reset", payload={"type": "Soft"}, sent_at=at(2)
    )
    assert made_inoperative([*calls, other], 1, at(5)) is expected


def test_a_status_sequence_opens_updates_and_resolves_only_its_connectors_faults():
    faults = apply({}, status("Faulted", "GroundFailure"), at(0))
    faults = apply(faults, status("Faulted", "GroundFailure", minutes=1), at(1))
    faults = apply(faults, status("Faulted", "GroundFailure", connector=2), at(1))
    faults = apply(faults, disconnected(at(0), at(20)), at(20))
    faults = apply(faults, status("Available", minutes=30), at(30))
    by_key = {(f.connector_id, f.kind): f for f in faults.values()}
    assert len(faults) == 3
    assert by_key[(1, FaultKind.CONNECTOR_ERROR)].state is FaultState.RESOLVED
    assert by_key[(1, FaultKind.CONNECTOR_ERROR)].occurrences == 2
    assert by_key[(2, FaultKind.CONNECTOR_ERROR)].state is FaultState.OPEN
    assert by_key[(0, FaultKind.OFFLINE)].state is FaultState.OPEN


@pytest.mark.parametrize(("recent", "expected"), [(0, MIN), (1, MIN), (2, MAJ), (5, MAJ)])
def test_ev_communication_error_becomes_major_when_repeated(recent, expected):
    (raised,) = status("Charging", "EVCommunicationError", recent=recent)[1:]
    assert raised.severity is expected


# --- offline ---------------------------------------------------------------------------

GRACE = heartbeat_grace(timedelta(minutes=5))
RECONNECT = timedelta(minutes=2)


def charger(last_seen=None, online=True, changed=None, boots=(), cert=None) -> Charger:
    return Charger(
        charger_id="CP-1",
        site_id="S-1",
        registered_at=at(-1000),
        last_seen_at=last_seen,
        online=online,
        presence_changed_at=changed,
        recent_boots=list(boots),
        certificate_not_after=cert,
    )


def connected(last_seen, now):
    return offline_check(charger(last_seen, True, changed=last_seen), now, GRACE, RECONNECT)


def disconnected(since, now, last_seen=None):
    return offline_check(charger(last_seen or since, False, changed=since), now, GRACE, RECONNECT)


def test_heartbeat_grace_allows_one_missed_heartbeat_and_the_last_seen_write_interval():
    assert heartbeat_grace(timedelta(minutes=5)) == timedelta(minutes=11)


def test_a_charger_never_seen_is_not_offline():
    assert offline_check(charger(), at(100), GRACE, RECONNECT) is None


def test_a_single_missed_heartbeat_raises_nothing():
    result = connected(at(0), at(10))
    assert isinstance(result, FaultResolution)
    assert apply({}, result, at(10)) == {}


def test_disconnected_within_the_reconnect_grace_raises_nothing():
    assert disconnected(at(0), at(1)) is None
    assert disconnected(at(0), at(2)) is None


def test_a_quick_reconnect_raises_nothing():
    faults = apply({}, disconnected(at(0), at(1)) or [], at(1))
    faults = apply(faults, connected(at(1.5), at(1.5)), at(1.5))
    faults = apply(faults, connected(at(1.5), at(12)), at(12))
    assert faults == {}


def test_disconnected_past_the_grace_opens_a_fault_dated_from_the_disconnect():
    raised = disconnected(at(5), at(7) + timedelta(seconds=1), last_seen=at(4))
    assert (raised.kind, raised.code, raised.severity, raised.connector_id) == (
        FaultKind.OFFLINE,
        "Offline",
        MAJ,
        0,
    )
    assert raised.at == at(5)
    assert "disconnected" in raised.evidence


def test_a_connected_but_silent_charger_is_offline_after_two_heartbeats():
    assert isinstance(connected(at(0), at(11)), FaultResolution)
    raised = connected(at(0), at(11) + timedelta(seconds=1))
    assert raised.kind is FaultKind.OFFLINE and "no message" in raised.evidence
    assert raised.at == at(0)


def test_reconnecting_resolves_the_offline_fault():
    faults = apply({}, disconnected(at(0), at(15)), at(15))
    faults = apply(faults, connected(at(40), at(40)), at(40))
    (fault,) = faults.values()
    assert (fault.state, fault.first_seen, fault.resolved_at) == (FaultState.RESOLVED, at(0), at(40))


def test_repeated_sweeps_keep_one_offline_fault():
    faults = {}
    for minute in (15, 20, 25):
        faults = apply(faults, disconnected(at(0), at(minute)), at(minute))
    (fault,) = faults.values()
    assert fault.occurrences == 1


# --- reboot loop -----------------------------------------------------------------------


def booted(*minutes):
    return charger(last_seen=at(0), boots=[at(m) for m in minutes])


def test_three_boots_within_the_window_are_a_reboot_loop():
    raised = reboot_loop(booted(1, 15, 29), at(30))
    assert (raised.kind, raised.code, raised.severity, raised.at) == (
        FaultKind.REBOOT_LOOP,
        "RebootLoop",
        MAJ,
        at(29),
    )
    assert "3 BootNotifications" in raised.evidence


def test_a_boot_recorded_twice_counts_once():
    assert reboot_loop(booted(1, 15, 15), at(30)) is None


def test_a_boot_exactly_one_window_ago_is_outside_it():
    assert reboot_loop(booted(0, 15, 29), at(30)) is None


def test_boots_spread_wider_than_the_window_are_no_loop():
    assert reboot_loop(booted(0, 40, 80), at(81)) is None


def test_the_window_and_threshold_are_configurable():
    assert isinstance(reboot_loop(booted(0, 40, 80), at(81), window=timedelta(hours=2)), FaultSignal)
    assert isinstance(
        reboot_loop(booted(40, 80), at(81), window=timedelta(hours=1), threshold=2), FaultSignal
    )


def test_a_window_without_boots_ends_the_loop():
    assert isinstance(reboot_loop(booted(0, 1, 2), at(40)), FaultResolution)


def test_boots_after_now_are_not_counted():
    assert reboot_loop(booted(10, 31, 32), at(30)) is None


# --- metering and sessions -------------------------------------------------------------


def reading(minutes, wh, power_w=11_000):
    return MeterReading(
        at=at(minutes),
        energy_wh=None if wh is None else Decimal(wh),
        power_w=None if power_w is None else Decimal(power_w),
    )


def test_a_register_standing_still_while_charging_is_stuck():
    readings = [reading(0, 5000), reading(1, 5183), *(reading(m, 5366) for m in range(2, 6))]
    raised = stuck_meter("CP-1", "S-1", 1, readings, "Charging")
    assert (raised.kind, raised.code, raised.severity, raised.at) == (
        FaultKind.METERING,
        "StuckMeter",
        MAJ,
        at(5),
    )
    assert "5366" in raised.evidence


def test_two_flat_intervals_are_not_yet_stuck():
    readings = [reading(0, 5000), *(reading(m, 5183) for m in range(1, 4))]
    assert stuck_meter("CP-1", "S-1", 1, readings, "Charging") is None


def test_a_flat_register_is_fine_when_not_charging_or_not_drawing():
    flat = [reading(m, 5000) for m in range(6)]
    assert stuck_meter("CP-1", "S-1", 1, flat, "SuspendedEV") is None
    idle = [reading(m, 5000, power_w=0) for m in range(6)]
    assert stuck_meter("CP-1", "S-1", 1, idle, "Charging") is None
    unknown_power = [reading(m, 5000, power_w=None) for m in range(6)]
    assert stuck_meter("CP-1", "S-1", 1, unknown_power, "Charging") is None


def test_a_trickle_too_small_for_the_register_resolution_is_not_stuck():
    trickle = [reading(m, 5000, power_w=60) for m in range(6)]
    assert stuck_meter("CP-1", "S-1", 1, trickle, "Charging") is None


def test_readings_without_energy_are_ignored_and_order_does_not_matter():
    readings = [reading(m, 5000) for m in (4, 2, 0, 3, 1)] + [reading(2.5, None)]
    assert isinstance(stuck_meter("CP-1", "S-1", 1, readings, "Charging"), FaultSignal)


def test_a_rising_register_resolves_a_stuck_meter():
    resolution = stuck_meter("CP-1", "S-1", 1, [reading(0, 5000), reading(1, 5183)], "Charging")
    assert (resolution.kinds, resolution.code, resolution.at) == ({FaultKind.METERING}, "StuckMeter", at(1))


def metered_session(*power_w: int, stopped: bool = True) -> tuple[SessionRecord, list[SessionEvent]]:
    """A session on an 11 kW connector with one power reading a minute, stopped after them."""
    record = session_record(at(0), rated_power_w=11_000)
    events = [SessionEvent(kind=EventKind.START, at=at(0), connector_id=1, meter_start_wh=0)]
    events += [
        SessionEvent(kind=EventKind.METER, at=at(n + 1), reading=reading(n + 1, 180 * (n + 1), watts))
        for n, watts in enumerate(power_w)
    ]
    if stopped:
        end = len(power_w) + 1
        events.append(SessionEvent(kind=EventKind.STOP, at=at(end), meter_stop_wh=180 * end))
    return record, events


def metering(*power_w: int, stopped: bool = True) -> list[FaultSignal | FaultResolution]:
    record, events = metered_session(*power_w, stopped=stopped)
    return session_metering(record, fold(events, Decimal(record.rated_power_w)), events)


def test_power_above_the_rating_with_tolerance():
    (clean,) = metering(12_100)
    assert isinstance(clean, FaultResolution)
    (raised,) = metering(12_101)
    assert (raised.kind, raised.code, raised.severity) == (FaultKind.METERING, "PowerAboveRating", MAJ)


def test_power_above_the_rating_is_raised_while_the_session_runs():
    (raised,) = metering(11_000, 150_000, stopped=False)
    assert (raised.code, raised.at) == ("PowerAboveRating", at(2))
    assert "150000 W" in raised.evidence


def test_the_stop_of_a_session_with_power_above_the_rating_does_not_clear_it():
    """Its last readings within the rating do not vouch for the meter that read 150 kW."""
    found = metering(150_000, 150_000, 150_000, 11_000)
    assert [(type(f), f.code) for f in found] == [(FaultSignal, "PowerAboveRating")]


def session_201(*, start_register: int | None, seq_nos: tuple[int, ...]) -> list[SessionEvent]:
    """A 2.0.1 transaction: Started (seqNo 0), one reading a minute as Updated, Ended (the last seqNo)."""
    *updated, ended = seq_nos
    events = [
        SessionEvent(kind=EventKind.START, at=at(0), connector_id=1, meter_start_wh=start_register, seq_no=0)
    ]
    events += [
        SessionEvent(kind=EventKind.METER, at=at(n + 1), reading=reading(n + 1, 180 * (n + 1)), seq_no=seq)
        for n, seq in enumerate(updated)
    ]
    end = len(updated) + 1
    events.append(SessionEvent(kind=EventKind.STOP, at=at(end), meter_stop_wh=180 * end, seq_no=ended))
    return events


@pytest.mark.parametrize(
    ("start_register", "seq_nos", "code"),
    [
        (0, (1, 3, 4), "MissingTransactionEvents"),  # seqNo 2 never came
        (None, (1, 2, 3), "NoStartRegister"),
    ],
)
def test_a_201_session_with_a_gap_is_a_minor_session_fault_and_clears_nothing(
    start_register: int | None, seq_nos: tuple[int, ...], code: str
) -> None:
    record = session_record(at(0), rated_power_w=11_000)
    events = session_201(start_register=start_register, seq_nos=seq_nos)
    (raised,) = session_metering(record, fold(events, Decimal(11_000)), events)
    assert isinstance(raised, FaultSignal)
    assert (raised.kind, raised.code, raised.severity) == (FaultKind.SESSION, code, MIN)
    assert raised.evidence.startswith(f"session {record.session_id}: ")


def test_a_complete_201_session_vouches_for_the_meter() -> None:
    record = session_record(at(0), rated_power_w=11_000)
    events = session_201(start_register=0, seq_nos=(1, 2, 3))
    (clean,) = session_metering(record, fold(events, Decimal(11_000)), events)
    assert isinstance(clean, FaultResolution)
    assert clean.kinds == {FaultKind.METERING, FaultKind.SESSION}


def test_every_201_review_reason_has_its_own_suggested_action() -> None:
    for code in (AnomalyCode.NO_START_REGISTER, AnomalyCode.MISSING_EVENTS):
        assert code in ANOMALY_FAULTS
        assert code.value in SUGGESTED_ACTION_BY_CODE


def test_session_too_long():
    limit = timedelta(hours=24)
    assert isinstance(session_too_long("CP-1", "S-1", 1, 7, at(0), at(0) + limit), FaultResolution)
    raised = session_too_long("CP-1", "S-1", 1, 7, at(0), at(0) + limit + timedelta(seconds=1))
    assert (raised.kind, raised.code, raised.severity, raised.at) == (
        FaultKind.SESSION,
        "SessionTooLong",
        MIN,
        at(0) + limit,
    )
    assert "transaction 7" in raised.evidence


def test_no_meter_values_for_several_intervals():
    interval = timedelta(minutes=1)
    assert isinstance(no_meter_values("CP-1", "S-1", 1, at(0), at(3), interval), FaultResolution)
    raised = no_meter_values("CP-1", "S-1", 1, at(0), at(4), interval)
    assert (raised.kind, raised.code, raised.at) == (FaultKind.SESSION, "NoMeterValues", at(3))
    assert isinstance(
        no_meter_values("CP-1", "S-1", 1, at(0), at(4), interval, missed_intervals=5), FaultResolution
    )


# --- certificates and security events --------------------------------------------------


def expiry(not_after, now):
    return certificate_expiry(charger(cert=not_after), now)


def test_certificate_expiry_escalates_in_one_fault():
    not_after = T0 + timedelta(days=60)
    assert isinstance(expiry(not_after, T0 + timedelta(days=29)), FaultResolution)
    warn = expiry(not_after, T0 + timedelta(days=30))
    urgent = expiry(not_after, T0 + timedelta(days=53))
    expired = expiry(not_after, T0 + timedelta(days=61))
    assert (warn.severity, urgent.severity, expired.severity) == (MIN, MAJ, MAJ)
    assert "expired" in expired.evidence
    assert warn.fault_id == urgent.fault_id == expired.fault_id
    faults = apply({}, [warn, urgent], urgent.at)
    assert next(iter(faults.values())).severity is MAJ


def test_the_same_stage_checked_again_is_a_repeat():
    first = expiry(T0 + timedelta(days=20), T0)
    again = [expiry(T0 + timedelta(days=20), T0 + timedelta(minutes=m)) for m in (1, 180, 3 * 24 * 60)]
    faults = apply({}, first, T0)
    assert apply(faults, again, T0 + timedelta(days=3)) == faults


def test_certificate_expiry_is_dated_when_first_seen_not_at_midnight():
    issued = T0 + timedelta(hours=3)  # 11:00, expiring in 5 days
    raised = expiry(issued + timedelta(days=5), issued + timedelta(seconds=20))
    assert (raised.severity, raised.at) == (MAJ, issued + timedelta(seconds=20))
    (fault,) = apply({}, raised, raised.at).values()
    assert fault.first_seen == issued + timedelta(seconds=20)


def test_an_escalation_is_a_new_sighting_of_the_same_episode():
    not_after = T0 + timedelta(days=10)
    warn, urgent = expiry(not_after, T0), expiry(not_after, T0 + timedelta(days=3, minutes=1))
    (fault,) = apply({}, [warn, urgent], urgent.at).values()
    assert (fault.severity, fault.occurrences, fault.first_seen, fault.last_seen) == (MAJ, 2, T0, urgent.at)


def test_a_renewed_certificate_resolves_the_expiry_fault():
    warn = expiry(T0 + timedelta(days=10), T0)
    renewed = expiry(T0 + timedelta(days=400), T0 + timedelta(days=1))
    (fault,) = apply({}, [warn, renewed], T0 + timedelta(days=1)).values()
    assert fault.state is FaultState.RESOLVED


def test_a_charger_without_a_known_certificate_is_not_checked():
    assert certificate_expiry(charger(), T0) is None


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("TamperDetectionActivated", SC),
        ("FirmwareTampered", SC),
        ("InvalidFirmwareSignature", MAJ),
        ("InvalidFirmwareSigningCertificate", MAJ),
        ("AttemptedReplayAttacks", MAJ),
        ("SecurityLogWasCleared", MAJ),
        ("InvalidChargePointCertificate", MAJ),
        ("InvalidCsmsCertificate", MAJ),
        ("FailedToAuthenticateAtCsms", MIN),
        ("CsmsFailedToAuthenticate", MIN),
        ("InvalidMessages", MIN),
        ("InvalidTLSVersion", MIN),
        ("InvalidTLSCipherSuite", MIN),
        ("ReconfigurationOfSecurityParameters", MIN),
        ("SettingSystemTime", MIN),
        ("MemoryExhaustion", MIN),
        ("SomeVendorEvent", MIN),
    ],
)
def test_security_events_by_type(event_type, expected):
    raised = security_event("CP-1", "S-1", event_type, "door sensor", at(0))
    assert (raised.kind, raised.code, raised.severity, raised.connector_id) == (
        FaultKind.SECURITY_EVENT,
        event_type,
        expected,
        0,
    )
    assert raised.evidence.endswith(": door sensor")


@pytest.mark.parametrize("routine", ["FirmwareUpdated", "StartupOfTheDevice", "ResetOrReboot"])
def test_routine_security_events_raise_nothing(routine):
    assert SECURITY_EVENT_SEVERITY[routine] is Severity.INFO
    assert security_event("CP-1", "S-1", routine, None, at(0)) is None
