import pytest

from chargenet_local.broker import PresenceChange, parse_presence


@pytest.mark.parametrize(
    ("line", "change"),
    [
        (
            "2026-11-26T05:03:23: New client connected from 127.0.0.1:43658 as CP-1 (p2, c0, k30, u'CP-1').",
            PresenceChange("CP-1", True, ""),
        ),
        (
            "2026-11-26T05:03:33: Client CP-1 disconnected.",
            PresenceChange("CP-1", False, "CLIENT_INITIATED_DISCONNECT"),
        ),
        ("t: Client CP-2 closed its connection.", PresenceChange("CP-2", False, "CONNECTION_LOST")),
        (
            "t: Client CP-3 has exceeded timeout, disconnecting.",
            PresenceChange("CP-3", False, "MQTT_KEEP_ALIVE_TIMEOUT"),
        ),
        ("t: Socket error on client CP-4, disconnecting.", PresenceChange("CP-4", False, "CONNECTION_LOST")),
        ("t: New connection from 127.0.0.1:1 on port 2.", None),
        ("t: OpenSSL Error[0]: certificate verify failed", None),
    ],
)
def test_mosquitto_log_lines_become_presence_changes(line, change):
    assert parse_presence(line) == change
