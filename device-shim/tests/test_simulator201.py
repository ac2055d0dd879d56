"""The simulated OCPP 2.0.1 charger in process: the ocpp v201 ChargePoint over a FakeLink.

Every frame the charger sends is validated against the 2.0.1 schemas by the ocpp package before
it reaches the link, so a test that sees a frame arrive also knows it is valid 2.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from booted import booted as booted_charger
from booted import command as backend_command
from booted import until
from fake_link import FakeLink, credentials
from plans import typical_plan
from test_firmware import package_server
from test_firmware_updates import PINNED, package
from upload_server import upload_server

from chargenet_shim.link import ChargerLink
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim.charger201 import SimulatedCharger201
from chargenet_shim.sim.charger_state import DEFAULT_METER_BASE_WH
from chargenet_shim.sim.session import ChargeCurve, SessionPlan, Step, timeline
from chargenet_shim.sim.simclock import SimClock

pytestmark = pytest.mark.timeout(15)

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
FAST = 100_000


def booted(**options: Any) -> contextlib.AbstractAsyncContextManager[tuple[SimulatedCharger201, FakeLink]]:
    return booted_charger(SimulatedCharger201, **options)


async def command(link: FakeLink, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A CALL from the CSMS; the payload of the charger's CALLRESULT."""
    answer = await backend_command(link, action, payload)
    assert answer[0] == 3, answer
    return answer[2]


def payloads(link: FakeLink, action: str) -> list[dict[str, Any]]:
    return [message[3] for message in link.calls(action)]


def events(link: FakeLink) -> list[dict[str, Any]]:
    """The TransactionEvents as the backend processed them: a retry of one (same message id) once."""
    return link.central.calls(link.charger_id, "TransactionEvent")


def register(event: dict[str, Any]) -> tuple[float, str]:
    [meter_value] = event["meterValue"]
    [energy] = [s for s in meter_value["sampledValue"] if s["measurand"] == "Energy.Active.Import.Register"]
    return energy["value"], energy["context"]


def periodic_samples(plan: SessionPlan) -> int:
    return sum(1 for _, step in timeline(plan, ChargeCurve.for_plan(plan)) if step is Step.PERIODIC)


def slow_plan(**changes: Any) -> SessionPlan:
    """A session that lasts long enough in real time for the CSMS to act on it (~0.5 s at 6000x)."""
    return typical_plan().model_copy(update=changes)


# ------------------------------------------------------------------- boot
def test_the_charger_publishes_to_the_2_0_1_ingest_topic():
    charger = SimulatedCharger201(credentials("CP-201"))

    link = charger.link
    assert isinstance(link, ChargerLink)
    assert link.ocpp_version is OcppVersion.V201
    assert link.credentials.ingest_topic_for(link.ocpp_version) == (
        "$aws/rules/chargenet_ocpp_ingest_ocpp201/chargers/CP-201/in"
    )


def test_boot_says_what_the_station_is_and_why_it_booted_then_statuses_per_evse():
    async def scenario():
        async with booted(vendor="ACME", model="Volt-22", firmware="1.2.3") as (charger, link):
            for connector in range(charger.connectors + 1):
                await charger.send_status(connector, "Available")
            await charger.heartbeat()
            return charger.heartbeat_interval, link

    interval, link = asyncio.run(scenario())

    [boot] = payloads(link, "BootNotification")
    assert boot == {
        "chargingStation": {"vendorName": "ACME", "model": "Volt-22", "firmwareVersion": "1.2.3"},
        "reason": "PowerUp",
    }
    assert interval == link.central.heartbeat_interval
    # 2.0.1 has no status of the station as a whole: the EVSEs', each with its one connector.
    statuses = payloads(link, "StatusNotification")
    assert [(s["evseId"], s["connectorId"], s["connectorStatus"]) for s in statuses] == [
        (1, 1, "Available"),
        (2, 1, "Available"),
    ]
    assert len(payloads(link, "Heartbeat")) == 1


