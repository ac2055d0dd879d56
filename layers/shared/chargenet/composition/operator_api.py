"""OperatorApiFunction: the operator console's use cases, from DynamoDB, SNS, Secrets Manager and
the operator user pool (Cognito)."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from chargenet.adapters.audit_dynamodb import DynamoAuditLog, DynamoOperatorViews
from chargenet.adapters.console_reads_dynamodb import DynamoChargerEvents, DynamoEnergySources
from chargenet.adapters.cursor_secret import SecretsManagerKey
from chargenet.adapters.history_dynamodb import DynamoHistory
from chargenet.adapters.operators_cognito import CognitoOperatorDirectory
from chargenet.adapters.sign_outs_dynamodb import DynamoSignOuts
from chargenet.composition.faults import fault_tracker
from chargenet.composition.settings import AlertEnvironment, FunctionEnvironment, environment
from chargenet.domain.clock import utc_now
from chargenet.services.operator_access import OperatorAccess
from chargenet.services.operator_api import OperatorConsole
from chargenet.services.operator_reports import OperatorReports
from chargenet.services.operator_sign_out import OperatorSignOut, SignOutCheck


class OperatorAccessEnvironment(FunctionEnvironment):
    """What every operator function has: the audit and sign-out tables (bound by name) and the
    cursor secret."""

    cursor_secret_arn: str = Field(alias="OPERATOR_CURSOR_SECRET_ARN")
    # Required, not only bound like the other tables: every request's edge reads it (a missing
    # variable fails the composition, naming it, instead of the first request).
    sign_outs_table: str = Field(alias="OPERATOR_SIGN_OUTS_TABLE")


def operator_access(env: OperatorAccessEnvironment) -> OperatorAccess:
    return OperatorAccess(audit_log=DynamoAuditLog(), cursor_key=SecretsManagerKey(env.cursor_secret_arn))


@cache
def sign_out_check() -> SignOutCheck:
    """The check every operator function's edge (chargenet.handlers.operator_http) makes."""
    environment(OperatorAccessEnvironment)
    return SignOutCheck(DynamoSignOuts())


@cache
def operator_sign_out() -> OperatorSignOut:
    env = environment(OperatorAccessEnvironment)
    return OperatorSignOut(access=operator_access(env), sign_outs=DynamoSignOuts(), clock=utc_now)


class OperatorApiEnvironment(AlertEnvironment, OperatorAccessEnvironment):
    """The tables its routes read (and FaultsTable, written by ack, resolve and exclude; HistoryTable,
    read by the uptime report and the console's timeline and utilisation; PendingCallsTable and
    CdrsTable, read by the timeline and the energy report), AuditTable, and the secret that signs
    pagination cursors."""

    operator_pool_id: str = Field(alias="OPERATOR_USER_POOL_ID")
    # Set only by the local stack (chargenet_local.stack), never by template.yaml: moto sends no
    # e-mail, so there an invitation's temporary password is returned to the inviting admin.
    local_invitations: bool = Field(default=False, alias="CHARGENET_LOCAL_INVITATIONS")


@cache
def operator_console() -> OperatorConsole:
    env = environment(OperatorApiEnvironment)
    return OperatorConsole(
        access=operator_access(env),
        views=DynamoOperatorViews(),
        faults_changes=fault_tracker(env),
        clock=utc_now,
        directory=CognitoOperatorDirectory(env.operator_pool_id, env.local_invitations),
        history=DynamoHistory(),
    )


@cache
def operator_reports() -> OperatorReports:
    env = environment(OperatorApiEnvironment)
    return OperatorReports(
        access=operator_access(env),
        views=DynamoOperatorViews(),
        history=DynamoHistory(),
        events=DynamoChargerEvents(),
        energy_sources=DynamoEnergySources(),
        clock=utc_now,
    )
