"""One charger's mutual-TLS MQTT connection, with an asyncio face.

The same builder call works against AWS IoT Core and the local mosquitto:
the certificate's CN is the thing name, which is also the client id, and the
policy/ACL confines the charger to its own ingest and reply topics. awscrt
runs its own I/O threads; every callback crosses back into the event loop
with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol, TypeVar

from awscrt import mqtt
from awsiot import mqtt_connection_builder

from chargenet_shim.credentials import ChargerCredentials

LOG = logging.getLogger(__name__)
T = TypeVar("T")
# A message on a topic the link subscribed to, called in the event loop: (topic, payload).
OnMessage = Callable[[str, bytes], None]

KEEP_ALIVE_SECS = 30
RECONNECT_MIN_SECS = 1
RECONNECT_MAX_SECS = 60


class LinkError(RuntimeError):
    """The MQTT link could not be opened, or is not (or no longer) usable."""


class LinkState(Protocol):
    """Whether frames can reach the broker now; what the offline queue watches."""

    @property
    def online(self) -> bool: ...

    async def wait_online(self) -> None: ...

    async def wait_offline(self) -> None: ...


class Link(LinkState, Protocol):
    """What ocpp's ChargePoint needs (send/recv) plus the lifecycle the simulator drives."""

    async def connect(self, timeout: float = 10.0) -> None: ...

    async def disconnect(self) -> None: ...

    async def reconnect(self, timeout: float = 10.0) -> None: ...

    async def send(self, frame: str) -> None: ...

    async def recv(self) -> str: ...

    async def close(self) -> None: ...


