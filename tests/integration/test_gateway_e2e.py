"""A real OCPP client nobody here wrote, through the shim gateway, to the cloud side and back.

The `ocpp` package's v16 ChargePoint over `websockets` -> gateway (Basic Auth, profile 1;
client certificates, profile 3) -> the charger's own mTLS MQTT link -> mosquitto -> rules
engine -> ingest function -> DynamoDB, and the reply back through IoT Data -> mosquitto -> gateway -> WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import ClientConnection, connect
from websockets.headers import build_authorization_basic

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet_local.pki import ORGANIZATION, LocalCA
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.frame_limit import MAX_FRAME_BYTES
from chargenet_shim.gateway import GatewayConfig, serve
from tests.integration.conftest import eventually, registry

PASSWORD = "s3cret-for-the-site"


@contextlib.asynccontextmanager
async def gateway_websocket(
    config: GatewayConfig, charger_id: str, **connection: Any
) -> AsyncIterator[ClientConnection]:
    """A gateway run with `config` and a charger's WebSocket connected to it."""
    gateway = await serve(config)
    scheme = "ws" if config.security_profile == 1 else "wss"
    try:
        async with connect(
            f"{scheme}://127.0.0.1:{gateway.port}/ocpp/{charger_id}", subprotocols=["ocpp1.6"], **connection
        ) as websocket:
            yield websocket
    finally:
        await gateway.close()


@contextlib.asynccontextmanager
async def charge_point(
    config: GatewayConfig, charger_id: str, **connection: Any
) -> AsyncIterator[ChargePoint]:
    """A gateway run with `config` and an `ocpp` ChargePoint connected to it."""
    async with gateway_websocket(config, charger_id, **connection) as websocket:
        charger = ChargePoint(charger_id, websocket, response_timeout=15)
        receiver = asyncio.create_task(charger.start())
        try:
            yield charger
        finally:
            receiver.cancel()


def site_websocket(home: str, charger_id: str) -> contextlib.AbstractAsyncContextManager[ClientConnection]:
    """Profile 1: the stack's chargers, Basic Auth; the raw WebSocket, frames as the test writes them."""
    config = GatewayConfig(port=0, credentials_dir=Path(home) / "chargers", allow_plain_ws=True)
    authorization = {"Authorization": build_authorization_basic(charger_id, PASSWORD)}
    return gateway_websocket(config, charger_id, additional_headers=authorization)


def site_charger(home: str, charger_id: str) -> contextlib.AbstractAsyncContextManager[ChargePoint]:
    """Profile 1: the stack's chargers, Basic Auth."""
    config = GatewayConfig(port=0, credentials_dir=Path(home) / "chargers", allow_plain_ws=True)
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


def data_transfer(size: int, message_id: str) -> str:
    """A DataTransfer CALL of exactly `size` bytes."""
    empty = f'[2,"{message_id}","DataTransfer",{{"vendorId":"ACME","data":""}}]'
    return empty.replace('"data":""', f'"data":"{"x" * (size - len(empty))}"')


async def answers(websocket: ClientConnection, *message_ids: str, timeout: float = 15) -> dict[str, list]:
    """The frames answering `message_ids`, by id, whatever their order; each with when it arrived."""
    found: dict[str, list] = {}
    async with asyncio.timeout(timeout):
        while not found.keys() >= set(message_ids):
            frame = json.loads(await websocket.recv())
            found[frame[1]] = [*frame, time.monotonic()]
    return {message_id: found[message_id] for message_id in message_ids}


def test_oversized_frames_get_a_callerror_and_never_interrupt_the_charger_s_link(stack, new_charger):
    """Issue 16: a 140 KB or 1 MB CALL made the broker drop the charger's MQTT link, again on every
    resend, and the frames behind it were lost; a 64 KiB + 1 one cost a round trip to the backend."""
    credentials = new_charger(site="SITE-GW", password=PASSWORD)
    broker_log = Path(stack.home) / "broker" / "mosquitto.log"

    async def run() -> tuple[dict[str, list], dict[int, float], list[str]]:
        async with site_websocket(stack.home, credentials.charger_id) as websocket:
            await websocket.send(
                '[2,"boot","BootNotification",{"chargePointModel":"W7","chargePointVendor":"Vendo"}]'
            )
            await answers(websocket, "boot")
            await websocket.send(data_transfer(MAX_FRAME_BYTES, "at-limit"))
            found = await answers(websocket, "at-limit")
            heartbeat_s = {}
            for size in (MAX_FRAME_BYTES + 1, 140_000, 1_000_000):
                await websocket.send(data_transfer(size, f"big-{size}"))
                sent = time.monotonic()
                await websocket.send(f'[2,"hb-{size}","Heartbeat",{{}}]')
                found |= await answers(websocket, f"big-{size}", f"hb-{size}")
                heartbeat_s[size] = found[f"hb-{size}"][-1] - sent
            # Read while the charger is still connected: its link's whole life so far.
            about_the_charger = [
                line for line in broker_log.read_text().splitlines() if credentials.charger_id in line
            ]
            return found, heartbeat_s, about_the_charger

    found, heartbeat_s, about_the_charger = asyncio.run(run())

    # At the limit: relayed, and the backend answers (a vendor it does not know).
    assert found["at-limit"][:3] == [3, "at-limit", {"status": "UnknownVendorId"}]
    for size, answered_s in heartbeat_s.items():
        assert found[f"big-{size}"][:5] == [
            4,
            f"big-{size}",
            "GenericError",
            f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}",
            {},
        ]
        assert found[f"hb-{size}"][0] == 3, found[f"hb-{size}"]
        assert answered_s < 1.0, f"the Heartbeat behind the {size}-byte frame took {answered_s:.2f} s"
    # One MQTT connection throughout: never dropped for an oversize packet, never reconnected.
    assert [line for line in about_the_charger if "oversize" in line or "disconnect" in line] == []
    assert sum("New client connected" in line for line in about_the_charger) == 1, about_the_charger
