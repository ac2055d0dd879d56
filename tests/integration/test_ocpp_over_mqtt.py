"""Chargers over mutual TLS through the real broker, rules engine, functions and moto."""

from __future__ import annotations

import asyncio

from chargenet_shim.sim.simulator import SimulatedCharger
from tests.integration.conftest import RawCharger, eventually, registry

BOOT = {
    "chargePointVendor": "Acme",
    "chargePointModel": "AC22",
    "chargePointSerialNumber": "SN-9",
    "firmwareVersion": "4.2",
}


def test_simulated_charger_boots_and_its_statuses_land_in_dynamodb(new_charger):
    credentials = new_charger(site="SITE-A")

    async def run():
        charger = SimulatedCharger(credentials, connectors=2)
        await charger.start()
        try:
            reply = await charger.run_boot()
            for connector_id in (0, 1, 2):
                await charger.send_status(connector_id, "Available")
            await charger.send_status(2, "Faulted", error_code="GroundFailure", vendor_error_code="E-17")
            online = eventually(lambda: registry().get(credentials.charger_id).online)
            return reply, online
        finally:
            await charger.stop()

    reply, online = asyncio.run(run())
    assert reply.status == "Accepted" and reply.interval == 300
    assert online is True
    charger = registry().get(credentials.charger_id)
    assert (charger.vendor, charger.model, charger.firmware_version, charger.site_id) == (
        "chargenet",
        "SimCharger",
        "0.1.0",
        "SITE-A",
    )
    statuses = {
        c.connector_id: (c.status, c.error_code, c.vendor_error_code)
        for c in registry().connectors(credentials.charger_id)
    }
    assert statuses == {
        0: ("Available", "NoError", None),
        1: ("Available", "NoError", None),
        2: ("Faulted", "GroundFailure", "E-17"),
    }
    # Disconnecting shows up through the lifecycle event, in version order.
    eventually(lambda: not registry().get(credentials.charger_id).online)
    assert registry().get(credentials.charger_id).disconnect_reason == "CLIENT_INITIATED_DISCONNECT"


def test_duplicate_frame_is_answered_the_same_and_applied_once(new_charger):
    credentials = new_charger()

    async def run():
        async with RawCharger(credentials) as charger:
            await charger.send([2, "boot-1", "BootNotification", BOOT])
            first = await charger.reply()
            boot_at = registry().get(credentials.charger_id).last_boot_at
            await charger.send([2, "boot-1", "BootNotification", BOOT])
            second = await charger.reply()
            return first, second, boot_at

    first, second, boot_at = asyncio.run(run())
    assert first == second
    assert first[0] == 3 and first[2]["status"] == "Accepted"
    assert registry().get(credentials.charger_id).last_boot_at == boot_at


def test_bad_frames_get_callerrors_and_the_function_keeps_serving(new_charger):
    credentials = new_charger()

    async def run():
        async with RawCharger(credentials) as charger:
            replies = []
            for frame in (
                '[2, "oops"',
                [2, "m1", "BootNotification", {"chargePointVendor": "Acme"}],
                [
                    2,
                    "m2",
                    "StartTransaction",
                    {
                        "connectorId": "one",
                        "idTag": "T",
                        "meterStart": 0,
                        "timestamp": "2026-11-26T08:00:00Z",
                    },
                ],
                [2, "m3", "MakeCoffee", {}],
                [2, "m4", "DataTransfer", {"vendorId": "acme", "data": "x" * 70000}],
                [2, "m5", "Heartbeat", {}],
            ):
                await charger.send(frame)
                replies.append(await charger.reply())
            return replies

    replies = asyncio.run(run())
    assert [r[:3] for r in replies[:5]] == [
        [4, "oops", "FormationViolation"],  # the id is readable although the frame is not
        [4, "m1", "OccurenceConstraintViolation"],
        [4, "m2", "TypeConstraintViolation"],
        [4, "m3", "NotImplemented"],
        [4, "m4", "GenericError"],
    ]
    assert replies[5][:2] == [3, "m5"] and "currentTime" in replies[5][2]
