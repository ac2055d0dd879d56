"""mosquitto restarted under a charging session: nothing lost, nothing billed twice.

The broker comes back with no sessions (no persistence), as after a crash: the charger
reconnects over mTLS by itself and its offline queue replays the transaction messages it kept;
the stack's own MQTT connection (rules engine, IoT Data endpoint) reconnects and subscribes again.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from chargenet.adapters.dynamodb import DynamoChargerRegistry, DynamoPendingCalls
from chargenet.adapters.iot_data import IotDataChannel
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.models import TagStatus
from chargenet_local.broker import RESTART_PATH, reload_crl, restart_broker
from tests.integration.conftest import cdrs_of, eventually, sessions_of

TARIFF = {
    "country_code": "SE",
    "party_id": "CGN",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": "0.30", "vat": "25", "step_size": 1}]}],
    "last_updated": "2026-11-01T00:00:00Z",
}


def priced_charger(new_charger) -> tuple[Any, str]:
    """A charger with its own tariff and an accepted tag for it."""
    from datetime import UTC, datetime

    credentials = new_charger()
    suffix = uuid.uuid4().hex[:8]
    tariff_id, tag = f"BR-{suffix}", f"BR-TAG-{suffix}"
    book = DynamoTariffBook()
    book.store(tariff_id, json.dumps({**TARIFF, "id": tariff_id}), datetime.now(UTC))
    book.assign(tariff_id, credentials.charger_id)
    DynamoTagDirectory().put(tag, TagStatus.ACCEPTED, 1, None)
    return credentials, tag


def commands() -> Any:
    """The operator's command path, in process: IoT Data publish, answers matched by the ingest."""
    from chargenet.domain.clock import utc_now
    from chargenet.services.commands import ChargerCommands

    return ChargerCommands(DynamoChargerRegistry(), DynamoPendingCalls(), IotDataChannel(), utc_now)


async def until(check, timeout: float = 20.0) -> Any:
    """`eventually` off the event loop, so the charger goes on charging while we wait."""
    return await asyncio.to_thread(eventually, check, timeout)


def test_a_charger_mid_session_rides_out_a_broker_restart_and_is_billed_once(stack, new_charger):
    from chargenet_shim.sim.session import SessionPlan
    from chargenet_shim.sim.simclock import SimClock
    from chargenet_shim.sim.simulator import SimulatedCharger

    credentials, tag = priced_charger(new_charger)
    charger_id = credentials.charger_id
    old_broker_pid = stack.broker_pid
    # 6.4 kWh at 11 kW: 35 simulated minutes, about 10 s at this speed; a reading every 1.5 s real.
    plan = SessionPlan(
        connector_id=1,
        id_tag=tag,
        battery_kwh=40,
        start_soc=50,
        target_soc=66,
        max_power_kw=11,
        meter_interval_s=300,
    )

    async def run() -> tuple[Any, int, dict[str, Any]]:
        clock = SimClock(speed=200)
        charger = SimulatedCharger(credentials, clock=clock)
        await charger.start()
        try:
            await charger.run_boot()
            session = asyncio.create_task(charger.run_session(plan, clock))
            await until(lambda: sessions_of(charger_id))  # charging: the backend has the start
            await asyncio.to_thread(restart_broker, stack, 2.0)
            truth = await asyncio.wait_for(session, 60)
            # Sent through the IoT Data endpoint, answered through the rules engine: both are back.
            service = commands()
            call = await asyncio.to_thread(
                service.send, charger_id, "GetConfiguration", {"key": ["HeartbeatInterval"]}
            )
            answered = await until(lambda: service.pending.get(charger_id, call.message_id).outcome)
            return truth, charger.outbox.queued_total, answered
        finally:
            await charger.stop()

    truth, queued, answer = asyncio.run(run())

    assert queued > 0  # the restart cut the link mid-session: transaction messages were kept and replayed
    [cdr] = eventually(lambda: cdrs_of(charger_id), timeout=30)
    assert cdr.session_id == str(truth.transaction_id)
    assert cdr.energy_wh == truth.energy_wh
    [session] = sessions_of(charger_id)
    assert (session.energy_wh, session.review_reasons) == (truth.energy_wh, [])
    assert answer["result"]["configurationKey"][0]["key"] == "HeartbeatInterval"
    # The restarted broker is the one CRL reloads signal, from the caller's state and stack.json alike.
    assert stack.broker_pid != old_broker_pid
    reload_crl(stack.broker_pid, Path(stack.home) / "broker")


@pytest.mark.parametrize("body", [b'{"down_s": -1}', b'{"down_s": "soon"}', b"[3]", b"{not json"])
def test_a_bad_restart_request_is_refused_and_restarts_nothing(stack, body):
    broker_pid = stack.broker_pid
    request = urllib.request.Request(stack.broker_control_url + RESTART_PATH, data=body, method="POST")

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)

    assert refused.value.code == 400
    assert "down_s" in json.loads(refused.value.read())["message"]
    assert stack.broker_pid == broker_pid
    os.kill(broker_pid, 0)  # the same mosquitto still runs
