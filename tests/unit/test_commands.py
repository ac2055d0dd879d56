import json
from datetime import UTC, datetime

import pytest

from chargenet.services.commands import ChargerCommands, CommandRefused
from tests.fakes import InMemoryPendingCalls, InMemoryRegistry, RecordingChannel

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def commands():
    registry = InMemoryRegistry()
    registry.add("CP-1", NOW)
    ids = iter(["m-1", "m-2", "m-3"])
    return ChargerCommands(
        registry, InMemoryPendingCalls(), RecordingChannel(), lambda: NOW, lambda: next(ids)
    )


def test_a_command_is_recorded_then_published(commands):
    call = commands.send("CP-1", "Reset", {"type": "Soft"})
    assert (call.message_id, call.action, call.sent_at) == ("m-1", "Reset", NOW)
    assert commands.pending.get("CP-1", "m-1").payload == {"type": "Soft"}
    assert [(c, json.loads(f)) for c, f in commands.channel.sent] == [
        ("CP-1", [2, "m-1", "Reset", {"type": "Soft"}])
    ]


@pytest.mark.parametrize(
    ("charger", "action", "payload", "reason"),
    [
        ("CP-404", "Reset", {"type": "Soft"}, "no charger CP-404"),
        ("CP-1", "BootNotification", {}, "not a command"),
        ("CP-1", "Reset", {"type": "Gentle"}, "payload refused"),
        ("CP-1", "UnlockConnector", {}, "payload refused"),
    ],
)
def test_bad_commands_are_refused_and_nothing_is_sent(commands, charger, action, payload, reason):
    with pytest.raises(CommandRefused, match=reason):
        commands.send(charger, action, payload)
    assert commands.channel.sent == [] and commands.pending.calls == {}


def test_timeout_is_recorded_unless_the_answer_came_first(commands):
    commands.send("CP-1", "ClearCache", {})
    assert commands.time_out("CP-1", "m-1").outcome == {"timeout": True}
    commands.send("CP-1", "ClearCache", {})
    commands.pending.resolve("CP-1", "m-2", {"result": {"status": "Accepted"}}, NOW)
    assert commands.time_out("CP-1", "m-2").outcome == {"result": {"status": "Accepted"}}
