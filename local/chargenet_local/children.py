"""The local stack's child processes die with it.

A stack killed hard (the OOM killer, a test run's timeout, SIGKILL) cannot stop its function
workers, mosquitto and localstripe; re-parented to init they would keep their memory and
ports for good. Linux's parent-death signal ends them with their parent instead.
"""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits (Linux only; a no-op elsewhere).

    Usable as a Popen `preexec_fn` and as a process pool's worker initializer. The kernel
    signals when the *thread* that started the child ends, so the stack starts its children
    from its main thread (the pools' workers are all started by `LocalFunction.warm`).
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
