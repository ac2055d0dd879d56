"""A 2.0.1 station behind the gateway: the shim rotates the station's MQTT link certificate in 2.0.1's words.

The `ocpp` package's v201 ChargePoint connects with subprotocol ocpp2.0.1; the gateway's link
publishes to the 2.0.1 ingest rule, so its own SignCertificate (certificateType
ChargingStationCertificate), the backend's CertificateSigned and the CertificateInstalled
DataTransfer all go through the 2.0.1 handlers on the real local stack.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ocpp.v201 import call

from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.link import ChargerLink
from chargenet_shim.rotation import rotate
from tests.integration.conftest import eventually, registry
from tests.integration.local_issuer import LocalIssuer
from tests.integration.test_ocpp201_gateway_e2e import PASSWORD, boot, station
from tests.integration.test_rotation_e2e import certificate_statuses, renewed


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
        async with station(stack.home, charger_id, renew_before_days=30, renew_check_s=0.5) as charger:
            await boot(charger)
            await asyncio.wait_for(renewed(credentials.cert_path, timedelta(days=300)), 40)
            await asyncio.to_thread(
                eventually, lambda: certificate_statuses(charger_id)[short_pem] == "INACTIVE"
            )
            # Answered over the link's new certificate.
            beat = await charger.call(call.Heartbeat())
            assert beat.current_time
        return short_pem

    short_pem = asyncio.run(run())
    statuses = certificate_statuses(charger_id)
    assert statuses[short_pem] == "INACTIVE"
    assert statuses[credentials.cert_path.read_text().strip()] == "ACTIVE"
    assert list(statuses.values()).count("ACTIVE") == 1
    # The link the rotation ran on is the one the boot came over: the 2.0.1 rule's.
    assert registry().get(charger_id).ocpp_version == "ocpp2.0.1"