class ChargerLink:
    """Frames go out to the charger's ingest topic and come back from its reply topic (QoS 1 both ways).

    `online` follows awscrt's interrupted/resumed callbacks. A publish while offline is still
    handed to awscrt (it holds it until it reconnects); callers that must not wait, like the
    offline queue, check `online` first.
    """

    def __init__(self, credentials: ChargerCredentials, *, operation_timeout: float = 10.0) -> None:
        self.credentials = credentials
        self._operation_timeout = operation_timeout
        # None is the end-of-stream marker close() leaves for a pending recv().
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: mqtt.Connection | None = None
        self._closed = False
        # Dropped on purpose (disconnect()) until reconnect(): awscrt does not reconnect by itself.
        self._dropped = False
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        # Extra subscriptions (the IoT Jobs API): made again on every new connection.
        self._subscriptions: dict[str, OnMessage] = {}

    @property
    def online(self) -> bool:
        return self._up.is_set()

    async def wait_online(self) -> None:
        await self._up.wait()

    async def wait_offline(self) -> None:
        await self._down.wait()

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raises LinkError when the broker refuses or cannot be reached."""
        if self._loop is not None or self._closed:
            raise LinkError(f"{self.credentials.charger_id}: a link connects once")
        self._loop = asyncio.get_running_loop()
        connection = self._build()
        connected = connection.connect()
        try:
            await self._subscribe_once_up(connection, connected, timeout)
        except BaseException:
            # Also on cancellation: a CONNACK arriving after we gave up must not leave an
            # orphan connection holding (and, reconnecting, fighting over) the client id.
            _disconnect_once_up(connection, connected)
            raise
        self._connection = connection
        self._set_online(True)
        LOG.info("%s: MQTT link up", self._where())

    async def disconnect(self) -> None:
        """Drop the connection on purpose, as when the site's network fails, until reconnect().

        The broker keeps the charger's session (clean_session=False): the subscription and the
        QoS 1 frames for the charger wait there, as after a real outage.
        """
        connection = self._require_connection()
        if self._dropped:
            return
        self._dropped = True
        self._set_online(False)
        try:
            await self._wait(connection.disconnect(), self._operation_timeout)
        except Exception as exc:
            raise LinkError(f"{self._where()}: disconnect failed: {_describe(exc)}") from exc
        LOG.info("%s: MQTT link dropped on purpose", self._where())

    async def reconnect(self, timeout: float = 10.0) -> None:
        """Connect again after disconnect(); resubscribes when the broker has forgotten the session."""
        connection = self._require_connection()
        if not self._dropped:
            return
        try:
            connected = await self._wait(connection.connect(), timeout)
            if not connected["session_present"]:
                resubscribed, _ = connection.resubscribe_existing_topics()
                await self._wait(resubscribed, timeout)
        except Exception as exc:
            raise LinkError(f"{self._where()}: reconnect failed: {_describe(exc)}") from exc
        self._dropped = False
        self._set_online(True)
        LOG.info("%s: MQTT link back", self._where())

    async def switch_credentials(self, credentials: ChargerCredentials, timeout: float = 10.0) -> None:
        """Reconnect with another certificate (rotation); if it is refused, the old one is back.

        The old connection goes first: two connections with one client id would evict each
        other. Its certificate is still active (the cloud deactivates it only once the new one
        has connected), so falling back to it always works while the broker does.
        """
        old = self._require_connection()
        if self._dropped:
            raise LinkError(f"{self._where()}: link is down, cannot switch certificates now")
        self._dropped = True  # the old connection's resumed callback must not mark us online
        self._set_online(False)
        await self._wait(old.disconnect(), self._operation_timeout)
        previous, self.credentials = self.credentials, credentials
        connection = self._build()
        connected = connection.connect()
        try:
            await self._subscribe_once_up(connection, connected, timeout)
        except LinkError:
            _disconnect_once_up(connection, connected)
            self.credentials = previous
            await self.reconnect(timeout)
            raise
        except BaseException:
            _disconnect_once_up(connection, connected)
            raise
        self._connection = connection
        self._dropped = False
        self._set_online(True)
        LOG.info("%s: MQTT link up with the new certificate", self._where())

    async def send(self, frame: str) -> None:
        connection = self._require_connection()
        published, _ = connection.publish(
            self.credentials.ingest_topic, frame.encode(), mqtt.QoS.AT_LEAST_ONCE
        )
        try:
            await self._wait(published, self._operation_timeout)
        except Exception as exc:
            raise LinkError(f"{self._where()}: publish failed: {_describe(exc)}") from exc

    async def subscribe(self, topic_filter: str, on_message: OnMessage) -> None:
        """Also receive `topic_filter` (QoS 1), now and after every reconnect, certificate switch included.

        awscrt resubscribes a connection's own topics when the broker forgot the session; a new
        connection (switch_credentials) subscribes to every remembered filter again.
        """
        self._subscriptions[topic_filter] = on_message
        connection = self._require_connection()
        await self._subscribe(connection, topic_filter, on_message, self._operation_timeout)

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish to any topic the charger may (QoS 1); raises LinkError when it does not get out."""
        connection = self._require_connection()
        published, _ = connection.publish(topic, payload, mqtt.QoS.AT_LEAST_ONCE)
        try:
            await self._wait(published, self._operation_timeout)
        except Exception as exc:
            raise LinkError(f"{self._where()}: publish to {topic} failed: {_describe(exc)}") from exc

    async def recv(self) -> str:
        frame = await self._inbox.get()
        if frame is None:
            # Put the marker back so every later recv() fails too instead of hanging.
            self._inbox.put_nowait(None)
            raise LinkError(f"{self.credentials.charger_id}: link closed")
        return frame

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._set_online(False)
        self._inbox.put_nowait(None)
        connection, self._connection = self._connection, None
        if connection is None or self._dropped:
            return
        try:
            await self._wait(connection.disconnect(), self._operation_timeout)
        except Exception as exc:
            LOG.warning("%s: unclean MQTT disconnect: %s", self._where(), _describe(exc))

    async def _subscribe_once_up(
        self, connection: mqtt.Connection, connected: Future[object], timeout: float
    ) -> None:
        try:
            await self._wait(connected, timeout)
            subscribed, _ = connection.subscribe(
                self.credentials.reply_topic, mqtt.QoS.AT_LEAST_ONCE, callback=self._on_message
            )
            await self._wait(subscribed, timeout)
        except Exception as exc:
            raise LinkError(f"{self._where()}: {_describe(exc)}") from exc
        for topic_filter, on_message in self._subscriptions.items():
            await self._subscribe(connection, topic_filter, on_message, timeout)
        if self._closed:
            raise LinkError(f"{self.credentials.charger_id}: link closed while connecting")

    async def _subscribe(
        self, connection: mqtt.Connection, topic_filter: str, on_message: OnMessage, timeout: float
    ) -> None:
        def deliver(topic: str, payload: bytes, **_: object) -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(on_message, topic, payload)

        subscribed, _ = connection.subscribe(topic_filter, mqtt.QoS.AT_LEAST_ONCE, callback=deliver)
        try:
            # A filter the policy refuses (SUBACK 0x80) fails here too: awscrt's SubscribeError.
            await self._wait(subscribed, timeout)
        except Exception as exc:
            raise LinkError(f"{self._where()}: subscribe to {topic_filter} failed: {_describe(exc)}") from exc

    def _build(self) -> mqtt.Connection:
        creds = self.credentials
        return mqtt_connection_builder.mtls_from_path(
            endpoint=creds.mqtt_host,
            port=creds.mqtt_port,
            cert_filepath=str(creds.cert_path),
            pri_key_filepath=str(creds.key_path),
            ca_filepath=str(creds.ca_path),
            client_id=creds.charger_id,
            clean_session=False,
            keep_alive_secs=KEEP_ALIVE_SECS,
            reconnect_min_timeout_secs=RECONNECT_MIN_SECS,
            reconnect_max_timeout_secs=RECONNECT_MAX_SECS,
            on_connection_interrupted=self._on_interrupted,
            on_connection_resumed=self._on_resumed,
        )

    async def _wait(self, future: Future[T], timeout: float) -> T:
        # shield: awscrt completes its futures from its own threads and raises InvalidStateError
        # there if one was cancelled. asyncio.timeout rather than wait_for, which on 3.11 can
        # swallow a cancellation that races with the result and leave the caller running.
        async with asyncio.timeout(timeout):
            return await asyncio.shield(asyncio.wrap_future(future))

    def _require_connection(self) -> mqtt.Connection:
        if self._connection is None:
            raise LinkError(f"{self.credentials.charger_id}: link is not connected")
        return self._connection

    def _set_online(self, online: bool) -> None:
        if (self._closed or self._dropped) and online:
            # A resumed callback that raced with close() or disconnect() must not revive the link.
            return
        (self._up if online else self._down).set()
        (self._down if online else self._up).clear()

    def _set_online_threadsafe(self, online: bool) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._set_online, online)

    def _where(self) -> str:
        creds = self.credentials
        return f"{creds.charger_id}@{creds.mqtt_host}:{creds.mqtt_port}"

    # ------------------------------------------------------- awscrt threads
    def _on_message(self, topic: str, payload: bytes, **_: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # OCPP-J frames are UTF-8 JSON; a bad byte from upstream must not kill awscrt's thread.
            loop.call_soon_threadsafe(self._inbox.put_nowait, payload.decode(errors="replace"))

    def _on_interrupted(self, connection: mqtt.Connection, error: Exception, **_: object) -> None:
        LOG.warning("%s: MQTT link interrupted, awscrt reconnects: %s", self._where(), error)
        self._set_online_threadsafe(False)

    def _on_resumed(
        self,
        connection: mqtt.Connection,
        return_code: mqtt.ConnectReturnCode,
        session_present: bool,
        **_: object,
    ) -> None:
        LOG.info("%s: MQTT link resumed (session present: %s)", self._where(), session_present)
        if session_present:
            self._set_online_threadsafe(True)
            return
        # The broker forgot the subscription (e.g. it restarted without persistence). Online
        # only once it is back, or the replies to what the offline queue sends next are lost.
        resubscribed, _ = connection.resubscribe_existing_topics()
        resubscribed.add_done_callback(lambda _: self._set_online_threadsafe(True))


def _disconnect_once_up(connection: mqtt.Connection, connected: Future[object]) -> None:
    def drop(future: Future[object]) -> None:
        if not future.cancelled() and future.exception() is None:
            connection.disconnect()

    connected.add_done_callback(drop)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        # s2n holds back a failed TLS handshake for 10-30 s (blinding), so an
        # untrusted broker certificate is indistinguishable from silence here.
        return "timed out: broker unreachable or its certificate is not trusted by the CA file"
    return f"{type(exc).__name__}: {exc}"
