"""A real OCPP client nobody here wrote, through the shim gateway, to the cloud side and back.

The `ocpp` package's v16 ChargePoint over `websockets` -> gateway (Basic Auth, profile 1)
-> the charger's own mTLS MQTT link -> mosquitto -> rules engine -> ingest function
-> DynamoDB, and the reply back through IoT Data -> mosquitto -> gateway -> WebSocket.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect
from websockets.headers import build_authorization_basic

from chargenet_shim.gateway import GatewayConfig, serve
from tests.integration.conftest import eventually, registry

PASSWORD = "s3cret-for-the-site"


def test_ocpp_package_charge_point_boots_through_the_gateway(stack, new_charger):
    credentials = new_charger(site="SITE-GW", password=PASSWORD)

    async def run():
        gateway = await serve(GatewayConfig(port=0, credentials_dir=Path(stack.home) / "chargers"))
        try:
            async with connect(
                f"ws://127.0.0.1:{gateway.port}/ocpp/{credentials.charger_id}",
                subprotocols=["ocpp1.6"],
                additional_headers={
                    "Authorization": build_authorization_basic(credentials.charger_id, PASSWORD)
                },
            ) as websocket:
                charger = ChargePoint(credentials.charger_id, websocket, response_timeout=15)
                receiver = asyncio.create_task(charger.start())
                try:
                    boot = await charger.call(
                        call.BootNotification(
                            charge_point_model="Wallbox 7",
                            charge_point_vendor="Vendo",
                            firmware_version="7.1",
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
                finally:
                    receiver.cancel()
        finally:
            await gateway.close()

    boot, heartbeat, online = asyncio.run(run())
    assert boot.status == "Accepted" and boot.interval == 300
    assert heartbeat.current_time.endswith("Z")
    assert online
    charger = registry().get(credentials.charger_id)
    assert (charger.vendor, charger.model, charger.firmware_version) == ("Vendo", "Wallbox 7", "7.1")
    [connector] = registry().connectors(credentials.charger_id)
    assert (connector.connector_id, connector.status) == (1, "Preparing")
