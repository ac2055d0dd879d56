"""The local stack the integration tests run against, shared by the fixtures and the tests.

A real mosquitto with mTLS (the repo's local IoT Core stand-in), and a backend
client that connects with the stack's own backend certificate, reads every
charger's ingest topic and answers CALLs on the charger's reply topic, the
way the cloud ingest Lambda does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from awscrt import mqtt
from awsiot import mqtt_connection_builder

from chargenet_local.broker import BACKEND_USER, Broker, PresenceChange
from chargenet_local.pki import LocalCA

INGEST_RULE = "chargenet_ocpp_ingest"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def new_charger_id() -> str:
    # The broker lives for the whole session and keeps persistent sessions per client id.
    return f"CP-{uuid.uuid4().hex[:10]}"


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not start listening on {port}")


class RunningBroker:
    def __init__(self, port: int, ca: LocalCA) -> None:
        self.port = port
        self.ca = ca
        self.pid: int | None = None
        self._presence: list[PresenceChange] = []
        self._changed = threading.Condition()

    def on_presence(self, change: PresenceChange) -> None:
        with self._changed:
            self._presence.append(change)
            self._changed.notify_all()

    def wait_for_presence(self, client_id: str, *, connected: bool, timeout: float = 5.0) -> PresenceChange:
        """mosquitto's connection log as the broker saw it (read by chargenet_local's log pump)."""

        def found() -> PresenceChange | None:
            return next(
                (c for c in self._presence if c.client_id == client_id and c.connected == connected), None
            )

        with self._changed:
            change = self._changed.wait_for(found, timeout)
        if change is None:
            raise AssertionError(
                f"mosquitto logged no {'connect' if connected else 'disconnect'} of {client_id}"
            )
        return change

    def reload_crl(self) -> None:
        """mosquitto re-reads its CRL on SIGHUP."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGHUP)


@contextlib.contextmanager
def mosquitto(ca: LocalCA, folder: Path, port: int) -> Iterator[RunningBroker]:
    cert, key = ca.issue_with_key("localhost", server=True, folder=folder / "tls")
    process = Broker(folder, port=port, ca=ca.cert_path, crl=ca.crl_path, cert=cert, key=key)
    handle = RunningBroker(port, ca)
    handle.pid = process.start(handle.on_presence)
    try:
        _wait_for_port(port)
        yield handle
    finally:
        process.stop()


class CloudBackend:
    """Answers charger CALLs like the ingest Lambda; records every frame per charger."""

    def __init__(self, connection: mqtt.Connection) -> None:
        self._connection = connection
        self._frames: dict[str, list[str]] = defaultdict(list)
        self._changed = threading.Condition()
        self.boot_replies: dict[str, list[dict[str, Any]]] = {}
        self.heartbeat_interval = 300

    def on_frame(self, topic: str, payload: bytes, **_: Any) -> None:
        charger_id = topic.split("/")[4]
        raw = payload.decode()
        with self._changed:
            self._frames[charger_id].append(raw)
            self._changed.notify_all()
        message = json.loads(raw)
        if message[0] == 2:
            # Runs on awscrt's event loop thread: waiting for the PUBACK here would deadlock it.
            self._publish(charger_id, json.dumps(self._answer(charger_id, message)))

    def _answer(self, charger_id: str, message: list[Any]) -> list[Any]:
        _, unique_id, action, _payload = message
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        if action == "BootNotification":
            queued = self.boot_replies.get(charger_id)
            reply = queued.pop(0) if queued else {"status": "Accepted", "interval": self.heartbeat_interval}
            return [3, unique_id, {"currentTime": now, **reply}]
        if action == "Heartbeat":
            return [3, unique_id, {"currentTime": now}]
        if action == "StatusNotification":
            return [3, unique_id, {}]
        return [4, unique_id, "NotImplemented", f"{action} is not handled by this backend", {}]

    def _publish(self, charger_id: str, frame: str) -> Future[Any]:
        published, _ = self._connection.publish(
            f"chargers/{charger_id}/out", frame.encode(), mqtt.QoS.AT_LEAST_ONCE
        )
        return published

    def send(self, charger_id: str, frame: str) -> None:
        """A backend-initiated frame, acknowledged by the broker before returning."""
        self._publish(charger_id, frame).result(5)

    def frames(self, charger_id: str) -> list[str]:
        with self._changed:
            return list(self._frames[charger_id])

    def wait_for(self, charger_id: str, match: Callable[[str], bool], timeout: float = 5.0) -> str:
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((f for f in self._frames[charger_id] if match(f)), None), timeout
            )
        if found is None:
            raise AssertionError(f"no matching frame from {charger_id}: {self.frames(charger_id)}")
        return found


@contextlib.contextmanager
def cloud_backend(broker: RunningBroker, folder: Path) -> Iterator[CloudBackend]:
    cert, key = broker.ca.issue_with_key(BACKEND_USER, server=False, folder=folder)
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=HOST,
        port=broker.port,
        cert_filepath=str(cert),
        pri_key_filepath=str(key),
        ca_filepath=str(broker.ca.cert_path),
        client_id=BACKEND_USER,
        clean_session=True,
        keep_alive_secs=30,
    )
    connection.connect().result(10)
    cloud = CloudBackend(connection)
    subscribed, _ = connection.subscribe(
        f"$aws/rules/{INGEST_RULE}/chargers/+/in", mqtt.QoS.AT_LEAST_ONCE, callback=cloud.on_frame
    )
    subscribed.result(10)
    try:
        yield cloud
    finally:
        connection.disconnect().result(10)