# ---------------------------------------------------------------- sessions
def test_a_session_is_told_as_transaction_events_with_sequence_numbers_and_registers():
    async def scenario():
        async with booted() as (charger, link):
            truth = await charger.run_session(typical_plan(), SimClock(speed=FAST, start=T0))
            return truth, link

    truth, link = asyncio.run(scenario())

    [authorize] = payloads(link, "Authorize")
    assert authorize == {"idToken": {"idToken": "TAG-1", "type": "ISO14443"}}
    sent = events(link)
    assert [e["seqNo"] for e in sent] == list(range(len(sent)))
    assert {e["transactionInfo"]["transactionId"] for e in sent} == {truth.transaction_id}
    started, *updated, ended = sent
    assert started["eventType"] == "Started"
    assert started["triggerReason"] == "Authorized"
    assert started["transactionInfo"]["chargingState"] == "Charging"
    assert started["idToken"] == {"idToken": "TAG-1", "type": "ISO14443"}
    assert started["evse"] == {"id": 1, "connectorId": 1}
    assert (
        register(started)
        == (DEFAULT_METER_BASE_WH, "Transaction.Begin")
        == (truth.meter_start_wh, "Transaction.Begin")
    )
    assert {e["eventType"] for e in updated} == {"Updated"}
    periodic = [e for e in updated if e["triggerReason"] == "MeterValuePeriodic"]
    # The Transaction.End sample is the Ended event's.
    assert len(periodic) == periodic_samples(typical_plan())
    assert all(register(e)[1] == "Sample.Periodic" for e in periodic)
    [full] = [e for e in updated if e["triggerReason"] == "ChargingStateChanged"]
    assert full["transactionInfo"]["chargingState"] == "SuspendedEV"
    assert ended["eventType"] == "Ended"
    assert ended["triggerReason"] == "EVDeparted"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert register(ended) == (truth.meter_stop_wh, "Transaction.End")
    assert truth.energy_wh == 12_000
    assert truth.ocpp_version == "ocpp2.0.1"
    # Registers only grow, and nothing was made offline.
    registers = [register(e)[0] for e in sent if "meterValue" in e]
    assert registers == sorted(registers)
    assert not any(e.get("offline") for e in sent)
    # Occupied while plugged in, Available once the car has gone.
    assert [s["connectorStatus"] for s in payloads(link, "StatusNotification")] == ["Occupied", "Available"]


def test_events_made_offline_are_queued_marked_offline_and_delivered_in_order():
    async def scenario():
        async with booted() as (charger, link):
            clock = SimClock(speed=6000, start=T0)
            session = asyncio.create_task(charger.run_session(slow_plan(), clock))
            await until(lambda: events(link))
            link.go_offline()
            await asyncio.sleep(0.2)
            queued_while_offline = charger.outbox.backlog
            link.go_online()
            truth = await session
            return truth, link, queued_while_offline

    truth, link, queued = asyncio.run(scenario())

    assert queued > 0
    sent = events(link)
    assert [e["seqNo"] for e in sent] == list(range(len(sent)))
    # Made while the link was down: marked, one run of them; made online (before, after): not.
    late = [e["seqNo"] for e in sent if e.get("offline")]
    assert late and late == list(range(late[0], late[-1] + 1))
    assert not sent[0].get("offline")
    assert sent[-1]["eventType"] == "Ended"
    assert not sent[-1].get("offline")
    assert register(sent[-1])[0] == truth.meter_stop_wh


def test_a_refused_authorization_starts_no_transaction():
    async def scenario():
        async with booted() as (charger, link):
            link.central.blocked_tags.add("TAG-1")
            with pytest.raises(Exception, match="Blocked"):
                await charger.run_session(typical_plan(), SimClock(speed=FAST, start=T0))
            return link

    link = asyncio.run(scenario())

    assert events(link) == []


# --------------------------------------------------- remote start and stop
def test_a_remote_start_charges_with_the_backends_token_and_a_remote_stop_ends_it():
    async def scenario():
        async with booted() as (charger, link):
            charger.remote_clock = lambda: SimClock(speed=6000, start=T0)
            start = await command(
                link,
                "RequestStartTransaction",
                {"idToken": {"idToken": "PAYLINK-7", "type": "Central"}, "remoteStartId": 42},
            )
            started = await until(lambda: events(link))
            transaction_id = started[0]["transactionInfo"]["transactionId"]
            unknown = await command(link, "RequestStopTransaction", {"transactionId": "not-ours"})
            stop = await command(link, "RequestStopTransaction", {"transactionId": transaction_id})
            [truth] = await asyncio.gather(*charger.remote_sessions)
            return start, unknown, stop, truth, link

    start, unknown, stop, truth, link = asyncio.run(scenario())

    assert start == {"status": "Accepted"}
    assert unknown == {"status": "Rejected"}
    assert stop == {"status": "Accepted"}
    [authorize] = payloads(link, "Authorize")
    assert authorize == {"idToken": {"idToken": "PAYLINK-7", "type": "Central"}}
    started, *_, ended = events(link)
    assert started["triggerReason"] == "RemoteStart"
    assert started["transactionInfo"]["remoteStartId"] == 42
    assert started["idToken"] == {"idToken": "PAYLINK-7", "type": "Central"}
    assert ended["triggerReason"] == "RemoteStop"
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    assert ended["transactionInfo"]["chargingState"] == "EVConnected"
    assert truth.transaction_id == started["transactionInfo"]["transactionId"]
    assert truth.id_tag == "PAYLINK-7"


