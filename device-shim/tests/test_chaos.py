import asyncio
import json
from collections import Counter

import pytest
from fake_link import FakeLink

from chargenet_shim.sim.chaos import ChaosConfig, ChaosLink

pytestmark = pytest.mark.timeout(10)


def _frames(count: int) -> list[str]:
    actions = ["StartTransaction" if i % 10 == 0 else "MeterValues" for i in range(count)]
    return [json.dumps([2, f"m-{i}", action, {"n": i}]) for i, action in enumerate(actions)]


def _recorder() -> FakeLink:
    link = FakeLink()
    link.silent = True
    return link


def _through_chaos(frames: list[str], config: ChaosConfig) -> tuple[list[str], ChaosLink]:
    link = _recorder()

    async def scenario() -> ChaosLink:
        chaos = ChaosLink(link, config)
        await chaos.connect()
        for frame in frames:
            await chaos.send(frame)
        await chaos.close()
        return chaos

    chaos = asyncio.run(scenario())
    return link.sent, chaos


def test_every_frame_arrives_at_least_once_and_repeats_are_byte_identical():
    frames = _frames(200)

    delivered, chaos = _through_chaos(
        frames, ChaosConfig(duplicate=0.2, reorder=0.2, reorder_after=3, seed=42)
    )

    counts = Counter(delivered)
    assert set(counts) == set(frames)
    assert len(delivered) == len(frames) + chaos.stats.duplicated + chaos.stats.delayed
    assert chaos.stats.duplicated > 20 and chaos.stats.delayed > 20
    assert max(counts.values()) >= 2
    # The originals keep their order: only repeats arrive late.
    first_seen = sorted(set(delivered), key=delivered.index)
    assert first_seen == frames


def test_a_late_copy_arrives_after_the_next_reorder_after_frames():
    frames = _frames(200)

    delivered, chaos = _through_chaos(frames, ChaosConfig(reorder=0.3, reorder_after=3, seed=5))

    assert chaos.stats.delayed > 30
    for frame in frames:
        positions = [i for i, f in enumerate(delivered) if f == frame]
        if len(positions) == 1:
            continue
        first, late = positions
        overtaking = {f for f in delivered[first + 1 : late] if delivered.index(f) > first}
        # Fewer only for the last frames, whose copies went out when the link closed.
        assert len(overtaking) == 3 or frame in frames[-3:]


def test_a_start_transaction_is_never_overtaken_by_what_follows_it():
    frames = _frames(200)

    delivered, _ = _through_chaos(frames, ChaosConfig(duplicate=0.5, reorder=0.5, seed=3))

    for start in (f for f in frames if '"StartTransaction"' in f):
        positions = [i for i, f in enumerate(delivered) if f == start]
        # Its copies (a duplicate at most) are adjacent: nothing gets in between.
        assert positions == list(range(positions[0], positions[0] + len(positions)))
        assert len(positions) <= 2


def test_the_same_seed_gives_the_same_chaos():
    frames = _frames(100)
    config = ChaosConfig(duplicate=0.3, reorder=0.3, seed=11)

    assert _through_chaos(frames, config)[0] == _through_chaos(frames, config)[0]
    assert _through_chaos(frames, config)[0] != _through_chaos(frames, ChaosConfig(0.3, 0.3, seed=12))[0]


def test_held_frames_go_out_when_the_link_closes():
    link = _recorder()
    frames = _frames(3)[1:]

    async def scenario() -> list[str]:
        chaos = ChaosLink(link, ChaosConfig(reorder=1.0, reorder_after=5))
        await chaos.connect()
        for frame in frames:
            await chaos.send(frame)
        before_close = list(link.sent)
        await chaos.close()
        return before_close

    assert asyncio.run(scenario()) == frames
    assert link.sent == frames + frames


def test_without_chaos_frames_pass_through_untouched():
    frames = _frames(50)

    assert _through_chaos(frames, ChaosConfig(seed=9))[0] == frames


@pytest.mark.parametrize("config", [{"duplicate": 1.5}, {"reorder": -0.1}, {"reorder_after": 0}])
def test_nonsense_chaos_is_refused(config):
    with pytest.raises(ValueError):
        ChaosConfig(**config)
