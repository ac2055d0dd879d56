"""`chargenet charger list`'s table (charger_cmd.fleet_table): each charger's OCPP version."""

from typing import Any

from chargenet_cli.charger_cmd import fleet_table


def record(charger_id: str, ocpp_version: str | None) -> dict[str, Any]:
    """A charger as the operator API lists it (services.operator_api.charger_record)."""
    return {
        "charger_id": charger_id,
        "site_id": "SITE-1",
        "online": True,
        "vendor": "ACME",
        "model": "W9",
        "firmware_version": "1.0.0",
        "last_seen_at": "2026-12-07T10:11:12+00:00",
        "ocpp_version": ocpp_version,
        "connectors": [{"connector_id": 1, "status": "Available"}],
    }


def test_each_charger_shows_the_ocpp_version_it_booted_in_and_16_when_none_is_recorded():
    printed = fleet_table([record("CP-201", "ocpp2.0.1"), record("CP-16", "ocpp1.6"), record("CP-OLD", None)])

    header, *rows = printed.splitlines()
    assert header.split()[:4] == ["CHARGER", "SITE", "STATE", "OCPP"]
    assert {row.split()[0]: row.split()[3] for row in rows if row.startswith("CP-")} == {
        "CP-201": "2.0.1",
        "CP-16": "1.6",
        "CP-OLD": "1.6",
    }
