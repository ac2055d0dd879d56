"""Faults from every source, through the local stack to the operators' inbox, each alerted once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import RawCharger, eventually

BOOT = {"chargePointVendor": "Sim", "chargePointModel": "S1"}


def alerts_for(home: str, charger_id: str, code: str) -> Callable[[], list[dict]]:
    def inbox() -> list[dict]:
        alerts = json.loads(cli(home, "alert", "list", "--json").stdout)
        return [a for a in alerts if charger_id in a["subject"] and code in a["subject"]]

    return inbox


def open_fault(home: str, charger_id: str, code: str) -> Callable[[], dict | None]:
    def find() -> dict | None:
        faults = json.loads(cli(home, "fault", "list", "--json").stdout)
        return next((f for f in faults if f["charger_id"] == charger_id and f["code"] == code), None)

    return find


async def exchange(credentials: Any, *frames: list) -> list[list]:
    async with RawCharger(credentials) as charger:
        replies = []
        for frame in frames:
            await charger.send(frame)
            replies.append(await charger.reply())
        return replies


def test_a_charger_offline_past_the_grace_is_alerted_once_and_its_return_announced(stack, new_charger):
    credentials = new_charger()
    inbox = alerts_for(stack.home, credentials.charger_id, "Offline")
    asyncio.run(exchange(credentials, [2, "b1", "BootNotification", BOOT]))  # then disconnects
    fault = eventually(open_fault(stack.home, credentials.charger_id, "Offline"), timeout=20)
    assert (fault["kind"], fault["severity"], fault["state"]) == ("offline", "major", "open")
    [raised] = eventually(inbox, timeout=20)
    assert raised["attributes"]["kind"] == "raised" and "disconnected since" in raised["message"]

    async def come_back() -> None:
        async with RawCharger(credentials) as charger:
            await charger.send([2, "b2", "BootNotification", BOOT])
            await charger.reply()
            # Stay connected until the return is announced: leaving again would be a new outage.
            await asyncio.to_thread(eventually, lambda: len(inbox()) >= 2, 20)

    asyncio.run(come_back())
    # This episode's: gone again after come_back, the charger opens the next one within the grace.
    episode = [a["attributes"]["kind"] for a in inbox() if a["episode"] == raised["episode"]]
    assert episode == ["raised", "resolved"]


def test_a_quick_reconnect_raises_nothing(stack, new_charger):
    credentials = new_charger()

    async def blip() -> None:
        async with RawCharger(credentials) as charger:
            await charger.send([2, "b1", "BootNotification", BOOT])
            await charger.reply()
        async with RawCharger(credentials) as charger:  # back at once
            await charger.send([2, "h1", "Heartbeat", {}])
            await charger.reply()
            await asyncio.sleep(4)  # twice the grace, with the sweep running every second
            assert open_fault(stack.home, credentials.charger_id, "Offline")() is None

    asyncio.run(blip())


def test_a_reboot_loop_is_detected_from_boot_notifications(stack, new_charger):
    credentials = new_charger()
    boots = [[2, f"boot-{n}", "BootNotification", BOOT] for n in range(3)]
    replies = asyncio.run(exchange(credentials, *boots))
    assert all(r[2]["status"] == "Accepted" for r in replies)
    fault = eventually(open_fault(stack.home, credentials.charger_id, "RebootLoop"))
    assert (fault["kind"], fault["severity"]) == ("reboot_loop", "major")
    [raised] = eventually(alerts_for(stack.home, credentials.charger_id, "RebootLoop"), timeout=20)
    assert "GetDiagnostics" in raised["message"]


def test_a_tamper_event_pages_at_once(stack, new_charger):
    credentials = new_charger()
    event = {"type": "TamperDetectionActivated", "timestamp": "2026-11-26T07:00:00Z", "techInfo": "door 2"}
    [reply] = asyncio.run(exchange(credentials, [2, "sec1", "SecurityEventNotification", event]))
    assert reply == [3, "sec1", {}]
    [raised] = eventually(alerts_for(stack.home, credentials.charger_id, "TamperDetectionActivated"))
    assert raised["attributes"]["severity"] == "safety_critical"


def test_a_register_going_backwards_opens_a_metering_fault(stack, new_charger):
    credentials = new_charger()

    def meter(n: int, wh: int, tx: int) -> list:
        value = {"timestamp": f"2026-11-26T07:{n:02d}:00Z", "sampledValue": [{"value": str(wh)}]}
        return [2, f"mv{n}", "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [value]}]

    async def session() -> None:
        async with RawCharger(credentials) as charger:
            start = {
                "connectorId": 1,
                "idTag": "ANY",
                "meterStart": 5000,
                "timestamp": "2026-11-26T07:00:00Z",
            }
            await charger.send([2, "st", "StartTransaction", start])
            tx = (await charger.reply())[2]["transactionId"]
            for frame in (meter(5, 6000, tx), meter(10, 5500, tx)):
                await charger.send(frame)
                await charger.reply()

    asyncio.run(session())
    fault = eventually(open_fault(stack.home, credentials.charger_id, "RegisterBackwards"))
    assert (fault["kind"], fault["severity"], fault["connector_id"]) == ("metering", "major", 1)
    eventually(alerts_for(stack.home, credentials.charger_id, "RegisterBackwards"), timeout=20)


def test_fleet_health_shows_each_chargers_link_connectors_and_worst_fault(stack, new_charger):
    credentials = new_charger(site="SITE-H")
    status = {"connectorId": 2, "errorCode": "HighTemperature", "status": "Faulted"}

    async def overheat() -> None:
        async with RawCharger(credentials) as charger:
            await charger.send([2, "b1", "BootNotification", BOOT])
            await charger.reply()
            await charger.send([2, "s1", "StatusNotification", status])
            await charger.reply()

            def health() -> dict | None:
                rows = json.loads(cli(stack.home, "fleet", "health", "--json").stdout)
                row = next(r for r in rows if r["charger_id"] == credentials.charger_id)
                return row if row["open_faults"] else None

            row = await asyncio.to_thread(eventually, health)
            assert (row["site_id"], row["online"], row["connectors"]) == ("SITE-H", True, {"2": "Faulted"})
            assert (row["open_faults"], row["worst"]) == (
                {"safety_critical": 1},
                "HighTemperature (connector 2)",
            )
            shown = cli(stack.home, "fleet", "health").stdout
            assert "1 safety-critical" in shown and "chargers online without open faults" in shown

    asyncio.run(overheat())
