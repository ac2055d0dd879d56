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
    "IdempotencyTable": "IDEMPOTENCY_TABLE",
    "PaymentsTable": "PAYMENTS_TABLE",
    "PaymentEventsTable": "PAYMENT_EVENTS_TABLE",
    "SubscribersTable": "SUBSCRIBERS_TABLE",
    "ProvisioningAllowListTable": "PROVISIONING_ALLOWLIST_TABLE",
}
_BUCKET_VARIABLES = {"DiagnosticsBucket": "DIAGNOSTICS_BUCKET"}
_TOPIC_VARIABLES = {"AlertsTopic": "ALERTS_TOPIC_ARN"}


def connect(home: Path | None = None) -> StackState:
    """Read the stack's endpoints, set the environment boto3 reads, and bind the stack's tables.

    The table names go through the functions' own composition (chargenet.composition.settings),
    which binds them onto the pynamodb models; they are also set as the variables the template
    gives the functions, so a composition builder the CLI calls reads the same names again.
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
    # Here, not at the top: `chargenet tariff price` imports this module and no AWS SDK.
    from chargenet.composition.settings import bind_environment

    bind_environment(os.environ)
    return state
