"""The backend's commands to a simulated charger, in process: answers, and what the charger sends after."""

import asyncio
import datetime as dt
import json

import pytest
from booted import booted, command, until
from fake_link import FakeLink
from ocpp.v16.enums import Reason
from plans import typical_plan
from upload_server import upload_server

from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.sim.charging import SessionError
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import DEFAULT_METER_BASE_WH, SimulatedCharger

pytestmark = pytest.mark.timeout(15)

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
PLAN = typical_plan()


def sent_after(link: FakeLink, answer: list) -> list[tuple[str, dict]]:
    """The charger's CALLs sent after its answer `answer`, as (action, payload)."""
    messages = [json.loads(frame) for frame in link.sent]
    later = messages[messages.index(answer) + 1 :]
    return [(m[2], m[3]) for m in later if m[0] == 2]


def statuses(link: FakeLink, connector_id: int | None = None) -> list[tuple[int, str, str]]:
    return [
        (p["connectorId"], p["status"], p["errorCode"])
        for p in link.central.calls("CP-UNIT", "StatusNotification")
        if connector_id in (None, p["connectorId"])
    ]


async def charging(charger: SimulatedCharger, link: FakeLink, speed: float = 2000):
    """A session under way on connector 1, with its Transaction.Begin sample sent."""
    session = asyncio.create_task(charger.run_session(PLAN, SimClock(speed=speed, start=T0)))
    await until(lambda: link.central.calls("CP-UNIT", "MeterValues"))
    return session


# ------------------------------------------------------------------ Reset
def test_a_reset_is_answered_then_the_charger_boots_again_and_reports_every_connector():
    async def scenario():
        async with booted() as (_, link):
            answer = await command(link, "Reset", {"type": "Soft"})
            await until(lambda: len(statuses(link)) == 3)
            return answer, link

    answer, link = asyncio.run(scenario())

    assert answer[2] == {"status": "Accepted"}
    after = [action for action, _ in sent_after(link, answer)]
    assert after == ["BootNotification", *["StatusNotification"] * 3]
    assert statuses(link) == [(c, "Available", "NoError") for c in (0, 1, 2)]


@pytest.mark.parametrize(("kind", "reason"), [("Hard", "HardReset"), ("Soft", "SoftReset")])
def test_a_reset_stops_the_running_session_with_its_reason_before_the_reboot(kind, reason):
    async def scenario():
        async with booted() as (charger, link):
            session = await charging(charger, link)
            answer = await command(link, "Reset", {"type": kind})
            truth = await session
            # Connector 2 only reports after the reboot, and last.
            await until(lambda: statuses(link, 2))
            return answer, truth, link, charger.meter_wh[1]

    answer, truth, link, register = asyncio.run(scenario())

    assert answer[2] == {"status": "Accepted"}
    assert truth.stop_reason == reason
    [stop] = link.central.calls("CP-UNIT", "StopTransaction")
    assert (stop["reason"], stop["meterStop"]) == (reason, truth.meter_stop_wh)
    assert truth.readings[-1].context == "Transaction.End"
    assert 0 < truth.energy_wh < 12_000
    assert int(register) == truth.meter_stop_wh
    actions = [action for action, _ in sent_after(link, answer)]
    assert actions.index("StopTransaction") < actions.index("BootNotification")
    assert statuses(link)[-3:] == [(c, "Available", "NoError") for c in (0, 1, 2)]


def test_a_second_reset_is_rejected_while_the_first_is_under_way():
    async def scenario():
        async with booted(response_timeout=0.5) as (_, link):
            # The backend stops answering, so the reboot's BootNotification waits.
            link.silent = True
            first = await command(link, "Reset", {"type": "Soft"})
            await until(lambda: len(link.calls("BootNotification")) == 2)
            return first, await command(link, "Reset", {"type": "Hard"})

    first, second = asyncio.run(scenario())

    assert (first[2], second[2]) == ({"status": "Accepted"}, {"status": "Rejected"})