def test_a_remote_start_on_a_busy_evse_is_rejected():
    async def scenario():
        async with booted() as (charger, link):
            session = asyncio.create_task(charger.run_session(slow_plan(), SimClock(speed=6000, start=T0)))
            await until(lambda: events(link))
            answer = await command(
                link,
                "RequestStartTransaction",
                {"idToken": {"idToken": "PAYLINK-8", "type": "Central"}, "remoteStartId": 43, "evseId": 1},
            )
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session
            return answer

    assert asyncio.run(scenario()) == {"status": "Rejected"}


# ------------------------------------------------------ reset, unlock, availability
def test_an_immediate_reset_ends_the_session_and_boots_with_reason_remote_reset():
    async def scenario():
        async with booted() as (charger, link):
            session = asyncio.create_task(charger.run_session(slow_plan(), SimClock(speed=6000, start=T0)))
            await until(lambda: events(link))
            answer = await command(link, "Reset", {"type": "Immediate"})
            truth = await session
            await until(lambda: len(payloads(link, "BootNotification")) == 2)
            return answer, truth, link

    answer, truth, link = asyncio.run(scenario())

    assert answer == {"status": "Accepted"}
    ended = events(link)[-1]
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
        "ResetCommand",
        "ImmediateReset",
    )
    assert [b["reason"] for b in payloads(link, "BootNotification")] == ["PowerUp", "RemoteReset"]
    assert truth.meter_stop_wh == register(ended)[0]


def test_unlock_is_refused_during_a_transaction_and_done_otherwise():
    async def scenario():
        async with booted() as (charger, link):
            session = asyncio.create_task(charger.run_session(slow_plan(), SimClock(speed=6000, start=T0)))
            await until(lambda: events(link))
            during = await command(link, "UnlockConnector", {"evseId": 1, "connectorId": 1})
            idle = await command(link, "UnlockConnector", {"evseId": 2, "connectorId": 1})
            unknown = await command(link, "UnlockConnector", {"evseId": 3, "connectorId": 1})
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session
            return during, idle, unknown

    during, idle, unknown = asyncio.run(scenario())

    assert during == {"status": "OngoingAuthorizedTransaction"}
    assert idle == {"status": "Unlocked"}
    assert unknown == {"status": "UnknownConnector"}


def test_the_station_made_inoperative_reports_every_evse_unavailable():
    async def scenario():
        async with booted() as (_, link):
            answer = await command(link, "ChangeAvailability", {"operationalStatus": "Inoperative"})
            await until(lambda: len(payloads(link, "StatusNotification")) == 2)
            return answer, link

    answer, link = asyncio.run(scenario())

    assert answer == {"status": "Accepted"}
    assert [(s["evseId"], s["connectorStatus"]) for s in payloads(link, "StatusNotification")] == [
        (1, "Unavailable"),
        (2, "Unavailable"),
    ]


