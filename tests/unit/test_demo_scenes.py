"""The demo's scenes run at once: their reports in the order given whatever order they finish in,
a failed scene's error in its place, each progress line led by its scene."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from chargenet_cli.errors import CliError
from chargenet_local.commands.demo_cmd import _concurrently, _tagged

Say = Callable[[str], None]


def _scene(report: str, waits_for: threading.Event | None = None, sets: threading.Event | None = None):
    def run(say: Say) -> str:
        if waits_for is not None:
            assert waits_for.wait(timeout=5), "the scenes did not run at the same time"
        say(f"{report}: done")
        if sets is not None:
            sets.set()
        return report

    return run


def test_scenes_run_at_once_and_report_in_the_order_given() -> None:
    second_done = threading.Event()
    lines: list[str] = []
    # The first scene finishes only after the second: run one after the other, this would hang.
    report = _concurrently(
        {
            "first": _scene("first", waits_for=second_done),
            "second": _scene("second", sets=second_done),
        },
        lines.append,
    )
    assert report == "first\n\nsecond"
    assert lines == ["second:      done", "first:       done"]


def test_a_failed_scene_fails_the_demo_with_every_report_in_its_place() -> None:
    def broken(say: Say) -> str:
        raise CliError("payments: Stop answered 500")

    with pytest.raises(CliError) as failed:
        _concurrently({"fleet": _scene("fleet"), "payments": broken, "after": _scene("after")}, print)
    assert str(failed.value) == "fleet\n\npayments: Stop answered 500\n\nafter"


def test_progress_is_tagged_once_with_its_scene() -> None:
    lines: list[str] = []
    say = _tagged(lines.append, "subscribers")
    say("subscribers: 3 active")
    say("  ada@example.com: card saved")
    say("subscribersX: not this scene's lead")
    assert lines == [
        "subscribers: 3 active",
        "subscribers:   ada@example.com: card saved",
        "subscribers: subscribersX: not this scene's lead",
    ]