# -------------------------------------------------------- UnlockConnector
def test_unlock_connector_answers_by_lock_fault_lock_presence_and_connector():
    async def scenario():
        async with booted() as (charger, link):
            answers = [await command(link, "UnlockConnector", {"connectorId": 2})]
            await charger.inject_fault(1, "ConnectorLockFailure")
            for connector_id in (1, 3, 0):
                answers.append(await command(link, "UnlockConnector", {"connectorId": connector_id}))
            charger.has_connector_lock = False
            answers.append(await command(link, "UnlockConnector", {"connectorId": 2}))
            return [a[2]["status"] for a in answers], link

    answers, link = asyncio.run(scenario())

    assert answers == ["Unlocked", "UnlockFailed", "NotSupported", "NotSupported", "NotSupported"]
    assert statuses(link) == [(1, "Faulted", "ConnectorLockFailure")]


def test_unlocking_a_connector_in_use_stops_its_session_first():
    async def scenario():
        async with booted() as (charger, link):
            session = await charging(charger, link)
            answer = await command(link, "UnlockConnector", {"connectorId": 1})
            return answer, await session, link

    answer, truth, link = asyncio.run(scenario())

    assert answer[2] == {"status": "Unlocked"}
    assert truth.stop_reason == "UnlockCommand"
    assert [s[1] for s in statuses(link, 1)] == ["Preparing", "Charging", "Finishing", "Available"]


