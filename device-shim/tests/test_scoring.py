"""Holding the backend's alerts against the injected faults: matching, false alerts, per-kind scores."""

import datetime as dt

from pydantic import TypeAdapter

from chargenet_shim.sim.scenario import Injection
from chargenet_shim.sim.scenario_run import Injected
from chargenet_shim.sim.scoring import Observation, expectation, label_of, match, score

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
INJECTION = TypeAdapter(Injection)


def injected(kind: str, charger_id: str = "CP-1", at: float = 0.0, error: str | None = None, **params):
    injection = INJECTION.validate_python({"at_s": at, "charger": 1, "kind": kind, "params": params})
    return Injected(0, injection, charger_id, T0 + dt.timedelta(seconds=at), error=error)


def seen(after_s: float, fault_kind: str, code: str, charger_id: str = "CP-1") -> Observation:
    return Observation(
        T0 + dt.timedelta(seconds=after_s), charger_id, fault_kind, code, f"{code} on {charger_id}"
    )


def test_each_kind_expects_its_backend_fault():
    expected = {
        kind: expectation(injected(kind, **params).injection)
        for kind, params in [
            ("error_code", {"code": "HighTemperature"}),
            ("connection_outage", {"duration_s": 900}),
            ("stuck_meter", {}),
            ("power_above_rating", {}),
            ("meter_reset", {}),
            ("reboot_loop", {}),
            ("connection_blip", {}),
            ("stop_answering", {}),
        ]
    }

    described = {kind: e.describe() if e else None for kind, e in expected.items()}
    assert described == {
        "error_code": "connector_error HighTemperature",
        "connection_outage": "offline Offline",
        "stuck_meter": "metering StuckMeter",
        "power_above_rating": "metering PowerAboveRating",
        "meter_reset": "metering|session MeterReset|RegisterBackwards|StopBelowStart",
        "reboot_loop": "reboot_loop RebootLoop",
        "connection_blip": None,
        "stop_answering": None,
    }


def test_an_injection_takes_the_first_alert_it_expects_on_its_charger_after_it_began():
    faults = [injected("stuck_meter", at=10)]
    alerts = [
        seen(5, "metering", "StuckMeter"),  # before the fault: not it
        seen(20, "metering", "StuckMeter", charger_id="CP-2"),  # another charger
        seen(30, "metering", "PowerAboveRating"),  # another code
        seen(40, "metering", "StuckMeter"),
        seen(50, "metering", "StuckMeter"),
    ]

    [outcome], left = match(faults, alerts)

    assert outcome.observation == alerts[3] and outcome.latency_s == 30
    # The later one is a repeat of the same fault, the others are no alert about it.
    assert outcome.repeats == (alerts[4],)
    assert left == [alerts[0], alerts[1], alerts[2]]


def test_one_fault_showing_as_several_backend_faults_is_a_detection_and_repeats():
    faults = [injected("meter_reset", at=10)]
    alerts = [seen(14, "metering", "RegisterBackwards"), seen(30, "metering", "StopBelowStart")]

    [outcome], left = match(faults, alerts)

    assert (outcome.observation, outcome.repeats, left) == (alerts[0], (alerts[1],), [])


def test_two_injections_of_a_kind_take_one_alert_each_in_time_order():
    faults = [
        injected("error_code", at=100, code="GroundFailure"),
        injected("error_code", at=0, code="GroundFailure"),
    ]
    alerts = [seen(150, "connector_error", "GroundFailure"), seen(1, "connector_error", "GroundFailure")]

    outcomes, left = match(faults, alerts)

    assert [o.latency_s for o in outcomes] == [50, 1]
    assert left == []


def test_injections_that_expect_nothing_or_failed_take_no_alert():
    faults = [
        injected("connection_blip", duration_s=30),
        injected("connection_outage", error="link down", duration_s=900),
    ]
    alerts = [seen(5, "offline", "Offline")]

    outcomes, left = match(faults, alerts)

    assert [o.observation for o in outcomes] == [None, None]
    assert left == alerts


def test_false_alerts_are_filed_under_the_kind_that_would_have_expected_them():
    assert label_of("connector_error", "WeakSignal") == "error_code/WeakSignal"
    assert label_of("offline", "Offline") == "connection_outage"
    assert label_of("metering", "StuckMeter") == "stuck_meter"
    assert label_of("metering", "PowerAboveRating") == "power_above_rating"
    assert label_of("session", "RegisterBackwards") == "meter_reset"
    assert label_of("reboot_loop", "RebootLoop") == "reboot_loop"
    assert label_of("session", "NoMeterValues") == "other/session/NoMeterValues"
    assert label_of("security_event", "FirmwareTampered") == "other/security_event/FirmwareTampered"


def test_scores_per_kind_count_detections_false_alerts_and_latency():
    faults = [
        injected("stuck_meter", at=0),
        injected("stuck_meter", at=100),
        injected("stuck_meter", at=200),
        injected("reboot_loop", at=0),
        injected("connection_blip", at=0),
        injected("meter_reset", error="no such connector"),
    ]
    alerts = [
        seen(20, "metering", "StuckMeter"),
        seen(160, "metering", "StuckMeter"),
        seen(170, "metering", "StuckMeter"),
        seen(30, "offline", "Offline"),
    ]

    scores = {s.label: s for s in score(*match(faults, alerts))}

    stuck = scores["stuck_meter"]
    assert (stuck.injected, stuck.detected, stuck.repeats, stuck.false_alerts) == (3, 2, 1, 0)
    assert stuck.detection_rate == 2 / 3
    assert (stuck.median_s, stuck.worst_s) == (40, 60)
    loop = scores["reboot_loop"]
    assert (loop.detection_rate, loop.median_s, loop.worst_s) == (0.0, None, None)
    blip = scores["connection_blip"]
    assert (blip.expects, blip.injected, blip.detection_rate) == (None, 1, None)
    outage = scores["connection_outage"]
    assert (outage.injected, outage.false_alerts, outage.detection_rate) == (0, 1, None)
    assert "meter_reset" not in scores
