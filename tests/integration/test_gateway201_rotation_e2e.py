"""A 2.0.1 station behind the gateway: the shim rotates the station's MQTT link certificate in 2.0.1's words.

The `ocpp` package's v201 ChargePoint connects with subprotocol ocpp2.0.1; the gateway's link
publishes to the 2.0.1 ingest rule, so its own SignCertificate (certificateType
ChargingStationCertificate), the backend's CertificateSigned and the CertificateInstalled
DataTransfer all go through the 2.0.1 handlers on the real local stack.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from ocpp.v201 import ChargePoint, call
from websockets.asyncio.client import connect
from websockets.headers import build_authorization_basic

from chargenet_shim.gateway import GatewayConfig, serve
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.link import ChargerLink
from chargenet_shim.rotation import rotate
from tests.integration.conftest import eventually, registry
from tests.integration.local_issuer import LocalIssuer
from tests.integration.test_rotation_e2e import certificate_statuses, renewed

PASSWORD = "a 2.0.1 station's site password"


def test_the_gateway_renews_a_201_stations_link_certificate_over_201_messages(stack, new_charger):
    credentials = new_charger(password=PASSWORD)
    charger_id = credentials.charger_id

    async def run() -> str:
        # A certificate a day from expiry, put in place as the operator would.
        link = ChargerLink(credentials)
        await link.connect()
        try:
            await rotate(link, FileKeyStore(credentials.cert_path.parent), LocalIssuer(stack, days=1))
        finally:
            await link.close()
        short_pem = credentials.cert_path.read_text().strip()
        config = GatewayConfig(
            port=0,
            credentials_dir=Path(stack.home) / "chargers",
            allow_plain_ws=True,
            renew_before_days=30,
            renew_check_s=0.5,
        )
        gateway = await serve(config)
        try:
            async with connect(
                f"ws://127.0.0.1:{gateway.port}/ocpp/{charger_id}",
                subprotocols=["ocpp2.0.1"],
                additional_headers={"Authorization": build_authorization_basic(charger_id, PASSWORD)},
            ) as websocket:
                station = ChargePoint(charger_id, websocket, response_timeout=20)
                receiver = asyncio.create_task(station.start())
                try:
                    await station.call(
                        call.BootNotification(
                            charging_station={"model": "W1", "vendor_name": "ACME"}, reason="PowerUp"
                        )
                    )
                    await asyncio.wait_for(renewed(credentials.cert_path, timedelta(days=300)), 40)
                    await asyncio.to_thread(
                        eventually, lambda: certificate_statuses(charger_id)[short_pem] == "INACTIVE"
                    )
                    # Answered over the link's new certificate.
                    beat = await station.call(call.Heartbeat())
                    assert beat.current_time
                finally:
                    receiver.cancel()
        finally:
            await gateway.close()
        return short_pem

    short_pem = asyncio.run(run())
    statuses = certificate_statuses(charger_id)
    assert statuses[short_pem] == "INACTIVE"
    assert statuses[credentials.cert_path.read_text().strip()] == "ACTIVE"
    assert list(statuses.values()).count("ACTIVE") == 1
    # The link the rotation ran on is the one the boot came over: the 2.0.1 rule's.
    assert registry().get(charger_id).ocpp_version == "ocpp2.0.1"
