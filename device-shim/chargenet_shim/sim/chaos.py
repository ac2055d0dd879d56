"""At-least-once delivery on purpose: duplicated and late frames, to test how the backend copes.

MQTT QoS 1 and OCPP retries both deliver a message more than once, and a retransmission
can arrive after newer messages. ChaosLink does both, reproducibly (seeded):

* duplicate: the frame is published twice in a row, byte for byte (same message id);
* reorder: a copy of the frame is held back and published after the next `reorder_after`
  frames, like a late retransmission.

The original always goes out at once: ocpp's ChargePoint sends one CALL at a time and waits
for its reply, so holding a CALL back would only stall the charger until its timeout. What
arrives out of order is therefore a repeat, which is also how it happens in the field. A
StartTransaction is never held back: its late copy would reach the backend after the
messages that carry the transaction id from its reply. Held copies go out at the latest
when the link closes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import random
from dataclasses import dataclass

from chargenet_shim.link import Link, LinkError

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChaosConfig:
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_after: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability: between 0 and 1")
        if self.reorder_after < 1:
            raise ValueError("reorder_after must be at least 1")

    def for_charger(self, index: int) -> ChaosConfig:
        """Each charger of a fleet its own reproducible sequence."""
        return dataclasses.replace(self, seed=self.seed + index)


@dataclass
class _Held:
    frame: str
    frames_to_wait: int


@dataclass
class ChaosStats:
    duplicated: int = 0
    delayed: int = 0


class ChaosLink:
    def __init__(self, inner: Link, config: ChaosConfig) -> None:
        self._inner = inner
        self._config = config
        self._rng = random.Random(config.seed)
        self._held: list[_Held] = []
        self.stats = ChaosStats()

    @property
    def online(self) -> bool:
        return self._inner.online

    async def wait_online(self) -> None:
        await self._inner.wait_online()

    async def wait_offline(self) -> None:
        await self._inner.wait_offline()

    async def connect(self, timeout: float = 10.0) -> None:
        await self._inner.connect(timeout)

    async def disconnect(self) -> None:
        await self._inner.disconnect()

    async def reconnect(self, timeout: float = 10.0) -> None:
        await self._inner.reconnect(timeout)

    async def recv(self) -> str:
        return await self._inner.recv()

    async def send(self, frame: str) -> None:
        # Both draws every time, so the sequence of decisions depends only on the seed.
        duplicate = self._rng.random() < self._config.duplicate
        delay = self._rng.random() < self._config.reorder and not _is_start_transaction(frame)
        await self._inner.send(frame)
        if duplicate:
            # Best effort: the original is out, a lost copy must not fail the send.
            with contextlib.suppress(LinkError):
                await self._inner.send(frame)
                self.stats.duplicated += 1
        await self._release_due()
        if delay:
            self._held.append(_Held(frame, self._config.reorder_after))
            self.stats.delayed += 1

    async def close(self) -> None:
        try:
            await self._release(list(self._held))
            if self._held:
                LOG.warning("%d held frames lost: the link is down", len(self._held))
        finally:
            await self._inner.close()

    async def _release_due(self) -> None:
        for held in self._held:
            held.frames_to_wait -= 1
        await self._release([held for held in self._held if held.frames_to_wait <= 0])

    async def _release(self, due: list[_Held]) -> None:
        for held in due:
            # While offline a held copy waits for the next frame that goes out.
            if not self._inner.online:
                return
            try:
                await self._inner.send(held.frame)
            except LinkError:
                return
            self._held.remove(held)


def _is_start_transaction(frame: str) -> bool:
    try:
        message = json.loads(frame)
    except json.JSONDecodeError:
        return False
    return isinstance(message, list) and message[:1] == [2] and message[2:3] == ["StartTransaction"]
