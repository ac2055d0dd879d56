"""OperatorApiFunction: the operator console's use cases, from DynamoDB, SNS and Secrets Manager."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from chargenet.adapters.audit_dynamodb import DynamoAuditLog, DynamoOperatorViews
from chargenet.adapters.cursor_secret import SecretsManagerKey
from chargenet.composition.faults import fault_tracker
from chargenet.composition.settings import AlertEnvironment, environment
from chargenet.domain.clock import utc_now
from chargenet.services.operator_api import OperatorConsole


class OperatorApiEnvironment(AlertEnvironment):
    """The tables its routes read (and FaultsTable, written by ack and resolve), AuditTable, and
    the secret that signs pagination cursors."""

    cursor_secret_arn: str = Field(alias="OPERATOR_CURSOR_SECRET_ARN")


@cache
def operator_console() -> OperatorConsole:
    env = environment(OperatorApiEnvironment)
    return OperatorConsole(
        views=DynamoOperatorViews(),
        faults_changes=fault_tracker(env),
        audit_log=DynamoAuditLog(),
        cursor_key=SecretsManagerKey(env.cursor_secret_arn),
        clock=utc_now,
    )
