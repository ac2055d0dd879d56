import asyncio
import json

import pytest

from chargenet_shim.sim.charger_state import NotAccepted
from chargenet_shim.sim.simulator import SimulatedCharger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def _calls(backend, charger_id, action):
    return [m for m in map(json.loads, backend.frames(charger_id)) if m[0] == 2 and m[2] == action]


def test_boot_goes_through_the_broker_and_returns_the_backends_reply(provision, backend):
    creds = provision()

    async def scenario():
        charger = SimulatedCharger(creds, vendor="ACME", model="Volt-22", firmware="1.2.3")
        await charger.start()
        try:
            return await charger.run_boot(), charger.heartbeat_interval
        finally:
            await charger.stop()

    reply, interval = asyncio.run(scenario())

    assert reply.status == "Accepted"
    assert reply.interval == backend.heartbeat_interval == interval
    [boot] = _calls(backend, creds.charger_id, "BootNotification")
    assert boot[3] == {"chargePointVendor": "ACME", "chargePointModel": "Volt-22", "firmwareVersion": "1.2.3"}


def test_status_and_heartbeat_after_an_accepted_boot(provision, backend):
    creds = provision()

    async def scenario():
        charger = SimulatedCharger(creds)
        await charger.start()
        try:
            await charger.run_boot()
            await charger.send_status(
                1, "Faulted", "GroundFailure", info="RCD tripped", vendor_error_code="E42"
            )
            return await charger.heartbeat()
        finally:
            await charger.stop()

    heartbeat = asyncio.run(scenario())

    assert heartbeat.current_time.endswith("Z")
    [status] = _calls(backend, creds.charger_id, "StatusNotification")
    assert status[3]["connectorId"] == 1
    assert status[3]["status"] == "Faulted"
    assert status[3]["errorCode"] == "GroundFailure"
    assert status[3]["info"] == "RCD tripped"
    assert status[3]["vendorErrorCode"] == "E42"
    assert len(_calls(backend, creds.charger_id, "Heartbeat")) == 1


def test_pending_boot_is_retried_after_the_backends_interval(provision, backend):
    creds = provision()
    backend.boot_replies[creds.charger_id] = [{"status": "Pending", "interval": 1}]

    async def scenario():
        charger = SimulatedCharger(creds)
        await charger.start()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            reply = await charger.run_boot(max_attempts=2)
            return reply, loop.time() - started
        finally:
            await charger.stop()

    reply, elapsed = asyncio.run(scenario())

    assert reply.status == "Accepted"
    assert elapsed >= 1
    assert len(_calls(backend, creds.charger_id, "BootNotification")) == 2


def test_nothing_but_boot_may_be_sent_while_rejected(provision, backend):
    creds = provision()
    backend.boot_replies[creds.charger_id] = [{"status": "Rejected", "interval": 60}]

    async def scenario():
        charger = SimulatedCharger(creds)
        await charger.start()
        try:
            reply = await charger.run_boot()
            with pytest.raises(NotAccepted):
                await charger.heartbeat()
            with pytest.raises(NotAccepted):
                await charger.send_status(0, "Available")
            return reply
        finally:
            await charger.stop()

    assert asyncio.run(scenario()).status == "Rejected"
    assert [m[2] for m in map(json.loads, backend.frames(creds.charger_id))] == ["BootNotification"]


def test_backend_calls_without_a_handler_get_not_implemented(provision, backend):
    creds = provision()

    async def scenario():
        charger = SimulatedCharger(creds)
        await charger.start()
        try:
            await asyncio.to_thread(
                backend.send, creds.charger_id, json.dumps([2, "b-1", "ReserveNow", {"connectorId": 1}])
            )
            return await asyncio.to_thread(backend.wait_for, creds.charger_id, lambda f: '"b-1"' in f)
        finally:
            await charger.stop()

    answer = json.loads(asyncio.run(scenario()))

    assert answer[:3] == [4, "b-1", "NotImplemented"]
