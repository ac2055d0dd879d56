"""One charger's mutual-TLS MQTT connection, with an asyncio face.

The same builder call works against AWS IoT Core and the local mosquitto:
the certificate's CN is the thing name, which is also the client id, and the
policy/ACL confines the charger to its own ingest and reply topics. awscrt
runs its own I/O threads; every callback crosses back into the event loop
with call_soon_threadsafe.

A publish the broker refuses costs the connection (mosquitto and IoT Core drop a client that
sends a packet over their limit), and awscrt resends every unacknowledged publish first thing on
each reconnect: one refused publish would wedge the link and everything behind it for good. So
a payload over the frame limit is refused before awscrt sees it (frame_limit.py), and a publish
the broker still drops the connection for after a reconnect is given up (PublishRefused): the link
reconnects on a new connection without it and publishes the others again there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol, TypeVar

from awscrt import mqtt
from awsiot import mqtt_connection_builder

from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.frame_limit import MAX_FRAME_BYTES, check_frame_size
from chargenet_shim.ocpp_version import OcppVersion

LOG = logging.getLogger(__name__)
T = TypeVar("T")
# A message on a topic the link subscribed to, called in the event loop: (topic, payload).
OnMessage = Callable[[str, bytes], None]

KEEP_ALIVE_SECS = 30
RECONNECT_MIN_SECS = 1
RECONNECT_MAX_SECS = 60


class LinkError(RuntimeError):
    """The MQTT link could not be opened, or is not (or no longer) usable."""


class PublishRefused(LinkError):
    """The broker dropped the connection each time it was sent this publish: it will never take it."""


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


@dataclass(eq=False)
class _InFlight:
    """A publish awscrt holds until the broker acknowledges it."""

    topic: str
    payload: bytes
    # Settled in the event loop; the sender awaits it (cancelled when the sender stops waiting).
    outcome: asyncio.Future[None]
    # awscrt's future for the copy on the current connection.
    published: Future[object] | None = None
    # The link's resume count when it was handed over: resent on any later resume.
    resumes: int = 0

    def fail(self, error: BaseException) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(error)


class ChargerLink:
    """Frames go out to the charger's ingest topic and come back from its reply topic (QoS 1 both ways).

    `online` follows awscrt's interrupted/resumed callbacks. A publish while offline is still
    handed to awscrt (it holds it until it reconnects); callers that must not wait, like the
    offline queue, check `online` first.
    """

    def __init__(
        self,
        credentials: ChargerCredentials,
        *,
        ocpp_version: OcppVersion = OcppVersion.V16,
        operation_timeout: float = 10.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self.credentials = credentials
        # Which ingest rule gets the frames: the backend reads them in this version.
        self.ocpp_version = ocpp_version
        self.max_frame_bytes = max_frame_bytes
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
        self._in_flight: list[_InFlight] = []
        self._resumes = 0  # connections awscrt resumed by itself
        self._last_drop = ""  # why the connection was last interrupted
        # A new connection replacing one that holds a refused publish (_reconnect_afresh).
        self._renewal: asyncio.Task[None] | None = None

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
        self._adopt(await self._connect_new(timeout))
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
        try:
            connection = await self._connect_new(timeout)
        except LinkError:
            self.credentials = previous
            await self.reconnect(timeout)
            raise
        self._adopt(connection)
        LOG.info("%s: MQTT link up with the new certificate", self._where())

    async def send(self, frame: str) -> None:
        """Publish one frame to the ingest topic: FrameTooLarge (never published) over the frame limit,
        LinkError when it does not get out."""
        await self._publish(self.credentials.ingest_topic_for(self.ocpp_version), frame.encode())

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
        await self._publish(topic, payload)

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
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        for publish in self._in_flight:
            publish.fail(LinkError(f"{self._where()}: link closed before the broker acknowledged"))
        self._in_flight.clear()
        connection, self._connection = self._connection, None
        if connection is None or self._dropped:
            return
        try:
            await self._wait(connection.disconnect(), self._operation_timeout)
        except Exception as exc:
            LOG.warning("%s: unclean MQTT disconnect: %s", self._where(), _describe(exc))

    async def _publish(self, topic: str, payload: bytes) -> None:
        # Before awscrt sees it: the broker would drop the connection for it, again on every resend.
        check_frame_size(payload, self.max_frame_bytes)
        try:
            async with asyncio.timeout(self._operation_timeout):
                if self._renewal is not None and self._renewing:
                    await asyncio.wait({self._renewal})
                await self._hand_over(topic, payload).outcome
        except TimeoutError as exc:
            raise LinkError(f"{self._where()}: publish to {topic} failed: {self._unacknowledged()}") from exc
        except LinkError:
            raise
        except Exception as exc:
            raise LinkError(f"{self._where()}: publish to {topic} failed: {_describe(exc)}") from exc

    def _hand_over(self, topic: str, payload: bytes) -> _InFlight:
        publish = _InFlight(topic, payload, asyncio.get_running_loop().create_future())
        self._publish_on(self._require_connection(), publish)
        self._in_flight.append(publish)
        return publish

    def _publish_on(self, connection: mqtt.Connection, publish: _InFlight) -> None:
        published, _ = connection.publish(publish.topic, publish.payload, mqtt.QoS.AT_LEAST_ONCE)
        publish.published, publish.resumes = published, self._resumes
        published.add_done_callback(lambda done: self._in_loop(self._settle, publish, done))

    def _settle(self, publish: _InFlight, done: Future[object]) -> None:
        if done is not publish.published:
            return  # its copy on a connection since replaced: the copy on the new one settles it
        with contextlib.suppress(ValueError):
            self._in_flight.remove(publish)
        if publish.outcome.done() or done.cancelled():
            return  # the sender stopped waiting
        if (error := done.exception()) is not None:
            publish.fail(error)
        else:
            publish.outcome.set_result(None)

    def _unacknowledged(self) -> str:
        """Why a publish got no PUBACK in time, as far as the link knows."""
        waited = f"no PUBACK within {self._operation_timeout:g} s"
        if self.online:
            return f"{waited} from the connected broker"
        if self._dropped or self._renewing:
            return f"{waited}: the link is down (dropped on purpose, or reconnecting)"
        return f"{waited}: the connection is down ({self._last_drop or 'not up yet'}), awscrt reconnects"

    def _note_interrupted(self, error: Exception) -> None:
        self._set_online(False)
        self._last_drop = str(error)
        # awscrt resends the unacknowledged publishes first on a resumed connection, oldest first:
        # when that connection drops too, the oldest one resent is what the broker dropped it for
        # (the broker reads no further).
        resent = (publish for publish in self._in_flight if publish.resumes < self._resumes)
        refused = next(resent, None)
        if refused is not None and not self._renewing and not self._closed:
            self._renewal = asyncio.create_task(self._drop_refused(refused, error))

    def _note_resumed(self) -> None:
        self._resumes += 1

    async def _drop_refused(self, refused: _InFlight, error: Exception) -> None:
        self._in_flight.remove(refused)
        reason = (
            f"{self._where()}: the broker closed the connection ({error}) each time it was sent the "
            f"{len(refused.payload)}-byte publish to {refused.topic}: it refuses it (over its packet "
            "limit, or not allowed); dropped"
        )
        LOG.error("%s", reason)
        refused.fail(PublishRefused(reason))
        await self._reconnect_afresh()

    async def _reconnect_afresh(self) -> None:
        """A new connection for the client id: awscrt cannot forget one publish, only a whole connection."""
        self._dropped = True  # the old connection's resumed callback must not mark us online
        if (old := self._connection) is not None:
            try:
                await self._wait(old.disconnect(), self._operation_timeout)
            except Exception as exc:
                LOG.warning("%s: unclean MQTT disconnect: %s", self._where(), _describe(exc))
        delay = RECONNECT_MIN_SECS
        while True:
            try:
                connection = await self._connect_new(self._operation_timeout)
                break
            except LinkError as exc:
                LOG.warning("%s: reconnect failed, again in %d s: %s", self._where(), delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECS)
        self._adopt(connection)
        LOG.info("%s: MQTT link up again on a new connection, without the refused publish", self._where())

    async def _connect_new(self, timeout: float) -> mqtt.Connection:
        """A new connection with the current credentials, connected and subscribed."""
        connection = self._build()
        connected = connection.connect()
        try:
            await self._subscribe_once_up(connection, connected, timeout)
        except BaseException:
            # Also on cancellation: a CONNACK arriving after we gave up must not leave an
            # orphan connection holding (and, reconnecting, fighting over) the client id.
            _disconnect_once_up(connection, connected)
            raise
        return connection

    def _adopt(self, connection: mqtt.Connection) -> None:
        """Make `connection` the link's; what the previous one had not got acknowledged goes out again on it."""
        self._connection = connection
        self._dropped = False
        self._set_online(True)
        for publish in self._in_flight:
            self._publish_on(connection, publish)

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
            self._in_loop(on_message, topic, payload)

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
        waiting = asyncio.wrap_future(future)
        # An error awscrt reports after we stopped waiting is nobody's to handle; unretrieved,
        # asyncio would log "Future exception was never retrieved" when the future is collected.
        waiting.add_done_callback(_retrieve)
        async with asyncio.timeout(timeout):
            return await asyncio.shield(waiting)

    @property
    def _renewing(self) -> bool:
        return self._renewal is not None and not self._renewal.done()

    def _require_connection(self) -> mqtt.Connection:
        if self._connection is None:
            raise LinkError(f"{self.credentials.charger_id}: link is not connected")
        if self._renewing:
            raise LinkError(f"{self._where()}: reconnecting without a publish the broker refused")
        return self._connection

    def _set_online(self, online: bool) -> None:
        if (self._closed or self._dropped) and online:
            # A resumed callback that raced with close() or disconnect() must not revive the link.
            return
        (self._up if online else self._down).set()
        (self._down if online else self._up).clear()

    def _in_loop(self, callback: Callable[..., object], *args: object) -> None:
        """Run `callback(*args)` in the event loop, from any thread; nothing once the loop is gone."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    def _where(self) -> str:
        creds = self.credentials
        return f"{creds.charger_id}@{creds.mqtt_host}:{creds.mqtt_port}"

    # ------------------------------------------------------- awscrt threads
    def _on_message(self, topic: str, payload: bytes, **_: object) -> None:
        # OCPP-J frames are UTF-8 JSON; a bad byte from upstream must not kill awscrt's thread.
        self._in_loop(self._inbox.put_nowait, payload.decode(errors="replace"))

    def _on_interrupted(self, connection: mqtt.Connection, error: Exception, **_: object) -> None:
        LOG.warning("%s: MQTT link interrupted, awscrt reconnects: %s", self._where(), error)
        self._in_loop(self._note_interrupted, error)

    def _on_resumed(
        self,
        connection: mqtt.Connection,
        return_code: mqtt.ConnectReturnCode,
        session_present: bool,
        **_: object,
    ) -> None:
        LOG.info("%s: MQTT link resumed (session present: %s)", self._where(), session_present)
        self._in_loop(self._note_resumed)
        if session_present:
            self._in_loop(self._set_online, True)
            return
        # The broker forgot the subscription (e.g. it restarted without persistence). Online
        # only once it is back, or the replies to what the offline queue sends next are lost.
        resubscribed, _ = connection.resubscribe_existing_topics()
        resubscribed.add_done_callback(lambda _: self._in_loop(self._set_online, True))


def _disconnect_once_up(connection: mqtt.Connection, connected: Future[object]) -> None:
    def drop(future: Future[object]) -> None:
        if not future.cancelled() and future.exception() is None:
            connection.disconnect()

    connected.add_done_callback(drop)


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        # s2n holds back a failed TLS handshake for 10-30 s (blinding), so an
        # untrusted broker certificate is indistinguishable from silence here.
        return "timed out: broker unreachable or its certificate is not trusted by the CA file"
    return f"{type(exc).__name__}: {exc}"
