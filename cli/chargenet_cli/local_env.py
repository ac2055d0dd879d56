"""Point this process's AWS clients at the running local stack."""

from __future__ import annotations

import os
from pathlib import Path

from chargenet_cli.errors import CliError
from chargenet_local.stack import StackNotRunning, StackState, default_home, read_state


def connect(home: Path | None = None) -> StackState:
    """Read the stack's endpoints and set the environment pynamodb and boto3 read.

    Call before importing chargenet.adapters: the pynamodb models take their table
    names from the environment at import, as they do in Lambda.
    """
    try:
        state = read_state(home or default_home())
    except StackNotRunning as exc:
        raise CliError(str(exc)) from exc
    os.environ.update(state.aws_environment())
    os.environ.update(
        {
            "CHARGERS_TABLE": state.tables["ChargersTable"],
            "PENDING_CALLS_TABLE": state.tables["PendingCallsTable"],
        }
    )
    return state