# ----------------------------------------------------- ChangeAvailability
def test_change_availability_is_answered_then_reported_and_an_inoperative_connector_cannot_charge():
    async def scenario():
        async with booted() as (charger, link):
            off = await command(link, "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
            await until(lambda: statuses(link))
            with pytest.raises(SessionError, match="connector 2 is Unavailable"):
                await charger.run_session(PLAN.model_copy(update={"connector_id": 2}), SimClock(start=T0))
            again = await command(link, "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
            unknown = await command(link, "ChangeAvailability", {"connectorId": 3, "type": "Inoperative"})
            on = await command(link, "ChangeAvailability", {"connectorId": 2, "type": "Operative"})
            await until(lambda: len(statuses(link)) == 2)
            return [off, again, unknown, on], link

    answers, link = asyncio.run(scenario())

    assert [a[2]["status"] for a in answers] == ["Accepted", "Accepted", "Rejected", "Accepted"]
    assert statuses(link) == [(2, "Unavailable", "NoError"), (2, "Available", "NoError")]
    action, payload = sent_after(link, answers[0])[0]
    assert (action, payload["connectorId"], payload["status"]) == ("StatusNotification", 2, "Unavailable")


def test_connector_0_takes_the_whole_charger_out_of_service_and_back():
    async def scenario():
        async with booted() as (_, link):
            await command(link, "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
            await until(lambda: len(statuses(link)) == 3)
            await command(link, "ChangeAvailability", {"connectorId": 0, "type": "Operative"})
            await until(lambda: len(statuses(link)) == 6)
            return link

    link = asyncio.run(scenario())

    assert statuses(link) == [(c, "Unavailable", "NoError") for c in (0, 1, 2)] + [
        (c, "Available", "NoError") for c in (0, 1, 2)
    ]


def test_making_a_connector_in_use_inoperative_is_scheduled_for_the_end_of_its_session():
    async def scenario():
        async with booted() as (charger, link):
            session = await charging(charger, link, speed=10_000)
            answer = await command(link, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
            return answer, await session, link

    answer, truth, link = asyncio.run(scenario())

    assert answer[2] == {"status": "Scheduled"}
    assert truth.stop_reason == "EVDisconnected"
    assert [s[1] for s in statuses(link, 1)] == [
        "Preparing",
        "Charging",
        "SuspendedEV",
        "Finishing",
        "Unavailable",
    ]


# --------------------------------------------------------- TriggerMessage
@pytest.mark.parametrize(
    ("request_payload", "expected"),
    [
        (
            {"requestedMessage": "StatusNotification", "connectorId": 1},
            [("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"})],
        ),
        (
            {"requestedMessage": "StatusNotification"},
            [("StatusNotification", {"connectorId": c, "status": "Available"}) for c in (0, 1, 2)],
        ),
        (
            {"requestedMessage": "BootNotification"},
            [("BootNotification", {"chargePointModel": "SimCharger"})],
        ),
        ({"requestedMessage": "Heartbeat"}, [("Heartbeat", {})]),
        (
            {"requestedMessage": "DiagnosticsStatusNotification"},
            [("DiagnosticsStatusNotification", {"status": "Idle"})],
        ),
        (
            {"requestedMessage": "FirmwareStatusNotification"},
            [("FirmwareStatusNotification", {"status": "Idle"})],
        ),
        (
            {"requestedMessage": "MeterValues", "connectorId": 2},
            [("MeterValues", {"connectorId": 2})],
        ),
    ],
    ids=["status-1", "status-all", "boot", "heartbeat", "diagnostics", "firmware", "meter"],
)
def test_a_triggered_message_follows_the_accepted_answer(request_payload, expected):
    async def scenario():
        async with booted() as (_, link):
            answer = await command(link, "TriggerMessage", request_payload)
            await until(lambda: len(sent_after(link, answer)) == len(expected))
            return answer, sent_after(link, answer)

    answer, sent = asyncio.run(scenario())

    assert answer[2] == {"status": "Accepted"}
    assert [action for action, _ in sent] == [action for action, _ in expected]
    for (_, payload), (action, wanted) in zip(sent, expected, strict=True):
        if action == "MeterValues":
            [sample] = payload["meterValue"][0]["sampledValue"]
            assert sample == {
                "value": str(DEFAULT_METER_BASE_WH),
                "context": "Trigger",
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            }
            assert "transactionId" not in payload
        assert {key: payload[key] for key in wanted} == wanted


def test_triggered_meter_values_during_a_session_carry_its_transaction_and_register():
    async def scenario():
        async with booted() as (charger, link):
            session = await charging(charger, link)
            await until(lambda: len(link.central.calls("CP-UNIT", "MeterValues")) >= 2)
            request = {"requestedMessage": "MeterValues", "connectorId": 1}
            answer = await command(link, "TriggerMessage", request)

            def triggered() -> list[dict]:
                # The session's own samples go on meanwhile.
                return [
                    p
                    for a, p in sent_after(link, answer)
                    if a == "MeterValues" and p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
                ]

            [payload] = await until(triggered)
            charger.sessions[1].interrupt(Reason.local)
            return payload, await session

    triggered, truth = asyncio.run(scenario())

    assert triggered["transactionId"] == truth.transaction_id
    [sample] = triggered["meterValue"][0]["sampledValue"]
    assert truth.meter_start_wh < int(sample["value"]) <= truth.meter_stop_wh


@pytest.mark.parametrize(
    ("request_payload", "answer"),
    [
        ({"requestedMessage": "LogStatusNotification"}, [3, {"status": "NotImplemented"}]),
        ({"requestedMessage": "StatusNotification", "connectorId": 3}, [3, {"status": "Rejected"}]),
        ({"requestedMessage": 7}, [4, "TypeConstraintViolation"]),
    ],
)
def test_trigger_message_refuses_what_it_cannot_send(request_payload, answer):
    async def scenario():
        async with booted() as (_, link):
            reply = await command(link, "TriggerMessage", request_payload)
            await asyncio.sleep(0.02)
            return reply, sent_after(link, reply)

    reply, sent = asyncio.run(scenario())

    assert [reply[0], reply[2]] == answer
    assert sent == []


# ------------------------------------------------ Get/ChangeConfiguration
def test_get_configuration_lists_every_key_or_those_asked_for_and_the_unknown_ones():
    async def scenario():
        async with booted() as (_, link):
            everything = await command(link, "GetConfiguration", {})
            some = await command(link, "GetConfiguration", {"key": ["MeterValueSampleInterval", "NoSuchKey"]})
            return everything[2], some[2]

    everything, some = asyncio.run(scenario())

    keys = {k["key"]: k for k in everything["configurationKey"]}
    assert "unknownKey" not in everything
    assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "2"}
    assert keys["SupportedFeatureProfiles"]["readonly"] is True
    # The BootNotification reply's interval.
    assert keys["HeartbeatInterval"] == {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
    assert {"ConnectionTimeOut", "AuthorizeRemoteTxRequests", "LocalAuthorizeOffline"} <= keys.keys()
    assert some == {
        "configurationKey": [{"key": "MeterValueSampleInterval", "readonly": False, "value": "60"}],
        "unknownKey": ["NoSuchKey"],
    }


def test_change_configuration_answers_and_the_change_shows():
    async def scenario():
        async with booted() as (_, link):
            answers = [
                await command(link, "ChangeConfiguration", {"key": key, "value": value})
                for key, value in [
                    ("ConnectionTimeOut", "90"),
                    ("NumberOfConnectors", "4"),
                    ("Colour", "red"),
                ]
            ]
            shown = await command(
                link, "GetConfiguration", {"key": ["ConnectionTimeOut", "NumberOfConnectors"]}
            )
            return [a[2]["status"] for a in answers], shown[2]["configurationKey"]

    answers, shown = asyncio.run(scenario())

    assert answers == ["Accepted", "Rejected", "NotSupported"]
    assert [k["value"] for k in shown] == ["90", "2"]


def test_a_changed_meter_value_sample_interval_applies_to_sessions_that_leave_it_to_the_charger():
    async def scenario():
        async with booted() as (charger, link):
            await command(link, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "120"})
            open_plan = PLAN.model_copy(update={"meter_interval_s": None})
            clock = SimClock(speed=100_000, start=T0)
            return await charger.run_session(open_plan, clock), await charger.run_session(PLAN, clock)

    configured, pinned = asyncio.run(scenario())

    def offsets(truth):
        return [(r.timestamp - truth.started_at).total_seconds() for r in truth.readings[:3]]

    assert offsets(configured) == [0, 120, 240]
    assert offsets(pinned) == [0, 300, 600]


def test_a_changed_heartbeat_interval_takes_effect_at_once():
    async def scenario():
        async with booted() as (charger, link):
            before = charger.heartbeat_interval
            await command(link, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "1"})
            loop = asyncio.get_running_loop()
            changed = loop.time()
            await until(lambda: link.calls("Heartbeat"))
            return before, charger.heartbeat_interval, loop.time() - changed

    before, after, waited = asyncio.run(scenario())

    assert (before, after) == (300, 1)
    assert 0.9 < waited < 2.5


# --------------------------------------------------------- GetDiagnostics
def test_get_diagnostics_names_the_file_then_uploads_the_log_of_the_period_asked_for():
    elapsed = [0.0]
    clock = SimClock(start=T0, timer=lambda: elapsed[0])
    since = ocpp_timestamp(T0 + dt.timedelta(minutes=30))

    async def scenario(location: str):
        async with booted(clock=clock) as (charger, link):
            await charger.inject_fault(1, "GroundFailure", vendor_error_code="E42")
            elapsed[0] = 3600
            await charger.clear_fault(1)
            answer = await command(link, "GetDiagnostics", {"location": location, "startTime": since})
            await until(lambda: len(link.central.calls("CP-UNIT", "DiagnosticsStatusNotification")) == 2)
            return answer, sent_after(link, answer)

    with upload_server() as server:
        answer, sent = asyncio.run(scenario(server.url("diagnostics/CP-UNIT.log")))
        [(path, body)] = server.uploads

    assert answer[2] == {"fileName": "CP-UNIT-20250301T090000Z.log"}
    assert sent == [
        ("DiagnosticsStatusNotification", {"status": "Uploading"}),
        ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
    ]
    assert path.startswith("/diagnostics/CP-UNIT.log?X-Amz-Signature=")
    log = body.decode()
    assert log.startswith("# diagnostics of charger CP-UNIT\n")
    assert f"# period: {since} to now" in log
    assert "2025-03-01T09:00:00.000Z connector 1: fault cleared" in log
    assert "GroundFailure" not in log


@pytest.mark.parametrize(("http_status", "attempts"), [(500, 2), (None, 0)], ids=["server-error", "ftp"])
def test_a_failed_upload_is_retried_as_asked_then_reported(http_status, attempts):
    async def scenario(location: str):
        async with booted() as (_, link):
            request = {"location": location, "retries": 2, "retryInterval": 0}
            await command(link, "GetDiagnostics", request)
            await until(lambda: len(link.central.calls("CP-UNIT", "DiagnosticsStatusNotification")) == 2)
            return [p["status"] for p in link.central.calls("CP-UNIT", "DiagnosticsStatusNotification")]

    with upload_server() as server:
        server.status = http_status or 200
        location = server.url("log") if http_status else "ftp://127.0.0.1/log"
        reported = asyncio.run(scenario(location))
        uploads = len(server.uploads)

    assert reported == ["Uploading", "UploadFailed"]
    assert uploads == attempts


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("ftp://tech:s3cr3t-pw@logs.example/CP-UNIT/", "ftp://***@logs.example/CP-UNIT/"),
        # urllib takes the user name and password for the host and port: http.client's error
        # message quoted them (`nonnumeric port: 's3cr3t-pw@127.0.0.1'`).
        ("http://tech:s3cr3t-pw@127.0.0.1/log?X-Amz-Signature=sig", "http://***@127.0.0.1/log"),
    ],
    ids=["ftp", "http-with-credentials"],
)
def test_a_locations_credentials_reach_neither_the_log_nor_the_next_diagnostics_file(location, shown, caplog):
    async def scenario(server_url: str):
        async with booted() as (_, link):
            await command(link, "GetDiagnostics", {"location": location, "retryInterval": 0})
            await until(lambda: len(link.central.calls("CP-UNIT", "DiagnosticsStatusNotification")) == 2)
            # The failed upload's task ends just after its last status: until then no file is named.
            while "fileName" not in (await command(link, "GetDiagnostics", {"location": server_url}))[2]:
                await asyncio.sleep(0.01)
            await until(lambda: len(link.central.calls("CP-UNIT", "DiagnosticsStatusNotification")) == 4)

    # Every logger: the shim's own and the ocpp library's frame lines (test_location_logs.py).
    with caplog.at_level("DEBUG"), upload_server() as server:
        asyncio.run(scenario(server.url("log")))
        [(_, body)] = server.uploads

    assert f"diagnostics upload to {shown}" in body.decode()
    assert "s3cr3t-pw" not in body.decode()
    assert "diagnostics upload" in caplog.text  # the failure is logged, its secrets are not
    assert "s3cr3t-pw" not in caplog.text and "X-Amz-Signature" not in caplog.text


