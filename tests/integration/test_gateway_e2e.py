"""A real OCPP client nobody here wrote, through the shim gateway, to the cloud side and back.

The `ocpp` package's v16 ChargePoint over `websockets` -> gateway (Basic Auth, profile 1)
-> the charger's own mTLS MQTT link -> mosquitto -> rules engine -> ingest function
-> DynamoDB, and the reply back through IoT Data -> mosquitto -> gateway -> WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect
from websockets.headers import build_authorization_basic

from chargenet_shim.gateway import GatewayConfig, serve
from tests.integration.conftest import eventually, registry

PASSWORD = "s3cret-for-the-site"


@contextlib.asynccontextmanager
async def site_charger(home: str, charger_id: str) -> AsyncIterator[ChargePoint]:
    """A gateway for the stack's chargers and an `ocpp` ChargePoint connected to it with Basic Auth."""
    gateway = await serve(GatewayConfig(port=0, credentials_dir=Path(home) / "chargers"))
    try:
        async with connect(
            f"ws://127.0.0.1:{gateway.port}/ocpp/{charger_id}",
            subprotocols=["ocpp1.6"],
            additional_headers={"Authorization": build_authorization_basic(charger_id, PASSWORD)},
        ) as websocket:
            charger = ChargePoint(charger_id, websocket, response_timeout=15)
            receiver = asyncio.create_task(charger.start())
            try:
                yield charger
            finally:
                receiver.cancel()
    finally:
        await gateway.close()


def test_ocpp_package_charge_point_boots_through_the_gateway(stack, new_charger):
    credentials = new_charger(site="SITE-GW", password=PASSWORD)

    async def run():
        async with site_charger(stack.home, credentials.charger_id) as charger:
            boot = await charger.call(
                call.BootNotification(
                    charge_point_model="Wallbox 7", charge_point_vendor="Vendo", firmware_version="7.1"
                )
            )
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing")
            )
            heartbeat = await charger.call(call.Heartbeat())
            online = await asyncio.to_thread(
                eventually, lambda: registry().get(credentials.charger_id).online
            )
            return boot, heartbeat, online

    boot, heartbeat, online = asyncio.run(run())
    assert boot.status == "Accepted" and boot.interval == 300
    assert heartbeat.current_time.endswith("Z")
    assert online
    charger = registry().get(credentials.charger_id)
    assert (charger.vendor, charger.model, charger.firmware_version) == ("Vendo", "Wallbox 7", "7.1")
    [connector] = registry().connectors(credentials.charger_id)
    assert (connector.connector_id, connector.status) == (1, "Preparing")


def test_ocpp_package_charge_point_runs_a_billed_session_through_the_gateway(stack, new_charger):
    import json
    from decimal import Decimal

    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
    from chargenet.domain.clock import utc_now
    from chargenet.domain.models import TagStatus

    credentials = new_charger(site="SITE-GW", password=PASSWORD)
    tariff = {
        "country_code": "SE",
        "party_id": "CGN",
        "id": "GW-1",
        "currency": "SEK",
        "last_updated": "2026-01-01T00:00:00Z",
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": "3.20", "vat": "25", "step_size": 1},
                    {"type": "FLAT", "price": "2.00", "vat": "25", "step_size": 1},
                ]
            }
        ],
    }
    DynamoTariffBook().store("GW-1", json.dumps(tariff), utc_now())
    DynamoTariffBook().assign("GW-1", credentials.charger_id)
    DynamoTagDirectory().put("GW-TAG", TagStatus.ACCEPTED, 1, None)

    async def run() -> int:
        async with site_charger(stack.home, credentials.charger_id) as charger:
            await charger.call(call.BootNotification(charge_point_model="W7", charge_point_vendor="Vendo"))
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1, id_tag="GW-TAG", meter_start=12_000, timestamp="2026-11-25T10:00:00Z"
                )
            )
            tx = started.transaction_id
            reading = {
                "timestamp": "2026-11-25T10:20:00Z",
                "sampledValue": [{"value": "15.5", "unit": "kWh"}],
            }
            await charger.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[reading]))
            await charger.call(
                call.StopTransaction(transaction_id=tx, meter_stop=19_000, timestamp="2026-11-25T10:40:00Z")
            )
            await charger.call(
                call.StatusNotification(
                    connector_id=1, error_code="NoError", status="Available", timestamp="2026-11-25T10:40:00Z"
                )
            )
            return tx

    tx = asyncio.run(run())
    record = eventually(lambda: DynamoCdrStore().get(str(tx)), timeout=30)
    # 7 kWh x 3.20 = 22.40 + 2.00 flat = 24.40 SEK excl. VAT; 28.00 + 2.50 = 30.50 incl. 25 % VAT.
    assert (record.total_excl_vat, record.total_incl_vat, record.currency) == (
        Decimal("24.40"),
        Decimal("30.50"),
        "SEK",
    )
