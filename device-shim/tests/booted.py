"""A simulated charger booted against a FakeLink, and the waits its unit tests share."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

from fake_link import FakeLink, credentials

from chargenet_shim.sim.simulator import SimulatedCharger

_ids = itertools.count(1)


@contextlib.asynccontextmanager
async def booted(
    charger_class: type[Any] = SimulatedCharger, **options: Any
) -> AsyncIterator[tuple[Any, FakeLink]]:
    """A charger of `charger_class` (SimulatedCharger201 for 2.0.1) booted on a FakeLink."""
    link = FakeLink()
    charger = charger_class(credentials(), link=link, **options)
    await charger.start()
    try:
        await charger.run_boot()
        yield charger, link
    finally:
        await charger.stop()


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.002)
    return result


async def command(link: FakeLink, action: str, payload: dict) -> list:
    """A CALL from the backend; the charger's answer frame."""
    unique_id = f"backend-{next(_ids)}"
    link.push([2, unique_id, action, payload])
    return await until(lambda: link.answer_to(unique_id))
