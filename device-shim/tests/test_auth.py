import pytest

from chargenet_shim.auth import charger_id_from_path


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
    ],
)
def test_charger_id_comes_only_from_a_clean_ocpp_path(path, expected):
    assert charger_id_from_path(path) == expected
