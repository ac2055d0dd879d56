"""What every benchmark shares: a fresh local stack, progress lines, the results writer.

A benchmark that needs a stack runs inside `fresh_stack`: a new temporary folder (or the one
given), the stack started there from template.yaml, stopped when the block ends, the folder
removed once the run succeeded. A failed run keeps the folder, its `stack.log` included, and
says where it is. A benchmark that installs counters in the stack's daemon (cost_counts) passes
its own daemon command and keeps the folder open across the stop with `stack_home` +
`running_stack`.

The stack's daemon inherits the environment: a benchmark sets CHARGENET_PARAMETERS and
CHARGENET_SCHEDULE_EVERY_S before it enters.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the stack's modules load when a stack starts: a function worker never needs them
    from chargenet_local.stack import StackState

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
RESULTS = ROOT / "bench" / "results"
EXAMPLE_TARIFF = ROOT / "docs" / "tariffs" / "example-tariff.json"

Say = Callable[[str], None]
Daemon = Callable[[Path], Sequence[str]]  # the stack's folder -> the command that serves the stack


def stepper(stream: TextIO | None = None) -> Say:
    """Progress lines with the seconds since the start, on stdout unless told (cost_counts: stderr)."""
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=stream or sys.stdout, flush=True)

    return say


def _quiet(_: str) -> None:
    pass


@contextlib.contextmanager
def stack_home(prefix: str, home: Path | None = None, keep: bool = False) -> Iterator[Path]:
    """A new temporary folder (`home` if given: never removed), removed after a successful block."""
    own = home is None
    folder = Path(tempfile.mkdtemp(prefix=prefix)) if home is None else home
    try:
        yield folder
    except BaseException:
        print(f"the stack's files, its log included, are in {folder}", file=sys.stderr, flush=True)
        raise
    if own and not keep:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def running_stack(
    home: Path, *, say: Say = _quiet, detail: str = "", daemon: Daemon | None = None
) -> Iterator[StackState]:
    """The local stack of template.yaml served from `home`, connected (`local_env.connect`) and signed in
    as its first admin, stopped after."""
    from chargenet_cli import local_env
    from chargenet_local.operator_sign_in import act_as_first_admin
    from chargenet_local.stack import down, up

    say(f"starting a fresh local stack in {home}{f' ({detail})' if detail else ''}")
    up(home, TEMPLATE, daemon=None if daemon is None else daemon(home))  # stops what it started if it fails
    try:
        state = local_env.connect(home)
        act_as_first_admin(state)  # the operator commands it runs (provisioning) go through the API
        yield state
    finally:
        say("stopping the local stack")
        down(home, timeout_s=60)


@contextlib.contextmanager
def fresh_stack(
    prefix: str,
    *,
    home: Path | None = None,
    say: Say = _quiet,
    detail: str = "",
) -> Iterator[StackState]:
    """`running_stack` in a `stack_home`: the one way a benchmark gets a stack of its own."""
    with stack_home(prefix, home) as folder, running_stack(folder, say=say, detail=detail) as state:
        yield state


def write_results(out: Path, results: Any, default: Callable[[Any], Any] | None = None) -> None:
    """The benchmark's JSON, indented, to `out` (bench/results/<name>.json unless --out), folders made."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=default) + "\n")
