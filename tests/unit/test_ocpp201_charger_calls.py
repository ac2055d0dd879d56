"""An OCPP 2.0.1 charger's charger-level CALLs through the real ingest service, on the in-memory
network: the same registry, faults and certificates as 1.6, 2.0.1's shapes and error codes."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from chargenet.domain.faults import FaultKind, FaultSignal, FaultState, Severity, observe
from chargenet.ocpp.versions import OcppVersion
from chargenet.services.ingest import IngestEvent, Outcome
from chargenet.services.ocpp.certificate_calls import certificate_signed_message_id
from tests.ingest_network import T0, Network
from tests.unit.test_certificate_rotation import csr

BOOT = {
    "reason": "PowerUp",
    "chargingStation": {
        "model": "AC22",
        "vendorName": "Acme",
        "serialNumber": "SN-201",
        "firmwareVersion": "2.0.1-a",
    },
}


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


class Charger201:
    """CP-1 of a Network, speaking 2.0.1 (its frames come through the `_ocpp201` rule)."""

    def __init__(self, net: Network | None = None) -> None:
        self.net = net or Network()
        self._n = 0

    def send(self, frame: Any, minutes: float = 0, version: OcppVersion = OcppVersion.V201) -> Outcome:
        raw = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
        return self.net.ingest.handle(
            IngestEvent(
                charger_id="CP-1",
                client_id="CP-1",
                principal=self.net.principals.get("CP-1"),
                payload=base64.b64encode(raw).decode(),
                received_at=int((T0 + timedelta(minutes=minutes)).timestamp() * 1000),
                ocpp_version=version,
            )
        )

    def call(self, action: str, payload: dict[str, Any], minutes: float = 0) -> list[Any]:
        self._n += 1
        self.send([2, f"m{self._n}", action, payload], minutes)
        return self.last_reply()

    def last_reply(self) -> list[Any]:
        return json.loads(self.net.channel.sent[-1][1])

    def status(self, evse: int, status: str, minutes: float) -> list[Any]:
        payload = {"timestamp": at(minutes), "connectorStatus": status, "evseId": evse, "connectorId": 1}
        return self.call("StatusNotification", payload, minutes)

    def event(
        self, component: dict[str, Any], variable: str, value: str, minutes: float, **extra: Any
    ) -> list[Any]:
        data = {
            "eventId": self._n,
            "timestamp": at(minutes),
            "trigger": "Delta",
            "actualValue": value,
            "component": component,
            "variable": {"name": variable},
            "eventNotificationType": "HardWiredNotification",
            **extra,
        }
        return self.call(
            "NotifyEvent", {"generatedAt": at(minutes), "seqNo": 0, "eventData": [data]}, minutes
        )

    def faults(self) -> dict[tuple[int, FaultKind, str], tuple[FaultState, Severity]]:
        stored = self.net.faults.store.of_charger("CP-1")
        return {(f.connector_id, f.kind, f.code): (f.state, f.severity) for f, _ in stored}

    def alerts(self) -> int:
        return len(self.net.faults.publisher.published)


@pytest.fixture
def cp() -> Charger201:
    return Charger201()


# --- BootNotification, Heartbeat ---


def test_a_201_boot_records_the_station_and_its_version_and_is_accepted(cp: Charger201) -> None:
    reply = cp.call("BootNotification", BOOT)
    assert reply[0] == 3
    assert reply[2]["status"] == "Accepted" and reply[2]["interval"] == 300
    assert reply[2]["currentTime"].startswith("2026-11-26T08:00:00")
    charger = cp.net.registry.get("CP-1")
    assert (charger.vendor, charger.model, charger.serial_number, charger.firmware_version) == (
        "Acme",
        "AC22",
        "SN-201",
        "2.0.1-a",
    )
    assert (charger.ocpp_version, charger.last_boot_at) == ("ocpp2.0.1", T0)


def test_a_16_boot_records_version_16(cp: Charger201) -> None:
    cp.call("BootNotification", BOOT)
    reply = cp.net.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "AC22"})
    assert reply[2]["status"] == "Accepted"
    assert cp.net.registry.get("CP-1").ocpp_version == "ocpp1.6"


def test_three_201_boots_within_half_an_hour_are_a_reboot_loop(cp: Charger201) -> None:
    for minutes in (0, 5, 10):
        cp.call("BootNotification", {**BOOT, "reason": "Watchdog"}, minutes)
    assert cp.faults() == {(0, FaultKind.REBOOT_LOOP, "RebootLoop"): (FaultState.OPEN, Severity.MAJOR)}


def test_a_triggered_boot_reports_the_station_but_is_no_reboot(cp: Charger201) -> None:
    cp.call("BootNotification", BOOT, 0)
    for minutes in (5, 10, 15):
        triggered = {
            **BOOT,
            "reason": "Triggered",
            "chargingStation": {"model": "AC22", "vendorName": "Acme2"},
        }
        assert cp.call("BootNotification", triggered, minutes)[2]["status"] == "Accepted"
    charger = cp.net.registry.get("CP-1")
    assert (charger.vendor, charger.last_boot_at, charger.recent_boots) == ("Acme2", T0, [T0])
    assert cp.faults() == {}


def test_heartbeat_answers_the_time(cp: Charger201) -> None:
    cp.net.now = T0 + timedelta(seconds=7)
    assert cp.call("Heartbeat", {})[2] == {"currentTime": "2026-11-26T08:00:07.000Z"}


# --- StatusNotification ---


def test_a_faulted_evse_is_a_major_connector_error_until_it_is_available(cp: Charger201) -> None:
    assert cp.status(1, "Faulted", 1)[2] == {}
    assert cp.faults() == {(1, FaultKind.CONNECTOR_ERROR, "Faulted"): (FaultState.OPEN, Severity.MAJOR)}
    [stored] = cp.net.registry.connectors("CP-1")
    assert (stored.connector_id, stored.status, stored.error_code) == (1, "Faulted", "NoError")
    cp.status(1, "Available", 2)
    assert cp.faults() == {(1, FaultKind.CONNECTOR_ERROR, "Faulted"): (FaultState.RESOLVED, Severity.MAJOR)}


def test_an_unavailable_evse_is_an_unavailability_and_occupied_ends_it(cp: Charger201) -> None:
    cp.status(2, "Unavailable", 1)
    assert cp.faults()[(2, FaultKind.CHARGER_UNAVAILABLE, "Unavailable")][0] is FaultState.OPEN
    cp.status(2, "Occupied", 2)
    assert cp.faults()[(2, FaultKind.CHARGER_UNAVAILABLE, "Unavailable")][0] is FaultState.RESOLVED


def test_occupied_and_reserved_are_stored_on_the_connector_only_available_reaches_the_session(
    cp: Charger201,
) -> None:
    cp.net.start(minutes=0)  # a session on connector 1 (B's tests start them the 2.0.1 way)
    session_id = cp.net.registry.connector_session("CP-1", 1)
    cp.status(1, "Reserved", 1)
    cp.status(1, "Occupied", 2)
    assert [(s.connector_id, s.status) for s in cp.net.registry.connectors("CP-1")] == [(1, "Occupied")]
    assert statuses_of(cp, session_id) == []
    cp.status(1, "Available", 3)
    assert statuses_of(cp, session_id) == ["Available"]
    assert cp.faults() == {}


def statuses_of(cp: Charger201, session_id: str) -> list[str]:
    return [event.status for event in cp.net.sessions.events(session_id) if event.status is not None]


def test_evse_0_is_the_station(cp: Charger201) -> None:
    cp.status(0, "Faulted", 1)
    assert (0, FaultKind.CONNECTOR_ERROR, "Faulted") in cp.faults()


def test_an_older_status_changes_nothing(cp: Charger201) -> None:
    cp.status(1, "Available", 5)
    cp.status(1, "Faulted", 1)  # queued while offline, arrives late
    assert [s.status for s in cp.net.registry.connectors("CP-1")] == ["Available"]
    assert cp.faults() == {}


# --- NotifyEvent ---

RCD_ON_EVSE_1 = {"name": "RCD", "evse": {"id": 1}}


def test_a_tripped_rcd_is_a_safety_critical_ground_failure_alerted_once_per_episode(cp: Charger201) -> None:
    assert cp.event(RCD_ON_EVSE_1, "Tripped", "true", 1, techCode="E-17")[2] == {}
    assert cp.event(RCD_ON_EVSE_1, "Tripped", "true", 2)[2] == {}  # reported again: same episode
    assert cp.faults() == {
        (1, FaultKind.CONNECTOR_ERROR, "GroundFailure"): (FaultState.OPEN, Severity.SAFETY_CRITICAL)
    }
    [(fault, _)] = cp.net.faults.store.of_charger("CP-1")
    assert fault.vendor_error_code == "E-17" and "RCD/Tripped=true" in fault.evidence[0]
    assert cp.alerts() == 1
    cp.event(RCD_ON_EVSE_1, "Tripped", "false", 3)
    assert cp.faults()[(1, FaultKind.CONNECTOR_ERROR, "GroundFailure")][0] is FaultState.RESOLVED


def test_a_problem_cleared_resolves_only_its_own_code(cp: Charger201) -> None:
    lock = {"name": "ConnectorPlugRetentionLock", "evse": {"id": 1, "connectorId": 1}}
    cp.event(lock, "Problem", "true", 1)
    cp.event(RCD_ON_EVSE_1, "Problem", "true", 1)
    cp.event(lock, "Problem", "true", 2, cleared=True)
    assert cp.faults() == {
        (1, FaultKind.CONNECTOR_ERROR, "ConnectorLockFailure"): (FaultState.RESOLVED, Severity.MAJOR),
        (1, FaultKind.CONNECTOR_ERROR, "GroundFailure"): (FaultState.OPEN, Severity.SAFETY_CRITICAL),
    }


def test_a_monitor_alerting_on_a_station_component_is_a_fault_of_the_station(cp: Charger201) -> None:
    cp.event({"name": "TemperatureSensor"}, "Temperature", "91.5", 1, trigger="Alerting")
    cp.event({"name": "Controller"}, "Problem", "true", 1)
    cp.event({"name": "SomeVendorBox"}, "Problem", "true", 1)
    assert cp.faults() == {
        (0, FaultKind.CONNECTOR_ERROR, "HighTemperature"): (FaultState.OPEN, Severity.SAFETY_CRITICAL),
        (0, FaultKind.CONNECTOR_ERROR, "InternalError"): (FaultState.OPEN, Severity.MAJOR),
        (0, FaultKind.CONNECTOR_ERROR, "OtherError"): (FaultState.OPEN, Severity.MINOR),
    }
    cp.event({"name": "TemperatureSensor"}, "Temperature", "60", 2, trigger="Alerting", cleared=True)
    assert cp.faults()[(0, FaultKind.CONNECTOR_ERROR, "HighTemperature")][0] is FaultState.RESOLVED


def test_device_model_news_is_no_fault(cp: Charger201) -> None:
    cp.event({"name": "EVSE", "evse": {"id": 1}}, "AvailabilityState", "Occupied", 1)
    cp.event({"name": "RCD", "evse": {"id": 1}}, "Tripped", "false", 1, trigger="Periodic")
    assert cp.faults() == {}


# --- Faulted and the NotifyEvent naming it: one problem, one episode, one page ---


def pages(cp: Charger201) -> list[tuple[str, str]]:
    return [(decision.kind.value, decision.code) for decision in cp.net.faults.publisher.published]


def open_faults(cp: Charger201) -> set[tuple[int, str]]:
    return {(c, code) for (c, _, code), (state, _) in cp.faults().items() if state is not FaultState.RESOLVED}


def sweep_at(cp: Charger201, minutes: float) -> None:
    cp.net.now = T0 + timedelta(minutes=minutes)
    cp.net.faults.sweep([])


FAULTED_THEN_NAMED = {
    "status first": ["status", "event"],
    "event first": ["event", "status"],
    "status first, both redelivered": ["status", "event", "status", "event"],
    "event first, both redelivered": ["event", "status", "event", "status"],
    "status twice, then the event": ["status", "status", "event"],
}


@pytest.mark.parametrize("order", FAULTED_THEN_NAMED.values(), ids=FAULTED_THEN_NAMED.keys())
def test_a_faulted_evse_and_the_event_naming_its_problem_page_once_in_any_order(
    cp: Charger201, order: list[str]
) -> None:
    cp.net.now = T0 + timedelta(minutes=1)
    for frame in order:
        if frame == "status":
            cp.status(1, "Faulted", 1)
        else:
            cp.event(RCD_ON_EVSE_1, "Tripped", "true", 1)
    assert open_faults(cp) == {(1, "GroundFailure")}
    sweep_at(cp, 30)  # long past the major delay a lone Faulted would have paged after
    assert pages(cp) == [("raised", "GroundFailure")]
    cp.net.now = T0 + timedelta(minutes=31)
    cp.status(1, "Available", 31)
    assert open_faults(cp) == set()
    sweep_at(cp, 60)
    assert pages(cp) == [("raised", "GroundFailure"), ("resolved", "GroundFailure")]


def test_a_lone_faulted_still_pages_after_the_major_delay_and_resolves(cp: Charger201) -> None:
    cp.net.now = T0 + timedelta(minutes=1)
    cp.status(1, "Faulted", 1)
    cp.event({"name": "RCD", "evse": {"id": 2}}, "Tripped", "true", 1)  # another EVSE's problem
    sweep_at(cp, 5)
    assert pages(cp) == [("raised", "GroundFailure")]
    sweep_at(cp, 12)
    assert pages(cp)[1:] == [("raised", "Faulted")]
    assert open_faults(cp) == {(1, "Faulted"), (2, "GroundFailure")}
    cp.status(1, "Available", 13)
    assert pages(cp)[2:] == [("resolved", "Faulted")]


def test_a_faulted_opened_beside_its_named_problem_by_a_concurrent_frame_is_folded_by_the_sweep(
    cp: Charger201,
) -> None:
    cp.net.now = T0 + timedelta(minutes=1)
    cp.event(RCD_ON_EVSE_1, "Tripped", "true", 1)
    # The status's invocation read the faults before the event's was stored: it opens its own.
    bare = FaultSignal(
        charger_id="CP-1",
        site_id="S1",
        connector_id=1,
        kind=FaultKind.CONNECTOR_ERROR,
        code="Faulted",
        severity=Severity.MAJOR,
        at=T0 + timedelta(minutes=1),
        evidence="StatusNotification connector 1 Faulted/NoError",
    )
    cp.net.faults.store.save(observe(None, bare, cp.net.now), [], None)
    assert open_faults(cp) == {(1, "Faulted"), (1, "GroundFailure")}
    sweep_at(cp, 2)
    assert open_faults(cp) == {(1, "GroundFailure")}
    sweep_at(cp, 30)
    assert pages(cp) == [("raised", "GroundFailure")]


def test_a_faulted_already_paged_stays_open_beside_the_problem_named_later(cp: Charger201) -> None:
    cp.net.now = T0 + timedelta(minutes=1)
    cp.status(1, "Faulted", 1)
    sweep_at(cp, 12)
    cp.event(RCD_ON_EVSE_1, "Tripped", "true", 12)
    # Someone was told about the Faulted EVSE: silently closing it would leave them guessing.
    assert open_faults(cp) == {(1, "Faulted"), (1, "GroundFailure")}
    assert pages(cp) == [("raised", "Faulted"), ("raised", "GroundFailure")]
    cp.status(1, "Available", 13)
    assert sorted(pages(cp)[2:]) == [("resolved", "Faulted"), ("resolved", "GroundFailure")]


def test_a_named_problem_cleared_while_the_evse_stays_faulted_raises_the_faulted_again(
    cp: Charger201,
) -> None:
    cp.net.now = T0 + timedelta(minutes=1)
    cp.status(1, "Faulted", 1)
    cp.event(RCD_ON_EVSE_1, "Tripped", "true", 1)
    cp.net.now = T0 + timedelta(minutes=3)
    cp.event(RCD_ON_EVSE_1, "Tripped", "false", 3)
    assert open_faults(cp) == {(1, "Faulted")}  # still out of service, for a reason not named
    sweep_at(cp, 14)
    assert pages(cp) == [("raised", "GroundFailure"), ("resolved", "GroundFailure"), ("raised", "Faulted")]


def test_a_named_problem_cleared_just_before_the_evse_is_available_pages_nothing_more(cp: Charger201) -> None:
    cp.net.now = T0 + timedelta(minutes=1)
    cp.status(1, "Faulted", 1)
    cp.event(RCD_ON_EVSE_1, "Tripped", "true", 1)
    cp.net.now = T0 + timedelta(minutes=3)
    cp.event(RCD_ON_EVSE_1, "Tripped", "false", 3)
    cp.status(1, "Available", 3)
    sweep_at(cp, 30)
    assert open_faults(cp) == set()
    assert pages(cp) == [("raised", "GroundFailure"), ("resolved", "GroundFailure")]


# --- SecurityEventNotification, FirmwareStatusNotification, LogStatusNotification ---


def test_security_events_are_the_16_security_faults(cp: Charger201) -> None:
    tamper = {"type": "TamperDetectionActivated", "timestamp": at(1), "techInfo": "door\nopen"}
    assert cp.call("SecurityEventNotification", tamper)[2] == {}
    cp.call("SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": at(1)})
    assert cp.faults() == {
        (0, FaultKind.SECURITY_EVENT, "TamperDetectionActivated"): (FaultState.OPEN, Severity.SAFETY_CRITICAL)
    }


def test_firmware_and_log_statuses_are_recorded_on_the_charger(cp: Charger201) -> None:
    assert cp.call("FirmwareStatusNotification", {"status": "SignatureVerified", "requestId": 7})[2] == {}
    assert cp.call("LogStatusNotification", {"status": "Uploading", "requestId": 8})[2] == {}
    charger = cp.net.registry.get("CP-1")
    assert (charger.firmware_status, charger.diagnostics_status) == ("SignatureVerified", "Uploading")


# --- NotifyReport ---


def report_part(
    request_id: int, seq_no: int, tbc: bool, *variables: str, minutes: float = 0
) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "generatedAt": at(minutes),
        "seqNo": seq_no,
        "tbc": tbc,
        "reportData": [
            {
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": name},
                "variableAttribute": [{"type": "Actual", "value": "x" * 300, "mutability": "ReadOnly"}],
            }
            for name in variables
        ],
    }


def test_a_report_in_parts_is_kept_as_the_chargers_device_model(cp: Charger201) -> None:
    assert cp.call("NotifyReport", report_part(1, 1, False, "Power"))[2] == {}
    assert not cp.net.registry.device_model("CP-1").complete  # part 0 not here yet
    cp.call("NotifyReport", report_part(1, 0, True, "AvailabilityState"))
    model = cp.net.registry.device_model("CP-1")
    assert (model.request_id, model.complete) == (1, True)
    assert [entry.variable for entry in model.entries] == ["AvailabilityState", "Power"]
    entry = model.entries[0]
    assert (entry.component, entry.evse_id, entry.mutability) == ("EVSE", 1, "ReadOnly")
    assert len(entry.values["Actual"]) == 200  # bounded: an operator's view, not a copy


def test_a_newer_report_replaces_the_older_one(cp: Charger201) -> None:
    cp.call("NotifyReport", report_part(1, 0, True, "A"))
    cp.call("NotifyReport", report_part(1, 1, False, "B"))
    cp.call("NotifyReport", report_part(2, 0, False, "C", minutes=10))
    model = cp.net.registry.device_model("CP-1")
    assert (model.request_id, model.complete, [e.variable for e in model.entries]) == (2, True, ["C"])


# --- SignCertificate, DataTransfer ---


def test_sign_certificate_for_the_station_sends_certificate_signed_with_its_type(cp: Charger201) -> None:
    current = cp.net.certificates.issue("CP-1", csr())
    cp.net.principals["CP-1"] = current.certificate_id
    cp.send([2, "s1", "SignCertificate", {"csr": csr(), "certificateType": "ChargingStationCertificate"}])
    reply, signed = (json.loads(frame) for _, frame in cp.net.channel.sent[-2:])
    assert reply == [3, "s1", {"status": "Accepted"}]
    assert signed[:3] == [2, certificate_signed_message_id("CP-1", "s1"), "CertificateSigned"]
    assert signed[3]["certificateType"] == "ChargingStationCertificate"
    assert signed[3]["certificateChain"].startswith("-----BEGIN CERTIFICATE-----")


def test_a_v2g_certificate_is_refused_plug_and_charge_is_not_supported(cp: Charger201) -> None:
    reply = cp.call("SignCertificate", {"csr": csr(), "certificateType": "V2GCertificate"})
    assert reply[2]["status"] == "Rejected"
    assert reply[2]["statusInfo"]["reasonCode"] == "NotSupported"
    assert len(cp.net.channel.sent) == 1  # no CertificateSigned follows


def test_data_transfer_of_another_vendor_is_unknown(cp: Charger201) -> None:
    assert cp.call("DataTransfer", {"vendorId": "acme", "data": {"any": ["json"]}})[2] == {
        "status": "UnknownVendorId"
    }
    reply = cp.call(
        "DataTransfer", {"vendorId": "chargenet", "messageId": "CertificateInstalled", "data": {"x": 1}}
    )
    assert reply[2] == {"status": "Rejected"}


# --- CALLERRORs with 2.0.1 codes ---


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b'[2, "e1", "Heartbeat"', "FormatViolation"),
        ([2, "e1", "BootNotification", {"reason": "PowerUp"}], "OccurrenceConstraintViolation"),
        (
            [
                2,
                "e1",
                "StatusNotification",
                {"timestamp": at(0), "connectorStatus": "Dancing", "evseId": 1, "connectorId": 1},
            ],
            "PropertyConstraintViolation",
        ),
        ([2, "e1", "MakeCoffee", {}], "NotImplemented"),
        ([2, "e1", "StartTransaction", {}], "NotImplemented"),  # a 1.6 action, unknown to 2.0.1
        ([2, "e1", "NotifyDisplayMessages", {"requestId": 1}], "NotSupported"),  # 2.0.1's, not handled
        ([9, "e1", "Heartbeat", {}], "MessageTypeNotSupported"),
        ([2, "e1", "Heartbeat", {}, {}], "RpcFrameworkError"),
        (
            [
                2,
                "e1",
                "StatusNotification",
                {
                    "timestamp": "1969-12-31T23:59:59Z",
                    "connectorStatus": "Available",
                    "evseId": 1,
                    "connectorId": 1,
                },
            ],
            "PropertyConstraintViolation",
        ),
    ],
)
def test_bad_frames_get_201_callerrors(cp: Charger201, frame: Any, code: str) -> None:
    assert cp.send(frame) is Outcome.REFUSED
    assert cp.last_reply()[:3] == [4, "e1", code]


def test_the_same_frame_on_the_16_topic_gets_16_codes(cp: Charger201) -> None:
    cp.send([2, "e1", "BootNotification", BOOT], version=OcppVersion.V16)
    assert cp.last_reply()[:3] == [4, "e1", "FormationViolation"]  # 1.6's spelling, and its schema
    cp.send([2, "e3", "BootNotification", {"chargePointVendor": "Acme"}], version=OcppVersion.V16)
    assert cp.last_reply()[:3] == [4, "e3", "OccurenceConstraintViolation"]
    cp.send([2, "e2", "NotifyDisplayMessages", {"requestId": 1}], version=OcppVersion.V16)
    assert cp.last_reply()[:3] == [4, "e2", "NotImplemented"]


def test_a_revoked_201_charger_is_answered_security_error(cp: Charger201) -> None:
    cp.net.registry.chargers["CP-1"] = cp.net.registry.chargers["CP-1"].model_copy(
        update={"revoked_at": T0 - timedelta(hours=1)}
    )
    assert cp.send([2, "e1", "Heartbeat", {}]) is Outcome.REVOKED
    assert cp.last_reply()[:3] == [4, "e1", "SecurityError"]
    assert cp.send(b"[2, nonsense") is Outcome.REFUSED
    assert cp.last_reply()[2] == "FormatViolation"


def test_a_201_result_is_checked_against_the_201_response_schema(cp: Charger201) -> None:
    cp.net.pending.add("CP-1", "c1", "RequestStartTransaction", {"remoteStartId": 1}, T0)
    cp.net.pending.add("CP-1", "c2", "RequestStartTransaction", {"remoteStartId": 2}, T0)
    assert cp.send([3, "c1", {"status": "Accepted"}]) is Outcome.RESULT_MATCHED
    assert cp.send([3, "c2", {"status": "Maybe"}]) is Outcome.RESULT_MATCHED
    first, second = cp.net.pending.get("CP-1", "c1"), cp.net.pending.get("CP-1", "c2")
    assert first.outcome == {"result": {"status": "Accepted"}}
    assert "invalid" in second.outcome and second.outcome["result"] == {"status": "Maybe"}
