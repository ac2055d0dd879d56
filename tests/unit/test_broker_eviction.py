"""Evicting a revoked charger must not look like the charger coming back online."""

from chargenet_local.broker import PresenceChange, operator_takeover, parse_presence

TAKEOVER = "t: New client connected from 127.0.0.1:1 as CP-1 (p2, c1, k30, u'chargenet-backend')."


def test_the_old_connection_closed_by_a_takeover_is_a_duplicate_client_id_disconnect():
    line = "t: Client CP-1 already connected, closing old connection."
    assert parse_presence(line) == PresenceChange("CP-1", False, "DUPLICATE_CLIENTID")


def test_the_backend_connecting_under_a_charger_id_is_a_takeover():
    assert operator_takeover(TAKEOVER) == "CP-1"


def test_chargers_and_the_backends_own_connection_are_not_takeovers():
    charger = "t: New client connected from 127.0.0.1:1 as CP-1 (p2, c0, k30, u'CP-1')."
    backend = (
        "t: New client connected from 127.0.0.1:1 as chargenet-backend (p2, c1, k30, u'chargenet-backend')."
    )
    assert operator_takeover(charger) is None
    assert operator_takeover(backend) is None
    assert operator_takeover("t: Client CP-1 disconnected.") is None
