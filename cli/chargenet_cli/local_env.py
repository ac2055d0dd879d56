"""Point this process's AWS clients at the running local stack."""

from __future__ import annotations

import os
from pathlib import Path

from chargenet_cli.errors import CliError
from chargenet_local.stack import StackNotRunning, StackState, default_home, read_state

_TABLE_VARIABLES = {
    "ChargersTable": "CHARGERS_TABLE",
    "PendingCallsTable": "PENDING_CALLS_TABLE",
    "SessionsTable": "SESSIONS_TABLE",
    "SessionEventsTable": "SESSION_EVENTS_TABLE",
    "TransactionKeysTable": "TRANSACTION_KEYS_TABLE",
    "TagsTable": "TAGS_TABLE",
    "TariffsTable": "TARIFFS_TABLE",
    "CdrsTable": "CDRS_TABLE",
    "FaultsTable": "FAULTS_TABLE",
    "HistoryTable": "HISTORY_TABLE",
}
_BUCKET_VARIABLES = {"DiagnosticsBucket": "DIAGNOSTICS_BUCKET"}
_TOPIC_VARIABLES = {"AlertsTopic": "ALERTS_TOPIC_ARN"}


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
    os.environ.update(state.stripe_environment())
    os.environ["DEFAULT_TIME_ZONE"] = state.default_time_zone
    # The same variables the template gives the functions (the table names are the logical ids).
    variables = {**_TABLE_VARIABLES, **_BUCKET_VARIABLES, **_TOPIC_VARIABLES}
    os.environ.update(
        {
            variables[logical]: name
            for logical, name in {**state.tables, **state.buckets, **state.topics}.items()
            if logical in variables
        }
    )
    return state
