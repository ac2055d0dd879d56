from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargenet.domain.alerts import (
    SUGGESTED_ACTION_BY_CODE,
    AlertDecision,
    AlertKind,
    AlertPolicy,
    AlertRecord,
    suggested_action,
)
from chargenet.domain.fault_rules import (
    ERROR_CODE_SEVERITY,
    SECURITY_EVENT_SEVERITY,
    certificate_expiry,
    from_status_notification,
    heartbeat_grace,
    no_meter_values,
    offline_check,
    power_above_rating,
    reboot_loop,
    security_event,
    session_too_long,
    severity_of,
    stuck_meter,
)
from chargenet.domain.faults import (
    FLAP_WINDOW,
    ExclusionReason,
    Fault,
    FaultKind,
    FaultResolution,
    FaultSignal,
    FaultState,
    Severity,
    acknowledge,
    exclude,
    fault_id,
    observe,
    resolve,
)
from chargenet.domain.meter_values import MeterReading

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


# --- transitions -----------------------------------------------------------------------


def test_fault_id_is_deterministic_and_distinguishes_each_part():
    base = fault_id("CP-1", 1, FaultKind.CONNECTOR_ERROR, "GroundFailure")
    assert base == fault_id("CP-1", 1, FaultKind.CONNECTOR_ERROR, "GroundFailure")
    others = {
        fault_id("CP-2", 1, FaultKind.CONNECTOR_ERROR, "GroundFailure"),
        fault_id("CP-1", 2, FaultKind.CONNECTOR_ERROR, "GroundFailure"),
        fault_id("CP-1", 1, FaultKind.METERING, "GroundFailure"),
        fault_id("CP-1", 1, FaultKind.CONNECTOR_ERROR, "OverVoltage"),
    }
    assert base not in others and len(others) == 4


def test_observe_opens_a_fault():
    fault = opened(vendor="E42", evidence="Faulted/GroundFailure")
    assert fault.fault_id == signal().fault_id
    assert fault.state is FaultState.OPEN
    assert (fault.first_seen, fault.last_seen, fault.resolved_at) == (T0, T0, None)
    assert (fault.episode, fault.occurrences, fault.flaps) == (1, 1, 0)
    assert fault.vendor_error_code == "E42"
    assert fault.evidence == ["2026-11-26T08:00:00.000Z Faulted/GroundFailure"]


def test_observing_an_open_fault_again_updates_it():
    fault = observe(opened(), signal(5, evidence="again"), at(5))
    assert fault.fault_id == signal().fault_id
    assert (fault.first_seen, fault.last_seen, fault.occurrences) == (T0, at(5), 2)
    assert len(fault.evidence) == 2


def test_a_redelivered_signal_changes_nothing():
    fault = opened()
    assert observe(fault, signal(), at(3)) == fault


def test_a_signal_for_another_fault_is_refused():
    with pytest.raises(ValueError, match="another fault"):
        observe(opened(), signal(code="OverVoltage"), at(1))


def test_a_late_signal_moves_first_seen_back():
    fault = observe(opened(5), signal(2, evidence="queued while offline"), at(6))
    assert (fault.first_seen, fault.last_seen) == (at(2), at(5))


def test_a_timestamp_from_the_future_counts_as_now():
    fault = observe(None, signal(60), at(1))
    assert fault.first_seen == at(1)


def test_severity_escalates_within_an_episode_but_never_drops():
    fault = opened(code="EVCommunicationError", severity=MIN)
    fault = observe(fault, signal(1, code="EVCommunicationError", severity=MAJ), at(1))
    fault = observe(fault, signal(2, code="EVCommunicationError", severity=MIN), at(2))
    assert fault.severity is MAJ


def test_evidence_keeps_the_last_ten_short_entries():
    fault = opened(evidence="x" * 500)
    for minute in range(1, 15):
        fault = observe(fault, signal(minute, evidence=f"message {minute}"), at(minute))
    assert len(fault.evidence) == 10
    assert fault.evidence[-1].endswith("message 14")
    assert fault.occurrences == 15
    assert len(opened(evidence="x" * 500).evidence[0]) == 200


def test_resolve_closes_the_fault_once():
    fault = resolve(opened(), at(10))
    assert (fault.state, fault.resolved_at) == (FaultState.RESOLVED, at(10))
    assert resolve(fault, at(10)) == fault
    assert resolve(fault, at(20)) == fault


def test_resolving_nothing_is_nothing():
    assert resolve(None, at(1)) is None


def test_a_late_resolution_does_not_close_a_fault_seen_after_it():
    fault = observe(opened(), signal(10, evidence="still faulted"), at(10))
    assert resolve(fault, at(5)) == fault


def test_a_resolved_fault_reopens_as_a_new_episode():
    first = acknowledge(opened(), at(1), "ops@example.com")
    first = exclude(resolve(first, at(10)), ExclusionReason.VANDALISM)
    fault = observe(first, signal(20, evidence="again"), at(20))
    assert fault.fault_id == first.fault_id
    assert fault.state is FaultState.OPEN
    assert (fault.episode, fault.occurrences, fault.first_seen, fault.resolved_at) == (2, 1, at(20), None)
    assert (fault.acknowledged_at, fault.acknowledged_by, fault.excluded_reason) == (None, None, None)
    assert fault.flaps == 1
    assert len(fault.evidence) == 2


def test_a_reopen_after_a_long_quiet_is_not_a_flap():
    fault = resolve(opened(), at(10))
    fault = observe(fault, signal(200), at(200))
    assert (fault.episode, fault.flaps) == (2, 0)


def test_flaps_count_consecutive_quick_reopens():
    fault = opened()
    for cycle in range(1, 5):
        fault = resolve(fault, at(cycle * 10 - 5))
        fault = observe(fault, signal(cycle * 10), at(cycle * 10))
    assert (fault.episode, fault.flaps) == (5, 4)


def test_a_signal_from_before_the_resolution_does_not_reopen():
    fault = resolve(opened(), at(10))
    assert observe(fault, signal(8, evidence="late"), at(12)) == fault
    assert observe(fault, signal(10, evidence="same instant"), at(12)) == fault


def test_acknowledge_records_who_and_when_once():
    fault = acknowledge(opened(), at(2), "alice")
    assert (fault.state, fault.acknowledged_at, fault.acknowledged_by) == (
        FaultState.ACKNOWLEDGED,
        at(2),
        "alice",
    )
    assert acknowledge(fault, at(3), "bob") == fault


def test_an_acknowledged_fault_stays_acknowledged_when_seen_again():
    fault = observe(acknowledge(opened(), at(2), "alice"), signal(3, evidence="again"), at(3))
    assert fault.state is FaultState.ACKNOWLEDGED


def test_acknowledging_a_resolved_fault_keeps_it_resolved():
    fault = acknowledge(resolve(opened(), at(5)), at(6), "alice")
    assert (fault.state, fault.acknowledged_by) == (FaultState.RESOLVED, "alice")


def test_exclude_records_and_withdraws_the_reason():
    fault = exclude(opened(), ExclusionReason.UTILITY_OUTAGE)
    assert fault.excluded_reason is ExclusionReason.UTILITY_OUTAGE
    assert exclude(fault, None).excluded_reason is None


signals = st.builds(
    signal,
    minutes=st.integers(0, 120),
    severity=st.sampled_from(list(Severity)),
    evidence=st.sampled_from(["a", "b", "x" * 300]),
)
steps = st.lists(st.tuples(st.booleans(), signals), max_size=8)


@settings(max_examples=150, deadline=None)
@given(steps, signals, st.integers(0, 180))
def test_applying_the_same_signal_twice_equals_applying_it_once(history, repeated, now_minutes):
    existing = None
    for is_resolution, step in history:
        existing = resolve(existing, step.at) if is_resolution else observe(existing, step, step.at)
    now = at(now_minutes)
    once = observe(existing, repeated, now)
    assert observe(once, repeated, now) == once
    assert observe(once, repeated, now + timedelta(minutes=5)) == once
    assert resolve(resolve(once, now), now) == resolve(once, now)


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


def test_a_status_sequence_opens_updates_and_resolves_only_its_connectors_faults():
    faults = apply({}, status("Faulted", "GroundFailure"), at(0))
    faults = apply(faults, status("Faulted", "GroundFailure", minutes=1), at(1))
    faults = apply(faults, status("Faulted", "GroundFailure", connector=2), at(1))
    faults = apply(faults, offline_check("CP-1", "S-1", at(0), False, at(20), timedelta(minutes=10)), at(20))
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


def test_heartbeat_grace_allows_one_missed_heartbeat():
    assert heartbeat_grace(timedelta(minutes=5)) == timedelta(minutes=11)


def test_a_charger_never_seen_is_not_offline():
    assert offline_check("CP-1", "S-1", None, False, at(100), GRACE) is None


def test_a_single_missed_heartbeat_raises_nothing():
    result = offline_check("CP-1", "S-1", at(0), True, at(10), GRACE)
    assert isinstance(result, FaultResolution)
    assert apply({}, result, at(10)) == {}


def test_disconnected_within_the_grace_period_raises_nothing():
    assert offline_check("CP-1", "S-1", at(0), False, at(5), GRACE) is None
    assert offline_check("CP-1", "S-1", at(0), False, at(11), GRACE) is None


def test_a_quick_reconnect_raises_nothing():
    faults = apply({}, offline_check("CP-1", "S-1", at(0), False, at(1), GRACE) or [], at(1))
    faults = apply(faults, offline_check("CP-1", "S-1", at(2), True, at(2), GRACE), at(2))
    faults = apply(faults, offline_check("CP-1", "S-1", at(2), True, at(12), GRACE), at(12))
    assert faults == {}


def test_offline_past_the_grace_period_opens_a_fault_dated_from_last_seen():
    raised = offline_check("CP-1", "S-1", at(0), False, at(11) + timedelta(seconds=1), GRACE)
    assert (raised.kind, raised.code, raised.severity, raised.connector_id) == (
        FaultKind.OFFLINE,
        "Offline",
        MAJ,
        0,
    )
    assert raised.at == at(0)
    assert "disconnected" in raised.evidence


def test_a_connected_but_silent_charger_is_offline_too():
    raised = offline_check("CP-1", "S-1", at(0), True, at(30), GRACE)
    assert raised.kind is FaultKind.OFFLINE and "no message" in raised.evidence


def test_reconnecting_resolves_the_offline_fault():
    faults = apply({}, offline_check("CP-1", "S-1", at(0), False, at(15), GRACE), at(15))
    faults = apply(faults, offline_check("CP-1", "S-1", at(40), True, at(40), GRACE), at(40))
    (fault,) = faults.values()
    assert (fault.state, fault.first_seen, fault.resolved_at) == (FaultState.RESOLVED, at(0), at(40))


def test_repeated_sweeps_keep_one_offline_fault():
    faults = {}
    for minute in (15, 20, 25):
        faults = apply(faults, offline_check("CP-1", "S-1", at(0), False, at(minute), GRACE), at(minute))
    (fault,) = faults.values()
    assert fault.occurrences == 1


# --- reboot loop -----------------------------------------------------------------------


def test_three_boots_within_the_window_are_a_reboot_loop():
    raised = reboot_loop("CP-1", "S-1", [at(1), at(15), at(29)], at(30))
    assert (raised.kind, raised.code, raised.severity, raised.at) == (
        FaultKind.REBOOT_LOOP,
        "RebootLoop",
        MAJ,
        at(29),
    )
    assert "3 BootNotifications" in raised.evidence


def test_a_boot_exactly_one_window_ago_is_outside_it():
    assert reboot_loop("CP-1", "S-1", [at(0), at(15), at(29)], at(30)) is None


def test_boots_spread_wider_than_the_window_are_no_loop():
    assert reboot_loop("CP-1", "S-1", [at(0), at(40), at(80)], at(81)) is None


def test_the_window_and_threshold_are_configurable():
    boots = [at(0), at(40), at(80)]
    assert isinstance(reboot_loop("CP-1", "S-1", boots, at(81), window=timedelta(hours=2)), FaultSignal)
    assert isinstance(
        reboot_loop("CP-1", "S-1", boots[1:], at(81), window=timedelta(hours=1), threshold=2), FaultSignal
    )


def test_a_window_without_boots_ends_the_loop():
    assert isinstance(reboot_loop("CP-1", "S-1", [at(0), at(1), at(2)], at(40)), FaultResolution)


def test_boots_after_now_are_not_counted():
    assert reboot_loop("CP-1", "S-1", [at(10), at(31), at(32)], at(30)) is None


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


def test_power_above_the_rating_with_tolerance():
    assert power_above_rating("CP-1", "S-1", 1, Decimal(12_100), 11_000, at(0)) is None
    raised = power_above_rating("CP-1", "S-1", 1, Decimal(12_101), 11_000, at(0))
    assert (raised.kind, raised.code, raised.severity) == (FaultKind.METERING, "PowerAboveRating", MAJ)
    assert power_above_rating("CP-1", "S-1", 1, Decimal(99_999), None, at(0)) is None


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


def test_certificate_expiry_escalates_in_one_fault():
    not_after = T0 + timedelta(days=60)
    assert isinstance(certificate_expiry("CP-1", "S-1", not_after, T0 + timedelta(days=29)), FaultResolution)
    warn = certificate_expiry("CP-1", "S-1", not_after, T0 + timedelta(days=30))
    urgent = certificate_expiry("CP-1", "S-1", not_after, T0 + timedelta(days=53))
    expired = certificate_expiry("CP-1", "S-1", not_after, T0 + timedelta(days=61))
    assert (warn.severity, urgent.severity, expired.severity) == (MIN, MAJ, MAJ)
    assert "expired" in expired.evidence
    assert warn.fault_id == urgent.fault_id == expired.fault_id
    faults = apply({}, [warn, urgent], urgent.at)
    assert next(iter(faults.values())).severity is MAJ


def test_a_renewed_certificate_resolves_the_expiry_fault():
    warn = certificate_expiry("CP-1", "S-1", T0 + timedelta(days=10), T0)
    renewed = certificate_expiry("CP-1", "S-1", T0 + timedelta(days=400), T0 + timedelta(days=1))
    (fault,) = apply({}, [warn, renewed], T0 + timedelta(days=1)).values()
    assert fault.state is FaultState.RESOLVED


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


# --- alert policy ----------------------------------------------------------------------

POLICY = AlertPolicy()


def sent(decision: AlertDecision | None, alerts: list[AlertRecord]) -> list[AlertRecord]:
    return [*alerts, decision.record()] if decision else alerts


def test_a_safety_critical_fault_is_alerted_at_once_with_its_details():
    fault = opened(vendor="GF-7")
    decision = POLICY.decide(fault, [], at(0))
    assert decision.kind is AlertKind.RAISED
    assert (decision.charger_id, decision.site_id, decision.connector_id, decision.code) == (
        "CP-1",
        "S-1",
        1,
        "GroundFailure",
    )
    assert (decision.severity, decision.since, decision.episode) == (SC, T0, 1)
    assert decision.suggested_action == "inspect on site; do not reset remotely"
    assert decision.subject == "[SAFETY_CRITICAL] GroundFailure on CP-1 connector 1 (site S-1)"
    for text in ("Since: 2026-11-26T08:00:00.000Z", "vendor GF-7", "do not reset remotely", "Evidence:"):
        assert text in decision.message


def test_a_major_fault_is_alerted_after_ten_minutes_not_before():
    fault = opened(code="InternalError", severity=MAJ)
    assert POLICY.decide(fault, [], at(9) + timedelta(seconds=59)) is None
    assert POLICY.decide(fault, [], at(10)).kind is AlertKind.RAISED


def test_the_major_delay_is_configurable():
    fault = opened(code="InternalError", severity=MAJ)
    assert AlertPolicy(major_after=timedelta(minutes=2)).decide(fault, [], at(2)).kind is AlertKind.RAISED


def test_minor_faults_are_not_paged_unless_configured():
    fault = opened(code="WeakSignal", severity=MIN)
    assert POLICY.decide(fault, [], at(10_000)) is None
    assert AlertPolicy(minor_after=timedelta(hours=1)).decide(fault, [], at(60)).kind is AlertKind.RAISED


def test_info_faults_are_never_paged():
    fault = opened(code="Note", severity=Severity.INFO)
    assert AlertPolicy(minor_after=timedelta(0)).decide(fault, [], at(10_000)) is None


def test_one_alert_per_episode():
    fault = opened()
    alerts = sent(POLICY.decide(fault, [], at(0)), [])
    fault = observe(fault, signal(5, evidence="again"), at(5))
    assert POLICY.decide(fault, alerts, at(5)) is None
    assert POLICY.decide(fault, alerts, at(500)) is None


def test_an_acknowledged_fault_is_not_paged():
    fault = acknowledge(opened(code="InternalError", severity=MAJ), at(3), "alice")
    assert POLICY.decide(fault, [], at(30)) is None


def test_a_resolution_follows_an_alert_once():
    fault = opened()
    alerts = sent(POLICY.decide(fault, [], at(0)), [])
    fault = resolve(fault, at(7))
    decision = POLICY.decide(fault, alerts, at(7))
    assert decision.kind is AlertKind.RESOLVED
    assert decision.subject == "[RESOLVED] GroundFailure on CP-1 connector 1 (site S-1)"
    assert "Resolved: 2026-11-26T08:07:00.000Z" in decision.message
    assert POLICY.decide(fault, sent(decision, alerts), at(8)) is None


def test_no_resolution_when_nothing_was_alerted():
    fault = resolve(opened(code="InternalError", severity=MAJ), at(5))
    assert POLICY.decide(fault, [], at(5)) is None


