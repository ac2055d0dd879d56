"""Security negatives against the stack's mosquitto: the local twin of the IoT policy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import time
from pathlib import Path

import boto3
import pytest
from awscrt import mqtt
from awsiot import mqtt_connection_builder

from chargenet_local.pki import LocalCA
from chargenet_shim.link import ChargerLink, LinkError
from tests.integration.conftest import RawCharger, registry

BOOT = [2, "boot-x", "BootNotification", {"chargePointVendor": "Evil", "chargePointModel": "X"}]


def connect_raw(credentials, client_id: str | None = None, cert: Path | None = None, key: Path | None = None):
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=credentials.mqtt_host,
        port=credentials.mqtt_port,
        cert_filepath=str(cert or credentials.cert_path),
        pri_key_filepath=str(key or credentials.key_path),
        ca_filepath=str(credentials.ca_path),
        client_id=client_id or credentials.charger_id,
        clean_session=True,
    )
    connection.connect().result(10)
    return connection


def test_tls_without_a_client_certificate_is_refused(stack, new_charger):
    credentials = new_charger()
    context = ssl.create_default_context(cafile=str(credentials.ca_path))
    with (
        socket.create_connection((credentials.mqtt_host, credentials.mqtt_port), timeout=5) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)),
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        # MQTT 3.1.1 CONNECT for client "nocert"; the broker must never answer CONNACK.
        tls.sendall(b"\x10\x12\x00\x04MQTT\x04\x02\x00\x1e\x00\x06nocert")
        if tls.recv(4) == b"":
            raise ConnectionResetError("closed by broker")


def test_certificate_from_another_ca_is_refused(stack, new_charger, tmp_path):
    credentials = new_charger()
    rogue_ca = LocalCA(tmp_path / "rogue").ensure()
    cert, key = rogue_ca.issue_with_key(
        credentials.charger_id, server=False, folder=tmp_path / "rogue-client"
    )
    rogue = credentials.model_copy(update={"cert_path": cert, "key_path": key})
    with pytest.raises(LinkError):
        asyncio.run(ChargerLink(rogue).connect(timeout=8))


def test_revoked_certificate_cannot_reconnect(stack, new_charger):
    credentials = new_charger()
    connect_raw(credentials).disconnect().result(5)  # works before revocation
    LocalCA(Path(stack.home) / "ca").revoke(credentials.cert_path.read_text())
    os.kill(stack.broker_pid, signal.SIGHUP)  # mosquitto re-reads the CRL
    time.sleep(0.5)
    with pytest.raises(LinkError):
        asyncio.run(ChargerLink(credentials).connect(timeout=8))


def test_publish_to_another_chargers_topic_is_not_delivered(stack, new_charger):
    attacker, victim = new_charger(), new_charger()

    async def run():
        async with RawCharger(attacker) as charger:
            spoofed_topic = f"$aws/rules/{attacker.ingest_rule}/chargers/{victim.charger_id}/in"
            connection = charger.link._connection
            connection.publish(spoofed_topic, json.dumps(BOOT).encode(), mqtt.QoS.AT_LEAST_ONCE)[0].result(5)
            await charger.no_reply(wait=3)

    asyncio.run(run())
    assert registry().get(victim.charger_id).vendor is None


def test_subscribing_to_another_chargers_replies_receives_nothing(stack, new_charger):
    spy, victim = new_charger(), new_charger()
    spied: list[bytes] = []
    spy_connection = connect_raw(spy)
    spy_connection.subscribe(
        f"chargers/{victim.charger_id}/out",
        mqtt.QoS.AT_LEAST_ONCE,
        lambda topic, payload, **_: spied.append(payload),
    )[0].result(5)
    iot_data = boto3.client("iot-data", endpoint_url=stack.iot_data_url)

    async def run():
        async with RawCharger(victim) as charger:
            iot_data.publish(
                topic=f"chargers/{victim.charger_id}/out", qos=1, payload=b'[2,"r1","Reset",{"type":"Soft"}]'
            )
            return await charger.reply()

    assert asyncio.run(run()) == [2, "r1", "Reset", {"type": "Soft"}]  # the owner gets it
    time.sleep(1)
    spy_connection.disconnect().result(5)
    assert spied == []
