"""Faults raised from what chargers send, through the real ingest service with in-memory stores."""

from datetime import timedelta

from chargenet.domain.alerts import AlertKind
from chargenet.domain.faults import FaultKind, FaultState, Severity
from chargenet.services.billing import Biller, BillingOutcome
from tests.ingest_network import T0, Network, ts

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


def faults(net: Network):
    return sorted((f for f, _ in net.faults.store.faults.values()), key=lambda f: f.first_seen)


def boot(net: Network, minutes: float):
    return net.call("BootNotification", BOOT, received_minutes=minutes)


def test_three_boots_within_half_an_hour_are_a_reboot_loop():
    net = Network()
    boot(net, 0)
    boot(net, 10)
    assert faults(net) == []
    assert boot(net, 20)[2]["status"] == "Accepted"  # the charger is still answered normally
    (fault,) = faults(net)
    assert (fault.kind, fault.code, fault.severity, fault.connector_id) == (
        FaultKind.REBOOT_LOOP,
        "RebootLoop",
        Severity.MAJOR,
        0,
    )


def test_boots_a_day_apart_are_no_loop():
    net = Network()
    for day in range(4):
        boot(net, day * 24 * 60)
    assert faults(net) == []


def test_a_security_event_raises_a_fault_with_its_evidence():
    net = Network()
    reply = net.call(
        "SecurityEventNotification",
        {"type": "TamperDetectionActivated", "timestamp": ts(3), "techInfo": "door sensor 2"},
    )
    assert reply[0] == 3
    (fault,) = faults(net)
    assert (fault.kind, fault.code, fault.severity) == (
        FaultKind.SECURITY_EVENT,
        "TamperDetectionActivated",
        Severity.SAFETY_CRITICAL,
    )
    assert "door sensor 2" in fault.evidence[0]
    assert [d.kind for d in net.faults.publisher.published] == [AlertKind.RAISED]


def test_a_routine_security_event_raises_nothing():
    net = Network()
    net.call("SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": ts(0)})
    assert faults(net) == []


def test_a_malformed_security_event_is_refused_and_changes_nothing():
    net = Network()
    reply = net.call("SecurityEventNotification", {"type": "TamperDetectionActivated"})
    assert reply[0] == 4 and reply[2] in {"FormationViolation", "OccurenceConstraintViolation"}
    assert faults(net) == []


def test_a_register_going_back_mid_session_opens_a_metering_fault():
    net = Network()
    tx = net.start(meter=1000)["transactionId"]
    net.meter(tx, 2000, minutes=10)
    net.meter(tx, 1500, minutes=20)
    (fault,) = faults(net)
    assert (fault.kind, fault.code, fault.severity, fault.connector_id) == (
        FaultKind.METERING,
        "RegisterBackwards",
        Severity.MAJOR,
        1,
    )
    assert f"session {tx}" in fault.evidence[0]
    net.meter(tx, 1600, minutes=30)  # the same anomaly seen again is not a new occurrence
    assert faults(net)[0].occurrences == 1


def test_a_clean_session_on_the_connector_clears_its_metering_faults():
    net = Network()
    bad = net.start(meter=1000)["transactionId"]
    net.meter(bad, 900, minutes=10)
    net.stop(bad, 900, minutes=11)
    good = net.start(meter=900, minutes=20)["transactionId"]
    net.meter(good, 1900, minutes=30)
    net.stop(good, 1900, minutes=31)
    found = {f.code: (f.state, f.resolved_at) for f in faults(net)}
    resolved = (FaultState.RESOLVED, T0 + timedelta(minutes=31))
    assert found == {"RegisterBackwards": resolved, "StopBelowStart": resolved}


def powered(net: Network, tx: int, minutes: float, wh: int, watts: int) -> list:
    value = {
        "timestamp": ts(minutes),
        "sampledValue": [
            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": str(watts), "measurand": "Power.Active.Import", "unit": "W"},
        ],
    }
    return net.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [value]})


def test_power_above_the_rating_opens_a_metering_fault():
    net = Network()
    net.registry._update("CP-1", rated_power_w=22_000)
    tx = net.start(meter=0)["transactionId"]
    powered(net, tx, 1, wh=100, watts=40_000)
    (fault,) = faults(net)
    assert (fault.code, fault.severity) == ("PowerAboveRating", Severity.MAJOR)


class NoCdrs:
    def create(self, record) -> bool:
        raise AssertionError(f"billed without review: {record}")


def test_power_above_the_rating_sends_the_session_to_review_and_only_a_later_clean_session_clears_it():
    net = Network()
    net.registry._update("CP-1", rated_power_w=22_000)
    tx = net.start(meter=0)["transactionId"]
    for minute in (1, 2, 3):
        powered(net, tx, minute, wh=300 * minute, watts=150_000)  # 7x the rating
    powered(net, tx, 4, wh=1200, watts=11_000)
    net.stop(tx, 1200, minutes=5)
    net.status("Available", minutes=6)  # the car left: a clean session would be billed now
    (fault,) = faults(net)
    assert (fault.code, fault.state) == ("PowerAboveRating", FaultState.OPEN)
    [session] = net.sessions.records.values()
    assert session.state == "needs_review"
    assert any("150000 W" in reason for reason in session.review_reasons)
    assert (
        Biller(net.sessions, NoCdrs(), lambda: net.now).bill(session.session_id) is BillingOutcome.NOT_READY
    )

    clean = net.start(meter=1200, minutes=20)["transactionId"]
    powered(net, clean, 21, wh=1500, watts=18_000)
    net.stop(clean, 1500, minutes=22)
    (fault,) = faults(net)
    assert (fault.state, fault.resolved_at) == (FaultState.RESOLVED, T0 + timedelta(minutes=22))


def test_diagnostics_and_firmware_status_notifications_are_answered_and_kept():
    net = Network()
    assert net.call("DiagnosticsStatusNotification", {"status": "Uploaded"})[0] == 3
    assert net.call("FirmwareStatusNotification", {"status": "Installing"})[0] == 3
    charger = net.registry.get("CP-1")
    assert (charger.diagnostics_status, charger.firmware_status) == ("Uploaded", "Installing")
    assert net.call("FirmwareStatusNotification", {"status": "Exploded"})[0] == 4  # not an OCPP status
