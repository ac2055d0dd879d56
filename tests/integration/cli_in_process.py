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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from chargenet_cli.main import main
from chargenet_local.stack import StackState


def chargenet(
    *args: str, env: Mapping[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """What `chargenet ARGS` returns, prints to stdout and to stderr, as a finished process would."""
    out, err = io.StringIO(), io.StringIO()
    with _environment(env or {}), _stdin(stdin), redirect_stdout(out), redirect_stderr(err):
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


def admin_cli(home: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`chargenet ARGS` with CHARGENET_HOME set: signed in as the stack's first admin."""
    return chargenet(*args, env={"CHARGENET_HOME": str(home)})


@contextmanager
def _environment(overrides: Mapping[str, str]) -> Iterator[None]:
    # The CLI sets the stack's AWS and Stripe variables when it connects: undone after the call,
    # as a subprocess's would be. Key by key, never emptied: a test may run the CLI in a thread
    # while its simulated charger runs in the main one.
    saved = dict(os.environ)
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key in os.environ.keys() - saved.keys():
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved
