"""The stack's own MQTT connection to mosquitto (the "cloud side" of the broker).

It carries the rules engine's subscriptions, the IoT Data endpoint's publishes and fleet
provisioning, so it must outlive a broker restart (broker.restart_broker): awscrt reconnects,
and this connection subscribes again to what mosquitto forgot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from awscrt import mqtt
from awsiot import mqtt_connection_builder

from chargenet_local.broker import BACKEND_USER

CONNECT_TIMEOUT_S = 10
# The broker is local: try again every second or two, not after awscrt's default 5 to 60 s.
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 2

log = logging.getLogger("chargenet.local.mqtt")


class BackendConnection:
    def __init__(self, *, port: int, ca: Path, cert: Path, key: Path) -> None:
        # Connections made and subscribed so far: the first, then each resumption.
        self._connections = 0
        self._changed = threading.Condition()
        self._subscriptions = 0
        self._connection = mqtt_connection_builder.mtls_from_path(
            endpoint="127.0.0.1",
            port=port,
            cert_filepath=str(cert),
            pri_key_filepath=str(key),
            ca_filepath=str(ca),
            client_id=BACKEND_USER,
            clean_session=True,
            keep_alive_secs=30,
            reconnect_min_timeout_secs=RECONNECT_MIN_S,
            reconnect_max_timeout_secs=RECONNECT_MAX_S,
            on_connection_resumed=self._on_resumed,
        )

    def connect(self) -> None:
        self._connection.connect().result(CONNECT_TIMEOUT_S)
        self._count_connection()

    @property
    def connections(self) -> int:
        with self._changed:
            return self._connections

    def wait_reconnected(self, after: int, timeout_s: float) -> None:
        """Until the connection is back (and subscribed) since `connections` was `after`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._connections > after, timeout_s):
                raise TimeoutError(f"the stack's MQTT connection did not come back in {timeout_s}s")

    def subscribe(self, topic_filter: str, on_message: Callable[[str, bytes], None]) -> None:
        def deliver(topic: str, payload: bytes, **_: object) -> None:
            on_message(topic, payload)

        future, _ = self._connection.subscribe(topic_filter, mqtt.QoS.AT_LEAST_ONCE, deliver)
        future.result(CONNECT_TIMEOUT_S)
        self._subscriptions += 1

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        future, _ = self._connection.publish(topic, payload, mqtt.QoS(min(qos, 1)))
        future.result(CONNECT_TIMEOUT_S)

    def disconnect(self) -> None:
        self._connection.disconnect().result(CONNECT_TIMEOUT_S)

    def _count_connection(self) -> None:
        with self._changed:
            self._connections += 1
            self._changed.notify_all()

    # Called on awscrt's thread after each reconnection.
    def _on_resumed(
        self,
        connection: mqtt.Connection,
        return_code: mqtt.ConnectReturnCode,
        session_present: bool,
        **_: object,
    ) -> None:
        # awscrt 0.36's resubscribe with nothing to renew never completes its future.
        if session_present or not self._subscriptions:
            self._count_connection()
            return
        # A restarted broker (no persistence) forgot every subscription: without them the rules
        # engine and fleet provisioning would hear nothing. awscrt keeps them, with their callbacks.
        resubscribed, _ = connection.resubscribe_existing_topics()

        def done(future: Future[Any]) -> None:
            if future.exception() is not None:
                log.error("resubscribing after the broker came back failed: %s", future.exception())
                return
            log.info("MQTT connection back, subscriptions renewed")
            self._count_connection()

        resubscribed.add_done_callback(done)
