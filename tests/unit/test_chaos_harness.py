"""The chaos run's harness (bench.chaos): an abort names the sessions still open."""

import asyncio

import pytest

from bench import chaos


def test_work_done_in_time_gives_its_result():
    async def quick() -> str:
        await asyncio.sleep(0)
        return "outcomes"

    assert asyncio.run(chaos._within(quick(), 1.0, lambda: ["never asked"])) == "outcomes"


def test_an_overdue_fleet_is_stopped_and_its_open_sessions_named_as_they_were_at_the_bound():
    open_sessions = ["CP-1 connector 2: sending StopTransaction, 2400 s after its start, offline, 3 queued"]
    stopped = []

    async def overdue() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            open_sessions.clear()  # the sessions end once cancelled: the report must come before
            stopped.append(True)

    with pytest.raises(chaos.ChaosAborted) as aborted:
        asyncio.run(chaos._within(overdue(), 0.05, lambda: list(open_sessions)))

    assert stopped == [True]
    assert str(aborted.value) == (
        "the fleet's sessions did not all end within 0.05 s; 1 open:\n"
        "  CP-1 connector 2: sending StopTransaction, 2400 s after its start, offline, 3 queued"
    )


def test_open_sessions_are_listed_per_charger_and_connector():
    class Visit:
        def __init__(self, text: str) -> None:
            self.text = text

        def describe(self) -> str:
            return self.text

    class Charger:
        def __init__(self, charger_id: str, *visits: str) -> None:
            self.id = charger_id
            self.sessions = {n: Visit(text) for n, text in enumerate(visits, start=1)}

    frames = {"chargers": [Charger("CP-1", "connector 1: a"), Charger("CP-2"), Charger("CP-3", "c1", "c2")]}

    assert chaos._open_sessions(frames) == ["CP-1 connector 1: a", "CP-3 c1", "CP-3 c2"]
    assert chaos._open_sessions({}) == []
