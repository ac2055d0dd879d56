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


def test_the_versions_repeat_over_the_chargers_in_the_order_given():
    ids = [f"CP-{n}" for n in range(1, 8)]

    spoken = chaos._versions(ids, chaos.ChaosOptions().ocpp_versions)

    assert [str(spoken[c]) for c in ids] == [*(["ocpp1.6", "ocpp1.6", "ocpp2.0.1"] * 2), "ocpp1.6"]


def test_an_unknown_ocpp_version_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        chaos.main(["--ocpp-versions", "1.6,3.0"])

    assert exited.value.code == 2
    assert "--ocpp-versions: OCPP versions are 1.6, 2.0.1" in capsys.readouterr().err


def test_a_201_truth_is_the_session_the_backend_numbered_its_transaction_and_a_16_truth_its_own_number():
    from types import SimpleNamespace

    from chargenet_shim.ocpp_version import OcppVersion
    from tests.fakes import InMemorySessionStore

    store = InMemorySessionStore()
    number, _ = store.allocate_transaction("ocpp2.0.1|CP-2|tx-a")

    def truth(charger_id: str, transaction_id: int | str, version: str) -> SimpleNamespace:
        return SimpleNamespace(
            charger_id=charger_id,
            connector_id=1,
            transaction_id=transaction_id,
            energy_wh=1_000,
            ocpp_version=version,
        )

    delivered = chaos._delivered(
        [
            truth("CP-1", 7, "ocpp1.6"),
            truth("CP-2", "tx-a", OcppVersion.V201),
            truth("CP-2", "tx-b", OcppVersion.V201),
        ],
        store,
    )

    assert [(d.session_id, d.ocpp_version, d.charger_transaction_id) for d in delivered] == [
        ("7", "ocpp1.6", None),
        (str(number), "ocpp2.0.1", "tx-a"),
        (None, "ocpp2.0.1", "tx-b"),  # never heard of: the invariant names it
    ]
    assert store.transaction_of("ocpp2.0.1|CP-2|tx-b") is None, "looked up, not allocated"
