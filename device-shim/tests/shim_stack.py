"""The local stack the integration tests run against, shared by the fixtures and the tests.

A real mosquitto with mTLS (the repo's local IoT Core stand-in), and a backend
client that connects with the stack's own backend certificate, reads every
charger's ingest topic and answers CALLs on the charger's reply topic, the
way the cloud ingest Lambda does. A LinkCutter sits between one charger and
the broker when a test needs to pull the charger's network cable.

Speed: awscrt does not set TCP_NODELAY, so every QoS 1 hop in which a client
sends a PUBACK and then its next packet stalls for the peer's delayed ACK
(40 ms): a CALL round trip took ~90 ms, which made accelerated sessions crawl.
The backend therefore reads and answers at QoS 0 (IoT Core's Basic Ingest
rule has no MQTT session either) and mosquitto runs with TCP_NODELAY; the
charger side keeps its QoS 1 subscription, and backend-initiated frames
(`send`) stay QoS 1. A round trip now takes about a millisecond.
"""

from __future__ import annotations

import contextlib
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
from fake_central import FakeCentralSystem

from chargenet_local.broker import BACKEND_USER, Broker, PresenceChange
from chargenet_local.pki import LocalCA

INGEST_RULE = "chargenet_ocpp_ingest"
# OCPP 2.0.1 frames go to a rule of their own (template.yaml Ocpp201IngestRule).
INGEST_RULE_201 = f"{INGEST_RULE}_ocpp201"
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
    def __init__(self, port: int, ca: LocalCA, log_path: Path) -> None:
        self.port = port
        self.ca = ca
        self.log_path = log_path
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

    def log_of(self, client_id: str) -> list[str]:
        """What mosquitto logged about `client_id` so far: connects, disconnects and why."""
        return [line for line in self.log_path.read_text().splitlines() if f" {client_id} " in line]

    def reload_crl(self) -> None:
        """mosquitto re-reads its CRL on SIGHUP."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGHUP)


class _NoDelayBroker(Broker):
    def write_config(self) -> Path:
        conf = super().write_config()
        conf.write_text("set_tcp_nodelay true\n" + conf.read_text())
        return conf


@contextlib.contextmanager
def mosquitto(ca: LocalCA, folder: Path, port: int) -> Iterator[RunningBroker]:
    cert, key = ca.issue_with_key("localhost", server=True, folder=folder / "tls")
    process = _NoDelayBroker(folder, port=port, ca=ca.cert_path, crl=ca.crl_path, cert=cert, key=key)
    handle = RunningBroker(port, ca, folder / "mosquitto.log")
    handle.pid = process.start(handle.on_presence)
    try:
        _wait_for_port(port)
        yield handle
    finally:
        process.stop()


class CloudBackend(FakeCentralSystem):
    """Answers charger CALLs like the ingest Lambda; records every frame per charger, repeats included."""

    def __init__(self, connection: mqtt.Connection) -> None:
        super().__init__()
        self._connection = connection
        self._frames: dict[str, list[str]] = defaultdict(list)
        # charger id -> the ingest rule each of its frames was published to, in arrival order.
        self._rules: dict[str, list[str]] = defaultdict(list)
        self._changed = threading.Condition(self.lock)

    def on_frame(self, topic: str, payload: bytes, **_: Any) -> None:
        _, _, rule, _, charger_id, _ = topic.split("/")
        raw = payload.decode()
        message = json.loads(raw)
        with self._changed:
            reply = self.answer(charger_id, message) if message[0] == 2 else None
            self._frames[charger_id].append(raw)
            self._rules[charger_id].append(rule)
            self._changed.notify_all()
        if reply is not None:
            # Runs on awscrt's event loop thread: waiting for the PUBACK here would deadlock it.
            self._publish(charger_id, json.dumps(reply), mqtt.QoS.AT_MOST_ONCE)

    def _publish(self, charger_id: str, frame: str, qos: mqtt.QoS) -> Future[Any]:
        published, _ = self._connection.publish(f"chargers/{charger_id}/out", frame.encode(), qos)
        return published

    def send(self, charger_id: str, frame: str) -> None:
        """A backend-initiated frame, acknowledged by the broker before returning."""
        self._publish(charger_id, frame, mqtt.QoS.AT_LEAST_ONCE).result(5)

    def frames(self, charger_id: str) -> list[str]:
        with self._changed:
            return list(self._frames[charger_id])

    def rules(self, charger_id: str) -> list[str]:
        """The ingest rule each frame from `charger_id` reached, as frames() lists them."""
        with self._changed:
            return list(self._rules[charger_id])

    def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise AssertionError("the backend did not get there in time")

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
    for rule in (INGEST_RULE, INGEST_RULE_201):
        subscribed, _ = connection.subscribe(
            f"$aws/rules/{rule}/chargers/+/in", mqtt.QoS.AT_MOST_ONCE, callback=cloud.on_frame
        )
        subscribed.result(10)
    try:
        yield cloud
    finally:
        connection.disconnect().result(10)


class LinkCutter:
    """A TCP relay between a charger and the broker: `cut()` drops the connection the way a lost
    mobile network does (no MQTT DISCONNECT, so the broker keeps the session) and refuses new
    ones until `restore()`."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for sock in self._sockets:
                # shutdown, not close: it also wakes the relay thread blocked in recv().
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()
                    continue
                upstream = socket.create_connection((HOST, self._target_port))
                self._sockets |= {client, upstream}
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with self._lock:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._sockets.discard(source)
        # Each direction closes the socket it reads from, so each is closed exactly once.
        source.close()


@contextlib.contextmanager
def link_cutter(target_port: int) -> Iterator[LinkCutter]:
    cutter = LinkCutter(target_port)
    try:
        yield cutter
    finally:
        cutter.close()