def test_trigger_message_sends_the_registers_and_refuses_what_it_does_not_do():
    async def scenario():
        async with booted() as (_, link):
            meter_values = await command(
                link, "TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 2}}
            )
            await until(lambda: payloads(link, "MeterValues"))
            v2g = await command(link, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"})
            return meter_values, v2g, link

    meter_values, v2g, link = asyncio.run(scenario())

    assert meter_values == {"status": "Accepted"}
    assert v2g == {"status": "NotImplemented"}
    [sent] = payloads(link, "MeterValues")
    assert sent["evseId"] == 2
    assert register(sent) == (DEFAULT_METER_BASE_WH, "Trigger")


# ----------------------------------------------------------- device model
def _variable(component: str, name: str, **more: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": name}, **more}


def test_set_variables_changes_the_heartbeat_and_refuses_read_only_and_unknown_ones():
    async def scenario():
        async with booted() as (charger, link):
            answer = await command(
                link,
                "SetVariables",
                {
                    "setVariableData": [
                        _variable("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="60"),
                        _variable("TxCtrlr", "StopTxOnEVSideDisconnect", attributeValue="false"),
                        _variable("SmartChargingCtrlr", "Enabled", attributeValue="true"),
                        _variable("TxCtrlr", "NoSuchVariable", attributeValue="1"),
                    ]
                },
            )
            read = await command(
                link, "GetVariables", {"getVariableData": [_variable("OCPPCommCtrlr", "HeartbeatInterval")]}
            )
            return answer, read, charger.heartbeat_interval

    answer, read, interval = asyncio.run(scenario())

    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == [
        "Accepted",
        "Rejected",
        "UnknownComponent",
        "UnknownVariable",
    ]
    [result] = read["getVariableResult"]
    assert (result["attributeStatus"], result["attributeValue"]) == ("Accepted", "60")
    assert interval == 60


def test_the_meter_interval_set_as_a_variable_is_the_next_sessions():
    async def scenario():
        async with booted() as (charger, link):
            await command(
                link,
                "SetVariables",
                {
                    "setVariableData": [
                        _variable("SampledDataCtrlr", "TxUpdatedInterval", attributeValue="600")
                    ]
                },
            )
            plan = typical_plan().model_copy(update={"meter_interval_s": None})
            await charger.run_session(plan, SimClock(speed=FAST, start=T0))
            return link

    link = asyncio.run(scenario())

    periodic = [e for e in events(link) if e["triggerReason"] == "MeterValuePeriodic"]
    assert len(periodic) == periodic_samples(typical_plan().model_copy(update={"meter_interval_s": 600}))
    assert periodic_samples(typical_plan()) > len(periodic) > 0


def test_get_base_report_answers_then_sends_the_device_model_in_notify_report_frames():
    async def scenario():
        async with booted() as (_, link):
            full = await command(link, "GetBaseReport", {"requestId": 7, "reportBase": "FullInventory"})
            await until(lambda: any(not r.get("tbc") for r in payloads(link, "NotifyReport")))
            summary = await command(link, "GetBaseReport", {"requestId": 8, "reportBase": "SummaryInventory"})
            return full, summary, link

    full, summary, link = asyncio.run(scenario())

    assert full == {"status": "Accepted"}
    assert summary == {"status": "NotSupported"}
    frames = payloads(link, "NotifyReport")
    assert {f["requestId"] for f in frames} == {7}
    assert [f["seqNo"] for f in frames] == list(range(len(frames)))
    assert len(frames) > 1
    assert [bool(f.get("tbc")) for f in frames] == [True] * (len(frames) - 1) + [False]
    entries = {
        (d["component"]["name"], d["variable"]["name"]): d["variableAttribute"][0]
        for f in frames
        for d in f["reportData"]
    }
    assert entries[("OCPPCommCtrlr", "HeartbeatInterval")] == {
        "type": "Actual",
        "value": str(link.central.heartbeat_interval),
        "mutability": "ReadWrite",
    }
    assert entries[("TxCtrlr", "StopTxOnEVSideDisconnect")]["mutability"] == "ReadOnly"


# ------------------------------------------------------------ logs, firmware, costs
def test_get_log_names_the_file_then_uploads_the_journal_with_its_status():
    async def scenario():
        with upload_server() as server:
            async with booted() as (_, link):
                answer = await command(
                    link,
                    "GetLog",
                    {
                        "logType": "DiagnosticsLog",
                        "requestId": 5,
                        "log": {"remoteLocation": server.url("log")},
                    },
                )
                await until(lambda: len(payloads(link, "LogStatusNotification")) == 2)
                return answer, server.wait_for_uploads(1), link

    answer, uploads, link = asyncio.run(scenario())

    assert answer["status"] == "Accepted"
    assert answer["filename"].startswith("CP-UNIT-DiagnosticsLog-")
    assert payloads(link, "LogStatusNotification") == [
        {"status": "Uploading", "requestId": 5},
        {"status": "Uploaded", "requestId": 5},
    ]
    [(_, body)] = uploads
    assert b"boot accepted" in body


def test_update_firmware_is_verified_installed_and_reported_with_its_request_id():
    async def scenario():
        with package_server() as packages:
            async with booted(firmware="1.0.0") as (charger, link):
                charger.firmware_key = PINNED
                location = packages.publish("fw", package("1.1.0"))
                moment = dt.datetime.now(dt.UTC).isoformat()
                answer = await command(
                    link,
                    "UpdateFirmware",
                    {"requestId": 9, "firmware": {"location": location, "retrieveDateTime": moment}},
                )
                await until(
                    lambda: (
                        {"status": "Installed", "requestId": 9}
                        in payloads(link, "FirmwareStatusNotification")
                    )
                )
                return answer, charger, link

    answer, charger, link = asyncio.run(scenario())

    assert answer == {"status": "Accepted"}
    assert [s["status"] for s in payloads(link, "FirmwareStatusNotification")] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    boots = payloads(link, "BootNotification")
    assert [(b["reason"], b["chargingStation"]["firmwareVersion"]) for b in boots] == [
        ("PowerUp", "1.0.0"),
        ("FirmwareUpdate", "1.1.0"),
    ]
    assert charger.running_firmware == "1.1.0"


def test_a_tampered_firmware_is_reported_as_an_invalid_signature():
    forged = package("1.1.0").replace(b"firmware", b"backdoor")

    async def scenario():
        with package_server() as packages:
            async with booted(firmware="1.0.0") as (charger, link):
                charger.firmware_key = PINNED
                moment = dt.datetime.now(dt.UTC).isoformat()
                await command(
                    link,
                    "UpdateFirmware",
                    {
                        "requestId": 10,
                        "firmware": {"location": packages.publish("fw", forged), "retrieveDateTime": moment},
                    },
                )
                await until(
                    lambda: (
                        "InvalidSignature"
                        in [s["status"] for s in payloads(link, "FirmwareStatusNotification")]
                    )
                )
                return link

    link = asyncio.run(scenario())

    [event] = payloads(link, "SecurityEventNotification")
    assert event["type"] == "InvalidFirmwareSignature"
    assert len(payloads(link, "BootNotification")) == 1


def test_cost_updated_is_accepted_and_kept_per_transaction():
    async def scenario():
        async with booted() as (charger, link):
            answer = await command(link, "CostUpdated", {"totalCost": 3.15, "transactionId": "tx-1"})
            return answer, charger.running_costs

    answer, costs = asyncio.run(scenario())

    assert answer == {}
    assert costs == {"tx-1": Decimal("3.15")}


# ------------------------------------------------------------------ faults
def test_a_fault_ends_the_session_shows_the_evse_faulted_and_tells_why_as_an_event():
    async def scenario():
        async with booted() as (charger, link):
            session = asyncio.create_task(charger.run_session(slow_plan(), SimClock(speed=6000, start=T0)))
            await until(lambda: events(link))
            await charger.inject_fault(1, "GroundFailure", "RCD-7", "30 mA residual current")
            truth = await session
            faulted = [s["connectorStatus"] for s in payloads(link, "StatusNotification")]
            await charger.clear_fault(1)
            return truth, faulted, link

    truth, faulted, link = asyncio.run(scenario())

    ended = events(link)[-1]
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
        "AbnormalCondition",
        "Other",
    )
    assert register(ended)[0] == truth.meter_stop_wh
    assert faulted[-1] == "Faulted"
    assert payloads(link, "StatusNotification")[-1]["connectorStatus"] == "Available"
    tripped, cleared = (n["eventData"] for n in payloads(link, "NotifyEvent"))
    assert [(e["component"], e["variable"], e["actualValue"]) for e in tripped] == [
        ({"name": "RCD", "evse": {"id": 1}}, {"name": "Tripped"}, "true")
    ]
    assert (tripped[0]["techCode"], tripped[0]["techInfo"]) == ("RCD-7", "30 mA residual current")
    assert (cleared[0]["actualValue"], cleared[0]["cleared"]) == ("false", True)
    assert cleared[0]["eventId"] != tripped[0]["eventId"]


def test_an_unprompted_reboot_boots_with_the_watchdogs_reason():
    async def scenario():
        async with booted() as (charger, link):
            await charger.reboot()
            return link

    link = asyncio.run(scenario())

    assert [b["reason"] for b in payloads(link, "BootNotification")] == ["PowerUp", "Watchdog"]
    assert [(s["evseId"], s["connectorStatus"]) for s in payloads(link, "StatusNotification")] == [
        (1, "Available"),
        (2, "Available"),
    ]
