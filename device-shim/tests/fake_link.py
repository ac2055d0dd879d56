"""An in-process stand-in for ChargerLink: frames go to a FakeCentralSystem, its replies come back via recv().

Tests take it offline and online, make publishes fail, lose or duplicate replies, send
the charger backend-initiated CALLs (`push`), and read every frame that "reached the
backend" in `sent`. Other topics (the IoT Jobs API): what the charger published is in
`published`, and `deliver` hands it a message on any topic it subscribed to.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fake_central import FakeCentralSystem

from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.link import LinkError, OnMessage


def credentials(charger_id: str = "CP-UNIT") -> ChargerCredentials:
    """Never used to connect: the FakeLink stands in for the broker."""
    return ChargerCredentials(
        charger_id=charger_id,
        mqtt_host="localhost",
        mqtt_port=8883,
        ingest_rule="chargenet_ocpp_ingest",
        ca_path=Path("ca.pem"),
        cert_path=Path("cert.pem"),
        key_path=Path("key.pem"),
    )


class FakeLink:
    def __init__(self, central: FakeCentralSystem | None = None, charger_id: str = "CP-UNIT") -> None:
        self.central = central or FakeCentralSystem()
        self.charger_id = charger_id
        self.sent: list[str] = []
        self.failing_sends = 0
        self.lost_replies = 0
        self.silent = False
        self.reply_copies = 1
        self.published: list[tuple[str, dict]] = []
        self.subscriptions: dict[str, OnMessage] = {}
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()

    @property
    def online(self) -> bool:
        return self._up.is_set()

    async def wait_online(self) -> None:
        await self._up.wait()

    async def wait_offline(self) -> None:
        await self._down.wait()

    def go_online(self) -> None:
        self._down.clear()
        self._up.set()

    def go_offline(self) -> None:
        self._up.clear()
        self._down.set()

    async def connect(self, timeout: float = 10.0) -> None:
        self.go_online()

    async def disconnect(self) -> None:
        self.go_offline()

    async def reconnect(self, timeout: float = 10.0) -> None:
        self.go_online()

    async def send(self, frame: str) -> None:
        if not self.online:
            raise LinkError("fake link is offline")
        if self.failing_sends:
            self.failing_sends -= 1
            raise LinkError("publish failed on purpose")
        self.sent.append(frame)
        message = json.loads(frame)
        if message[0] != 2 or self.silent:
            return
        reply = json.dumps(self.central.answer(self.charger_id, message))
        if self.lost_replies:
            self.lost_replies -= 1
            return
        for _ in range(self.reply_copies):
            self._inbox.put_nowait(reply)

    async def recv(self) -> str:
        frame = await self._inbox.get()
        if frame is None:
            self._inbox.put_nowait(None)
            raise LinkError("fake link closed")
        return frame

    async def close(self) -> None:
        self.go_offline()
        self._inbox.put_nowait(None)

    async def subscribe(self, topic_filter: str, on_message: OnMessage) -> None:
        self.subscriptions[topic_filter] = on_message

    async def publish(self, topic: str, payload: bytes) -> None:
        if not self.online:
            raise LinkError("fake link is offline")
        self.published.append((topic, json.loads(payload)))

    def deliver(self, topic: str, payload: dict) -> bool:
        """A message from the broker on `topic`; whether a subscription took it."""
        taken = [on for topic_filter, on in self.subscriptions.items() if _matches(topic_filter, topic)]
        for on_message in taken:
            on_message(topic, json.dumps(payload).encode())
        return bool(taken)

    def push(self, message: list) -> None:
        """A frame from the backend, such as a backend-initiated CALL."""
        self._inbox.put_nowait(json.dumps(message))

    def answer_to(self, unique_id: str) -> list | None:
        """The charger's CALLRESULT or CALLERROR to the backend's CALL `unique_id`, once sent."""
        return next((m for m in map(json.loads, self.sent) if m[0] in (3, 4) and m[1] == unique_id), None)

    def calls(self, action: str | None = None) -> list[list]:
        """Every CALL that reached the backend, repeats included."""
        return [m for m in map(json.loads, self.sent) if m[0] == 2 and action in (None, m[2])]


def _matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcards: `+` one level, `#` the rest."""
    levels = topic.split("/")
    for index, part in enumerate(topic_filter.split("/")):
        if part == "#":
            return True
        if index >= len(levels) or part not in ("+", levels[index]):
            return False
    return len(topic_filter.split("/")) == len(levels)