def test_no_file_is_named_while_an_upload_is_under_way():
    async def scenario(location: str, server):
        async with booted() as (_, link):
            first = await command(link, "GetDiagnostics", {"location": location})
            await until(lambda: link.central.calls("CP-UNIT", "DiagnosticsStatusNotification"))
            second = await command(link, "GetDiagnostics", {"location": location})
            server.open.set()
            await until(lambda: len(link.central.calls("CP-UNIT", "DiagnosticsStatusNotification")) == 2)
            return first[2], second[2]

    with upload_server() as server:
        server.open.clear()
        first, second = asyncio.run(scenario(server.url("log"), server))
        uploads = len(server.uploads)

    assert "fileName" in first
    assert second == {}
    assert uploads == 1


def test_clear_cache_is_accepted():
    async def scenario():
        async with booted() as (_, link):
            return await command(link, "ClearCache", {})

    assert asyncio.run(scenario())[2] == {"status": "Accepted"}


# ------------------------------------------------------------ fault hooks
def test_an_injected_fault_is_reported_blocks_charging_and_clears():
    async def scenario():
        async with booted() as (charger, link):
            await charger.inject_fault(1, "GroundFailure", vendor_error_code="E42", info="RCD tripped")
            with pytest.raises(SessionError, match="connector 1 is Faulted"):
                await charger.run_session(PLAN, SimClock(start=T0))
            await charger.clear_fault(1)
            return link.central.calls("CP-UNIT", "StatusNotification")

    faulted, cleared = asyncio.run(scenario())

    assert (faulted["connectorId"], faulted["status"], faulted["errorCode"]) == (
        1,
        "Faulted",
        "GroundFailure",
    )
    assert (faulted["vendorErrorCode"], faulted["info"]) == ("E42", "RCD tripped")
    assert (cleared["connectorId"], cleared["status"], cleared["errorCode"]) == (1, "Available", "NoError")


