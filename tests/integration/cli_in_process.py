"""The `chargenet` CLI run in the test's own process: its parser, commands, output and exit status,
against the real local stack, without a new interpreter per call.

A subprocess spends about 1.5 s on this machine starting Python and importing the CLI before the
command does anything; the operator tests make a dozen calls each and poll through the CLI. The
entry point itself (`python -m chargenet_cli.main`, the console script) is run as a process by
test_cli.py. Each call gets the environment a subprocess would (its own CHARGENET_CONFIG_DIR, stdin)
and leaves the test process's environment as it found it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from chargenet_cli.main import main
from chargenet_local.stack import StackState


def chargenet(
    *args: str, env: Mapping[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """What `chargenet ARGS` returns, prints to stdout and to stderr, as a finished process would."""
    out, err = io.StringIO(), io.StringIO()
    with _calls_running(env or {}), _this_thread(out, err, stdin):
        try:
            status = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors, as the process would exit
            status = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(["chargenet", *args], status, out.getvalue(), err.getvalue())


def operator_cli(
    stack: StackState, config: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`chargenet --home HOME ARGS` on the stack, its sign-ins kept in `config` (CHARGENET_CONFIG_DIR)."""
    return chargenet("--home", stack.home, *args, env={"CHARGENET_CONFIG_DIR": str(config)}, stdin=stdin)


def admin_cli(home: str | Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`chargenet ARGS` with CHARGENET_HOME set: signed in as the stack's first admin."""
    return chargenet(*args, env={"CHARGENET_HOME": str(home)}, stdin=stdin)


# Tests run commands in threads while others wait on a charger, sometimes two at once (a command
# that waits for its answer, and the one that makes the charger answer): each call's streams are
# its own thread's, and the environment is put back when the last call running ends.
_calls = threading.local()
_lock = threading.Lock()
_running = 0
_saved: dict[str, str] = {}


class _ThreadStream(io.TextIOBase):
    """sys.stdout, sys.stderr or sys.stdin while calls run: the calling thread's call's, else the
    stream it stands in for."""

    def __init__(self, name: str, original: TextIO) -> None:
        self._name, self._original = name, original

    def _stream(self) -> TextIO:
        return getattr(_calls, self._name, None) or self._original

    def write(self, text: str) -> int:
        return self._stream().write(text)

    def flush(self) -> None:
        self._stream().flush()

    def read(self, size: int | None = -1) -> str:
        return self._stream().read(-1 if size is None else size)

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        return self._stream().readline(size)

    def isatty(self) -> bool:
        return False


@contextmanager
def _calls_running(overrides: Mapping[str, str]) -> Iterator[None]:
    # The CLI sets the stack's AWS and Stripe variables when it connects: undone after the last
    # call, as a subprocess's would be. Key by key, never emptied: a test may run the CLI in a
    # thread while its simulated charger runs in the main one.
    global _running
    with _lock:
        if _running == 0:
            _saved.clear()
            _saved.update(os.environ)
            sys.stdout = _ThreadStream("stdout", sys.stdout)
            sys.stderr = _ThreadStream("stderr", sys.stderr)
            sys.stdin = _ThreadStream("stdin", sys.stdin)
        _running += 1
        os.environ.update(overrides)
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                for name in ("stdout", "stderr", "stdin"):
                    setattr(sys, name, getattr(sys, name)._original)
                for key in os.environ.keys() - _saved.keys():
                    del os.environ[key]
                for key, value in _saved.items():
                    if os.environ.get(key) != value:
                        os.environ[key] = value


@contextmanager
def _this_thread(out: io.StringIO, err: io.StringIO, stdin: str) -> Iterator[None]:
    _calls.stdout, _calls.stderr, _calls.stdin = out, err, io.StringIO(stdin)
    try:
        yield
    finally:
        del _calls.stdout, _calls.stderr, _calls.stdin
