"""Commands in the charger's OCPP version: which commands each version has, the other version's
refused (naming what does the job), the backend's own calls (remote start and stop, diagnostics)
shaped per version, and an operator's 2.0.1 ChangeAvailability read like a 1.6 one."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chargenet.domain.fault_rules import made_inoperative
from chargenet.domain.models import PendingCall, SessionRecord, TagStatus
from chargenet.ocpp.versions import OcppVersion
from chargenet.services.commands import (
    COMMANDS,
    INSTEAD,
    MAX_REQUEST_ID,
    ChargerCommands,
    CommandRefused,
    recorded_payload,
    request_id,
)
from tests.fakes import InMemoryPendingCalls, InMemoryRegistry, RecordingChannel

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
UPLOAD = "https://diagnostics.example/diagnostics/CP-2/x.log?X-Amz-Signature=secret"


@pytest.fixture
def commands() -> ChargerCommands:
    """CP-1 booted over 1.6 before versions were recorded, CP-16 over 1.6, CP-2 over 2.0.1."""
    registry = InMemoryRegistry()
    for charger_id, version in (("CP-1", None), ("CP-16", "ocpp1.6"), ("CP-2", "ocpp2.0.1")):
        registry.add(charger_id, NOW)
        registry._update(charger_id, ocpp_version=version)
    ids = iter(f"m-{n}" for n in range(1, 100))
    return ChargerCommands(
        registry, InMemoryPendingCalls(), RecordingChannel(), lambda: NOW, lambda: next(ids)
    )


def sent(commands: ChargerCommands) -> list[list[Any]]:
    return [json.loads(frame) for _, frame in commands.channel.sent]  # type: ignore[attr-defined]


def session(charger_transaction_id: str | None, charger_id: str = "CP-2") -> SessionRecord:
    return SessionRecord(
        session_id="7",
        transaction_id=7,
        charger_transaction_id=charger_transaction_id,
        charger_id=charger_id,
        connector_id=1,
        id_tag="PAY1",
        tag_status=TagStatus.ACCEPTED,
        started_at=NOW,
    )


# ---------------------------------------------------------------- what each version has
@pytest.mark.parametrize("version", list(OcppVersion))
def test_every_command_has_a_request_and_a_response_schema_in_its_version(version: OcppVersion) -> None:
    from ocpp.messages import get_validator

    for action in COMMANDS[version]:
        get_validator(2, action, version.schemas)  # raises when the version has no such action
        get_validator(3, action, version.schemas)


@pytest.mark.parametrize("version", list(OcppVersion))
def test_what_a_refusal_suggests_is_a_command_of_the_chargers_version(version: OcppVersion) -> None:
    (other,) = set(OcppVersion) - {version}
    for refused, suggested in INSTEAD[version].items():
        assert refused in COMMANDS[other] and refused not in COMMANDS[version]
        assert suggested.split(" ")[0] in COMMANDS[version]


# ---------------------------------------------------------------- operator commands per version
def test_a_2_0_1_charger_gets_its_commands_in_2_0_1(commands: ChargerCommands) -> None:
    commands.send("CP-2", "Reset", {"type": "Immediate"})
    commands.send(
        "CP-2",
        "GetVariables",
        {
            "getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
            ]
        },
    )
    commands.send("CP-2", "GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"})

    assert [frame[2] for frame in sent(commands)] == ["Reset", "GetVariables", "GetBaseReport"]
    assert commands.pending.get("CP-2", "m-1").payload == {"type": "Immediate"}


@pytest.mark.parametrize("charger_id", ["CP-1", "CP-16"])
def test_a_charger_without_a_recorded_version_is_written_to_in_1_6(
    commands: ChargerCommands, charger_id: str
) -> None:
    commands.send(charger_id, "Reset", {"type": "Soft"})
    assert sent(commands) == [[2, "m-1", "Reset", {"type": "Soft"}]]
    with pytest.raises(CommandRefused, match=r"OCPP 1\.6 schema: type: must be one of"):
        commands.send(charger_id, "Reset", {"type": "Immediate"})


@pytest.mark.parametrize(
    ("charger_id", "action", "payload", "reason"),
    [
        (
            "CP-2",
            "Reset",
            {"type": "Soft"},
            "Reset payload refused by the OCPP 2.0.1 schema: type: must be one of",
        ),
        (
            "CP-2",
            "GetDiagnostics",
            {"location": UPLOAD},
            "CP-2 speaks OCPP 2.0.1: send GetLog instead of GetDiagnostics",
        ),
        ("CP-2", "GetConfiguration", {}, "send GetVariables (or GetBaseReport for everything) instead"),
        ("CP-2", "RemoteStartTransaction", {"connectorId": 1, "idTag": "T"}, "send RequestStartTransaction"),
        ("CP-2", "RemoteStopTransaction", {"transactionId": 1}, "send RequestStopTransaction"),
        ("CP-2", "ChangeConfiguration", {"key": "k", "value": "v"}, "send SetVariables"),
        ("CP-16", "GetLog", {}, "CP-16 speaks OCPP 1.6: send GetDiagnostics instead of GetLog"),
        ("CP-1", "GetBaseReport", {}, "send GetConfiguration instead of GetBaseReport"),
        ("CP-1", "RequestStopTransaction", {"transactionId": "t"}, "send RemoteStopTransaction"),
        ("CP-1", "CostUpdated", {}, "CostUpdated is an OCPP 2.0.1 command with no OCPP 1.6 equivalent"),
        (
            "CP-2",
            "BootNotification",
            {},
            "not a command OCPP 2.0.1 chargers accept (one of: ChangeAvailability,",
        ),
        ("CP-2", "CertificateSigned", {}, "not a command OCPP 2.0.1 chargers accept"),
        ("CP-404", "Reset", {"type": "Immediate"}, "no charger CP-404"),
    ],
)
def test_a_command_in_the_wrong_version_is_refused_and_nothing_is_sent(
    commands: ChargerCommands, charger_id: str, action: str, payload: dict[str, Any], reason: str
) -> None:
    with pytest.raises(CommandRefused, match=re.escape(reason)):
        commands.send(charger_id, action, payload)
    assert commands.channel.sent == [] and commands.pending.calls == {}  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the backend's own calls
def test_a_remote_start_is_request_start_transaction_for_2_0_1_and_remote_start_for_1_6(
    commands: ChargerCommands,
) -> None:
    commands.start_remotely("CP-2", 2, "PAY0000000000000001", 123)
    commands.start_remotely("CP-1", 2, "PAY0000000000000001", 123)

    assert sent(commands) == [
        [
            2,
            "m-1",
            "RequestStartTransaction",
            {
                "idToken": {"idToken": "PAY0000000000000001", "type": "Central"},
                "remoteStartId": 123,
                "evseId": 2,
            },
        ],
        [2, "m-2", "RemoteStartTransaction", {"connectorId": 2, "idTag": "PAY0000000000000001"}],
    ]


def test_a_remote_stop_names_the_transaction_by_the_id_its_charger_knows(commands: ChargerCommands) -> None:
    commands.stop_remotely(session("b7a1e2f0-0001"))
    commands.stop_remotely(session(None, charger_id="CP-1"))

    assert [frame[2:] for frame in sent(commands)] == [
        ["RequestStopTransaction", {"transactionId": "b7a1e2f0-0001"}],
        ["RemoteStopTransaction", {"transactionId": 7}],
    ]


@pytest.mark.parametrize(
    ("charger_transaction_id", "charger_id", "reason"),
    [
        (None, "CP-2", "session 7 started over OCPP 1.6 and CP-2 now speaks OCPP 2.0.1"),
        ("tx-1", "CP-16", "session 7 started over OCPP 2.0.1 and CP-16 now speaks OCPP 1.6"),
    ],
)
def test_a_transaction_of_the_other_version_is_not_stopped(
    commands: ChargerCommands, charger_transaction_id: str | None, charger_id: str, reason: str
) -> None:
    with pytest.raises(CommandRefused, match=re.escape(reason)):
        commands.stop_remotely(session(charger_transaction_id, charger_id))
    assert commands.channel.sent == []  # type: ignore[attr-defined]


def test_diagnostics_are_get_log_for_2_0_1_and_get_diagnostics_for_1_6(commands: ChargerCommands) -> None:
    get_log = commands.request_log("CP-2", UPLOAD, 77)
    commands.request_log("CP-1", UPLOAD, 77)

    assert [frame[2:] for frame in sent(commands)] == [
        ["GetLog", {"logType": "DiagnosticsLog", "requestId": 77, "log": {"remoteLocation": UPLOAD}}],
        ["GetDiagnostics", {"location": UPLOAD}],
    ]
    # the history keeps neither version's signature
    assert get_log.payload["log"] == {"remoteLocation": "https://diagnostics.example/diagnostics/CP-2/x.log"}
    assert "secret" not in json.dumps([c.payload for c in commands.pending.of_charger("CP-1")])


def test_an_upload_url_longer_than_2_0_1_allows_is_refused_not_sent(commands: ChargerCommands) -> None:
    with pytest.raises(CommandRefused, match="log/remoteLocation: must be at most 512 characters"):
        commands.request_log("CP-2", UPLOAD + "x" * 512, 77)
    assert commands.channel.sent == []  # type: ignore[attr-defined]


def test_the_history_keeps_no_credentials_of_a_2_0_1_firmware_or_log_location() -> None:
    payload = {
        "requestId": 3,
        "firmware": {"location": "https://user:pw@fw.example/img.bin?sig=1", "retrieveDateTime": "x"},
        "log": {"remoteLocation": "ftp://u:p@logs.example/in?token=2"},
    }
    assert recorded_payload(payload) == {
        "requestId": 3,
        "firmware": {"location": "https://***@fw.example/img.bin", "retrieveDateTime": "x"},
        "log": {"remoteLocation": "ftp://***@logs.example/in"},
    }


def test_a_request_id_is_stable_and_fits_a_signed_32_bit_integer() -> None:
    ids = {request_id(f"pay{n}") for n in range(2000)}
    assert request_id("pay1") == request_id("pay1")
    assert len(ids) == 2000 and all(0 <= i <= MAX_REQUEST_ID for i in ids)


# ---------------------------------------------------------------- ChangeAvailability in 2.0.1
def availability(minute: int, payload: dict[str, Any], answer: str | None = "Accepted") -> PendingCall:
    return PendingCall(
        charger_id="CP-2",
        message_id=f"a{minute}",
        action="ChangeAvailability",
        payload=payload,
        sent_at=NOW + timedelta(minutes=minute),
        outcome={"result": {"status": answer}} if answer else None,
    )


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([availability(0, {"operationalStatus": "Inoperative", "evse": {"id": 1}})], True),
        ([availability(0, {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 1}})], True),
        ([availability(0, {"operationalStatus": "Inoperative"})], True),  # the whole station
        ([availability(0, {"operationalStatus": "Inoperative", "evse": {"id": 2}})], False),
        (
            [availability(0, {"operationalStatus": "Inoperative", "evse": {"id": 1}}, answer="Rejected")],
            False,
        ),
        (
            [
                availability(0, {"operationalStatus": "Inoperative"}),
                availability(1, {"operationalStatus": "Operative", "evse": {"id": 1}}),
            ],
            False,
        ),
    ],
)
def test_an_operators_2_0_1_change_availability_explains_an_unavailable(
    calls: list[PendingCall], expected: bool
) -> None:
    assert made_inoperative(calls, 1, NOW + timedelta(minutes=5)) is expected


# ---------------------------------------------------------------- charger show
def test_charger_show_prints_the_reported_device_model_a_variable_a_row() -> None:
    from chargenet_cli.charger_cmd import device_model_lines

    entry = {
        "component": "Connector",
        "component_instance": None,
        "evse_id": 1,
        "connector_id": 2,
        "variable": "Power",
        "variable_instance": "L1",
        "values": {"Actual": "7400", "MaxSet": "22000"},
        "mutability": "ReadOnly",
    }
    model = {"request_id": 4, "generated_at": "2026-12-07T09:00:00Z", "complete": False, "entries": [entry]}

    heading, table = device_model_lines(model)

    assert heading == "device model (report 4 of 2026-12-07T09:00:00Z, incomplete: parts still missing):"
    row = table.splitlines()[-1].split()
    assert row == ["Connector", "1/2", "Power[L1]", "7400", "MaxSet", "22000", "ReadOnly"]