def test_a_fault_on_connector_0_takes_every_connector_out_of_use():
    async def scenario():
        async with booted() as (charger, link):
            await charger.inject_fault(0, "PowerMeterFailure")
            await charger.clear_fault(0)
            return statuses(link)

    assert asyncio.run(scenario()) == [
        (0, "Faulted", "PowerMeterFailure"),
        (1, "Unavailable", "NoError"),
        (2, "Unavailable", "NoError"),
        (0, "Available", "NoError"),
        (1, "Available", "NoError"),
        (2, "Available", "NoError"),
    ]


def test_a_fault_during_a_session_stops_it_before_the_faulted_status():
    async def scenario():
        async with booted() as (charger, link):
            session = await charging(charger, link)
            await charger.inject_fault(1, "OverCurrentFailure")
            return await session, link

    truth, link = asyncio.run(scenario())

    assert truth.stop_reason == "Other"
    assert [s[1] for s in statuses(link, 1)] == ["Preparing", "Charging", "Finishing", "Faulted"]
    calls = [(m[2], m[3].get("status")) for m in link.calls()]
    assert calls.index(("StopTransaction", None)) < calls.index(("StatusNotification", "Faulted"))


def test_a_reset_cures_faults_except_those_that_survive_it():
    async def scenario():
        async with booted() as (charger, link):
            await charger.inject_fault(1, "GroundFailure")
            await charger.inject_fault(2, "HighTemperature", survives_reset=True)
            await command(link, "Reset", {"type": "Hard"})
            await until(lambda: len(statuses(link)) == 5)
            return statuses(link)[2:]

    assert asyncio.run(scenario()) == [
        (0, "Available", "NoError"),
        (1, "Available", "NoError"),
        (2, "Faulted", "HighTemperature"),
    ]


