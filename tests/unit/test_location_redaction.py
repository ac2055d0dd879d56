"""A location's credentials reach the charger and nothing that records the command."""

from __future__ import annotations

import json

import pytest

from chargenet.domain.locations import redacted_location
from chargenet_shim import redaction as shim_redaction
from tests.unit.test_commands import commands  # noqa: F401 - fixture

PASSWORD = "s3cr3t-pw"
FTP = f"ftp://tech:{PASSWORD}@logs.example:2121/CP-1/"

CASES = [
    (FTP, "ftp://***@logs.example:2121/CP-1/"),
    (
        "https://bucket.s3.amazonaws.com/d/CP-1.log?X-Amz-Signature=abc",
        "https://bucket.s3.amazonaws.com/d/CP-1.log",
    ),
    ("ftp://logs.example/CP-1/", "ftp://logs.example/CP-1/"),
    # A password a URL parser would split at its unescaped /, ? or #: still gone whole.
    (f"ftp://tech:{PASSWORD}/x@logs.example/", "ftp://***@logs.example/"),
    (f"ftp://tech:{PASSWORD}?x@logs.example/?q", "ftp://***@logs.example/"),
    (f"ftp://tech:{PASSWORD}#x@logs.example/", "ftp://***@logs.example/"),
    (f"ftp://tech:{PASSWORD}@[::1]:21/x", "ftp://***@[::1]:21/x"),
    (f"tech:{PASSWORD}@logs.example", "***@logs.example"),
]


@pytest.mark.parametrize(("location", "shown"), CASES)
def test_a_location_is_shown_without_credentials_or_query_by_backend_and_shim_alike(location, shown) -> None:
    assert redacted_location(location) == shown
    assert shim_redaction.redacted_location(location) == shown  # the shim's copy


def test_the_charger_gets_the_location_whole_the_command_history_never_its_password(commands) -> None:  # noqa: F811
    call = commands.send("CP-1", "GetDiagnostics", {"location": FTP, "retries": 1})

    [(_, frame)] = commands.channel.sent
    assert json.loads(frame)[3] == {"location": FTP, "retries": 1}
    recorded = commands.pending.get("CP-1", call.message_id)
    for kept in (recorded.payload, call.payload):  # what `command list|send --json` print
        assert kept == {"location": "ftp://***@logs.example:2121/CP-1/", "retries": 1}
    assert PASSWORD not in repr(commands.pending.calls)


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        (FTP, "ftp://***@logs.example:2121/CP-1/"),
        (
            "https://bucket.s3.amazonaws.com/firmware/2.0.0.pkg?X-Amz-Credential=AKIA&X-Amz-Signature=abc123",
            "https://bucket.s3.amazonaws.com/firmware/2.0.0.pkg",
        ),
    ],
    ids=["ftp-password", "pre-signed"],
)
def test_update_firmware_reaches_the_charger_whole_its_history_without_credentials_or_query(
    commands,  # noqa: F811
    location,
    shown,
) -> None:
    payload = {"location": location, "retrieveDate": "2025-03-01T08:00:00Z", "retries": 2}
    call = commands.send("CP-1", "UpdateFirmware", payload)

    [(_, frame)] = commands.channel.sent
    assert json.loads(frame)[3] == payload
    recorded = commands.pending.get("CP-1", call.message_id)
    for kept in (recorded.payload, call.payload):  # what `command send|list --json` print
        assert kept == {**payload, "location": shown}
    assert PASSWORD not in repr(commands.pending.calls) and "abc123" not in repr(commands.pending.calls)
