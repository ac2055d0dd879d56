"""OperatorSessionsFunction: sessions, CDRs, RFID tags and tariffs for operators, from DynamoDB, with
the audit trail and the cursor secret every operator function has."""

from __future__ import annotations

from functools import cache

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.dynamodb import DynamoChargerRegistry, deployment_time_zone
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.composition.operator_api import OperatorAccessEnvironment, operator_access
from chargenet.composition.settings import environment
from chargenet.domain.clock import utc_now
from chargenet.services.operator_sessions import OperatorSessions


@cache
def operator_sessions() -> OperatorSessions:
    env = environment(OperatorAccessEnvironment)
    return OperatorSessions(
        access=operator_access(env),
        sessions=DynamoSessionStore(),
        cdrs=DynamoCdrStore(),
        tags=DynamoTagDirectory(),
        tariffs=DynamoTariffBook(),
        chargers=DynamoChargerRegistry(),
        clock=utc_now,
        time_zone=deployment_time_zone(),
    )