def test_fault_hooks_refuse_what_is_no_fault_or_no_connector():
    async def scenario():
        async with booted() as (charger, _):
            with pytest.raises(ValueError, match="NoError is no fault"):
                await charger.inject_fault(1, "NoError")
            with pytest.raises(ValueError, match="no connector 3"):
                await charger.inject_fault(3, "GroundFailure")
            with pytest.raises(ValueError, match="no connector 3"):
                await charger.clear_fault(3)

    asyncio.run(scenario())


def test_a_silent_charger_leaves_commands_unanswered_but_goes_on_talking_until_it_resumes():
    async def scenario():
        async with booted() as (charger, link):
            charger.go_silent()
            link.push([2, "unheard", "ClearCache", {}])
            heartbeat = await charger.heartbeat()
            await asyncio.sleep(0.05)
            unheard = link.answer_to("unheard")
            charger.resume()
            return heartbeat, unheard, await command(link, "ClearCache", {})

    heartbeat, unheard, answer = asyncio.run(scenario())

    assert heartbeat.current_time
    assert unheard is None
    assert answer[2] == {"status": "Accepted"}


def test_no_session_starts_while_the_charger_restarts():
    async def scenario():
        async with booted() as (charger, link):
            clock = SimClock(speed=2000, start=T0)

            async def driver_queue():
                # As fleet.run_sessions does: the next session right after the last one ended.
                interrupted = await charger.run_session(PLAN, clock)
                with pytest.raises(SessionError, match="restarting"):
                    await charger.run_session(PLAN, clock)
                return interrupted

            queue = asyncio.create_task(driver_queue())
            await until(lambda: link.central.calls("CP-UNIT", "MeterValues"))
            await command(link, "Reset", {"type": "Soft"})
            return await queue

    assert asyncio.run(scenario()).stop_reason == "SoftReset"


def test_an_answer_lost_to_the_link_keeps_the_receive_loop_and_drops_what_would_follow():
    async def scenario():
        async with booted() as (_, link):
            link.failing_sends = 1
            link.push([2, "lost", "TriggerMessage", {"requestedMessage": "Heartbeat"}])
            await asyncio.sleep(0.05)
            return await command(link, "ClearCache", {}), link

    answer, link = asyncio.run(scenario())

    assert link.answer_to("lost") is None
    assert link.calls("Heartbeat") == []
    assert answer[2] == {"status": "Accepted"}
