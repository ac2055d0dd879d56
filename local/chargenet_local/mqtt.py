"""The stack's own MQTT connection to mosquitto (the "cloud side" of the broker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from awscrt import mqtt
from awsiot import mqtt_connection_builder

from chargenet_local.broker import BACKEND_USER

CONNECT_TIMEOUT_S = 10


class BackendConnection:
    def __init__(self, *, port: int, ca: Path, cert: Path, key: Path) -> None:
        self._connection = mqtt_connection_builder.mtls_from_path(
            endpoint="127.0.0.1",
            port=port,
            cert_filepath=str(cert),
            pri_key_filepath=str(key),
            ca_filepath=str(ca),
            client_id=BACKEND_USER,
            clean_session=True,
            keep_alive_secs=30,
        )

    def connect(self) -> None:
        self._connection.connect().result(CONNECT_TIMEOUT_S)

    def subscribe(self, topic_filter: str, on_message: Callable[[str, bytes], None]) -> None:
        def deliver(topic: str, payload: bytes, **_: object) -> None:
            on_message(topic, payload)

        future, _ = self._connection.subscribe(topic_filter, mqtt.QoS.AT_LEAST_ONCE, deliver)
        future.result(CONNECT_TIMEOUT_S)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        future, _ = self._connection.publish(topic, payload, mqtt.QoS(min(qos, 1)))
        future.result(CONNECT_TIMEOUT_S)

    def disconnect(self) -> None:
        self._connection.disconnect().result(CONNECT_TIMEOUT_S)
