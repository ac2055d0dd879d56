from types import SimpleNamespace

import pytest

from chargenet_shim.auth import charger_id_from_path, source_address


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ocpp/CP-001", "CP-001"),
        ("/ocpp/CP-001?foo=bar", "CP-001"),
        ("/ocpp/CP%2D001", "CP-001"),
        ("/ocpp/", None),
        ("/ocpp/CP-001/extra", None),
        ("/other/CP-001", None),
        ("/ocpp/..", None),
        ("/ocpp/%2E%2E", None),
        ("/ocpp/a%2Fb", None),
        ("/ocpp/CP%23001", None),
        ("/ocpp/CP-001%0A", None),  # a trailing newline: `$` alone would let it through
        ("/ocpp/CP.1", None),  # no IoT thing may carry it
    ],
)
def test_charger_id_comes_only_from_a_clean_ocpp_path(path, expected):
    assert charger_id_from_path(path) == expected


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        (("192.0.2.7", 50123), "192.0.2.7"),
        (("::ffff:192.0.2.7", 50123, 0, 0), "192.0.2.7"),  # IPv4 on a dual-stack listener
        # One IPv6 host holds a whole /64: counted per address, it could take a fresh one per guess.
        (("2001:db8:1:2::17", 50123, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff:1:2:3", 50123, 0, 0), "2001:db8:1:2::/64"),
        (("fe80::1%eth0", 50123, 0, 2), "fe80::/64"),
    ],
)
def test_the_lockout_counts_an_ipv6_peer_by_its_64(peer, key):
    assert source_address(SimpleNamespace(remote_address=peer)) == key