def test_a_reopened_fault_gets_a_new_alert():
    fault = opened()
    alerts = sent(POLICY.decide(fault, [], at(0)), [])
    fault = resolve(fault, at(5))
    alerts = sent(POLICY.decide(fault, alerts, at(5)), alerts)
    fault = observe(fault, signal(100), at(100))
    decision = POLICY.decide(fault, alerts, at(100))
    assert (decision.kind, decision.episode) == (AlertKind.RAISED, 2)


def flap(policy: AlertPolicy, cycles: int, severity=SC, period=2) -> tuple[Fault, list[AlertRecord]]:
    """Open and clear the fault every `period` minutes, asking the policy after each change."""
    fault, alerts = None, []
    for cycle in range(cycles):
        opened_at, cleared_at = at(cycle * period), at(cycle * period + period / 2)
        fault = observe(fault, signal(cycle * period, severity=severity, code="InternalError"), opened_at)
        alerts = sent(policy.decide(fault, alerts, opened_at), alerts)
        fault = resolve(fault, cleared_at)
        alerts = sent(policy.decide(fault, alerts, cleared_at), alerts)
    return fault, alerts


def test_a_flapping_fault_is_suppressed_into_one_alert_with_a_count():
    fault, alerts = flap(POLICY, cycles=20)
    kinds = [a.kind for a in alerts]
    assert kinds == [AlertKind.RAISED, AlertKind.RESOLVED] * 3 + [AlertKind.FLAPPING]
    assert fault.episode == 20
    flapping = next(a for a in alerts if a.kind is AlertKind.FLAPPING)
    assert flapping.episode == 4


def test_the_flapping_alert_carries_the_count():
    fault, alerts = flap(POLICY, cycles=3)
    fault = observe(fault, signal(6, code="InternalError"), at(6))
    decision = POLICY.decide(fault, alerts, at(6))
    assert decision.kind is AlertKind.FLAPPING
    assert decision.subject.endswith("flapping on CP-1 connector 1 (site S-1): re-opened 3 times")


def test_a_flapping_fault_is_announced_resolved_once_it_stays_clear():
    fault, alerts = flap(POLICY, cycles=10)
    assert POLICY.decide(fault, alerts, fault.resolved_at + FLAP_WINDOW - timedelta(seconds=1)) is None
    decision = POLICY.decide(fault, alerts, fault.resolved_at + FLAP_WINDOW)
    assert decision.kind is AlertKind.RESOLVED
    assert "Re-opened 6 more times after the flapping alert." in decision.message


def test_a_flapping_major_fault_is_paged_although_no_episode_lasts_ten_minutes():
    _, alerts = flap(POLICY, cycles=10, severity=MAJ)
    assert [a.kind for a in alerts] == [AlertKind.FLAPPING]


def test_a_flapping_minor_fault_stays_on_the_dashboard():
    _, alerts = flap(POLICY, cycles=10, severity=MIN)
    assert alerts == []


def test_the_flap_threshold_is_configurable():
    _, alerts = flap(AlertPolicy(flap_threshold=1), cycles=5)
    assert [a.kind for a in alerts] == [AlertKind.RAISED, AlertKind.RESOLVED, AlertKind.FLAPPING]


@pytest.mark.parametrize(
    ("kind", "code", "action"),
    [
        (FaultKind.CONNECTOR_ERROR, "GroundFailure", "inspect on site; do not reset remotely"),
        (FaultKind.CONNECTOR_ERROR, "ConnectorLockFailure", "UnlockConnector"),
        (FaultKind.CONNECTOR_ERROR, "InternalError", "Reset (soft, then hard)"),
        (FaultKind.CONNECTOR_ERROR, "ResetFailure", "Reset (soft, then hard)"),
        (FaultKind.CONNECTOR_ERROR, "PowerMeterFailure", "GetDiagnostics; schedule meter check"),
        (FaultKind.OFFLINE, "Offline", "check site power/network; TriggerMessage BootNotification when back"),
        (FaultKind.SECURITY_EVENT, "InvalidMessages", "GetLog (SecurityLog) and review"),
    ],
)
def test_suggested_remote_actions(kind, code, action):
    assert suggested_action(opened(kind=kind, code=code)) == action


def test_an_alert_decision_becomes_the_record_that_gates_the_next():
    decision = POLICY.decide(opened(), [], at(1))
    assert decision.record() == AlertRecord(
        fault_id=decision.fault_id, episode=1, kind=AlertKind.RAISED, at=at(1)
    )
