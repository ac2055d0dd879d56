"""Faults from StatusNotification through the stack to the operators' inbox (SNS -> local alert sink)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import RawCharger, eventually


def test_ground_failure_alerts_operators_once_and_its_resolution_follows(stack, new_charger):
    credentials = new_charger(site="SITE-F")

    def inbox() -> list[dict]:
        alerts = json.loads(cli(stack.home, "alert", "list", "--json").stdout)
        # The charger going offline after the test is alerted too: only this fault's alerts count.
        return [
            a for a in alerts if credentials.charger_id in a["subject"] and "GroundFailure" in a["subject"]
        ]

    async def report(status: str, code: str, minute: int) -> None:
        async with RawCharger(credentials) as charger:
            payload = {
                "connectorId": 1,
                "errorCode": code,
                "status": status,
                "vendorErrorCode": "RCD-7",
                "timestamp": f"2026-11-26T07:{minute:02d}:00Z",
            }
            for copy in range(2):  # the same message twice, as MQTT may deliver it
                await charger.send([2, f"s{minute}-{copy}", "StatusNotification", payload])
                assert (await charger.reply())[0] == 3

    asyncio.run(report("Faulted", "GroundFailure", 1))
    [raised] = eventually(inbox, timeout=20)
    assert raised["attributes"] == {
        "severity": "safety_critical",
        "kind": "raised",
        "fault_id": raised["attributes"]["fault_id"],
    }
    assert "GroundFailure" in raised["subject"] and "SITE-F" in raised["subject"]
    assert "do not reset" in raised["message"]

    faults = json.loads(cli(stack.home, "fault", "list", "--open", "--json").stdout)
    [fault] = [f for f in faults if f["charger_id"] == credentials.charger_id and f["kind"] != "offline"]
    assert (fault["kind"], fault["severity"], fault["vendor_error_code"]) == (
        "connector_error",
        "safety_critical",
        "RCD-7",
    )

    asyncio.run(report("Available", "NoError", 5))
    alerts = eventually(lambda: inbox() if len(inbox()) >= 2 else None, timeout=20)
    assert [a["attributes"]["kind"] for a in alerts] == ["raised", "resolved"]
    shown = json.loads(cli(stack.home, "fault", "show", fault["fault_id"]).stdout)
    assert shown["state"] == "resolved" and len(shown["alerts"]) == 2


def test_operator_acknowledges_and_resolves_a_fault(stack, new_charger):
    credentials = new_charger()

    async def fault() -> None:
        async with RawCharger(credentials) as charger:
            await charger.send(
                [
                    2,
                    "u1",
                    "StatusNotification",
                    {"connectorId": 2, "errorCode": "ConnectorLockFailure", "status": "Faulted"},
                ]
            )
            await charger.reply()

    asyncio.run(fault())
    faults = eventually(
        lambda: [
            f
            for f in json.loads(cli(stack.home, "fault", "list", "--json").stdout)
            if f["charger_id"] == credentials.charger_id and f["code"] == "ConnectorLockFailure"
        ]
    )
    fault_id = faults[0]["fault_id"]
    # The fault records who signed in (this process: the first admin); --by goes to the audit note.
    acked = cli(stack.home, "fault", "ack", fault_id[:12], "--by", "alice")
    assert acked.returncode == 0 and "acknowledged by admin" in acked.stdout
    resolved = cli(stack.home, "fault", "resolve", fault_id)
    assert resolved.returncode == 0
    shown = json.loads(cli(stack.home, "fault", "show", fault_id).stdout)
    assert (shown["state"], shown["acknowledged_by"]) == ("resolved", "admin")
    [audited] = [
        entry
        for entry in json.loads(cli(stack.home, "audit", "list", "--json").stdout)
        if entry["route"].endswith("/ack") and entry["targets"].get("fault_id") == fault_id
    ]
    assert audited["note"] == "owner: alice"
    missing = cli(stack.home, "fault", "show", "ffffffffffff")
    assert missing.returncode == 1 and "no fault" in missing.stderr


def test_an_operator_resolving_a_paged_fault_sends_its_resolution_to_the_operators(stack, new_charger):
    credentials = new_charger(site="SITE-F")

    def alerts_of_this_charger() -> list[dict]:
        alerts = json.loads(cli(stack.home, "alert", "list", "--json").stdout)
        return [
            a for a in alerts if credentials.charger_id in a["subject"] and "GroundFailure" in a["subject"]
        ]

    async def fault() -> None:
        async with RawCharger(credentials) as charger:
            payload = {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"}
            await charger.send([2, "g1", "StatusNotification", payload])
            assert (await charger.reply())[0] == 3

    asyncio.run(fault())
    [raised] = eventually(alerts_of_this_charger, timeout=20)
    fault_id = raised["attributes"]["fault_id"]
    resolved = cli(stack.home, "fault", "resolve", fault_id[:12])
    assert resolved.returncode == 0 and "resolved" in resolved.stdout
    alerts = eventually(lambda: a if len(a := alerts_of_this_charger()) >= 2 else None, timeout=20)
    assert [(a["attributes"]["kind"], a["attributes"]["fault_id"]) for a in alerts] == [
        ("raised", fault_id),
        ("resolved", fault_id),
    ]
    again = cli(stack.home, "fault", "resolve", fault_id[:12])
    assert again.returncode == 0 and "unchanged (resolved)" in again.stdout


def test_a_faulted_connector_pages_after_the_major_delay_whatever_its_error_code(stack, new_charger):
    """OtherError is minor on a working connector; Faulted, the connector cannot charge: major."""
    credentials = new_charger(site="SITE-F")

    def inbox() -> list[dict]:
        alerts = json.loads(cli(stack.home, "alert", "list", "--json").stdout)
        return [a for a in alerts if credentials.charger_id in a["subject"] and "OtherError" in a["subject"]]

    async def fault() -> None:
        async with RawCharger(credentials) as charger:
            payload = {
                "connectorId": 1,
                "errorCode": "OtherError",
                "status": "Faulted",
                "vendorErrorCode": "E-42",
            }
            await charger.send([2, "o1", "StatusNotification", payload])
            assert (await charger.reply())[0] == 3

    asyncio.run(fault())
    [raised] = eventually(inbox, timeout=30)
    assert (raised["attributes"]["kind"], raised["attributes"]["severity"]) == ("raised", "major")
    shown = json.loads(cli(stack.home, "fault", "show", raised["attributes"]["fault_id"]).stdout)
    assert (shown["code"], shown["severity"], shown["vendor_error_code"]) == ("OtherError", "major", "E-42")
    # Paged by the sweep once open MajorAlertDelaySeconds (2 s on the test stack), not at once.
    [alert] = shown["alerts"]
    paged_after = datetime.fromisoformat(alert["at"]) - datetime.fromisoformat(shown["first_seen"])
    assert paged_after >= timedelta(seconds=2)
