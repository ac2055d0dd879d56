"""A real OCPP client nobody here wrote, through the shim gateway, to the cloud side and back.

The `ocpp` package's v16 ChargePoint over `websockets` -> gateway (Basic Auth, profile 1;
client certificates, profile 3) -> the charger's own mTLS MQTT link -> mosquitto -> rules
engine -> ingest function -> DynamoDB, and the reply back through IoT Data -> mosquitto -> gateway -> WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect
from websockets.headers import build_authorization_basic

from chargenet_local.pki import ORGANIZATION, LocalCA
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.gateway import GatewayConfig, serve
from tests.integration.conftest import eventually, registry

PASSWORD = "s3cret-for-the-site"


@contextlib.asynccontextmanager
async def charge_point(
    config: GatewayConfig, charger_id: str, **connection: Any
) -> AsyncIterator[ChargePoint]:
    """A gateway run with `config` and an `ocpp` ChargePoint connected to it."""
    gateway = await serve(config)
    scheme = "ws" if config.security_profile == 1 else "wss"
    try:
        async with connect(
            f"{scheme}://127.0.0.1:{gateway.port}/ocpp/{charger_id}", subprotocols=["ocpp1.6"], **connection
        ) as websocket:
            charger = ChargePoint(charger_id, websocket, response_timeout=15)
            receiver = asyncio.create_task(charger.start())
            try:
                yield charger
            finally:
                receiver.cancel()
    finally:
        await gateway.close()


def site_charger(home: str, charger_id: str) -> contextlib.AbstractAsyncContextManager[ChargePoint]:
    """Profile 1: the stack's chargers, Basic Auth."""
    config = GatewayConfig(port=0, credentials_dir=Path(home) / "chargers")
    authorization = {"Authorization": build_authorization_basic(charger_id, PASSWORD)}
    return charge_point(config, charger_id, additional_headers=authorization)


def certified_charger(
    home: str, credentials: ChargerCredentials, tls_folder: Path
) -> contextlib.AbstractAsyncContextManager[ChargePoint]:
    """Profile 3: the charger proves who it is with its own certificate from the stack's CA."""
    ca = LocalCA(Path(home) / "ca")
    server_cert, server_key = ca.issue_with_key("localhost", server=True, folder=tls_folder)
    config = GatewayConfig(
        port=0,
        credentials_dir=Path(home) / "chargers",
        security_profile=3,
        tls_cert=server_cert,
        tls_key=server_key,
        client_ca=ca.cert_path,
        operator_org=ORGANIZATION,
    )
    tls = ssl.create_default_context(cafile=ca.cert_path)
    tls.load_cert_chain(credentials.cert_path, credentials.key_path)
    return charge_point(config, credentials.charger_id, ssl=tls)


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


def test_profile_3_a_charger_with_its_own_certificate_boots_through_the_gateway(stack, new_charger, tmp_path):
    credentials = new_charger(site="SITE-GW3")

    async def run():
        async with certified_charger(stack.home, credentials, tmp_path / "gateway-tls") as charger:
            return await charger.call(
                call.BootNotification(
                    charge_point_model="Wallbox 9", charge_point_vendor="Vendo", firmware_version="9.0.1"
                )
            )

    boot = asyncio.run(run())

    assert boot.status == "Accepted"
    charger = eventually(lambda: registry().get(credentials.charger_id))
    assert (charger.model, charger.firmware_version) == ("Wallbox 9", "9.0.1")
