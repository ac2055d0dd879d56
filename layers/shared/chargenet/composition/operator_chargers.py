"""OperatorChargersFunction: chargers, their certificates, sites, claim certificates and the factory
allow-list, from the charger registry, the sessions tables, the allow-list table and IoT's registry."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from chargenet.adapters.dynamodb import DynamoChargerRegistry, deployment_time_zone
from chargenet.adapters.iot_certificates import IotChargerIdentities
from chargenet.adapters.iot_claim_certificates import IotClaimCertificates
from chargenet.adapters.provisioning_dynamodb import DynamoAllowList
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.composition.operator_api import OperatorAccessEnvironment, operator_access
from chargenet.composition.settings import environment
from chargenet.domain.clock import utc_now
from chargenet.services.operator_chargers import ChargerAdministration


class OperatorChargersEnvironment(OperatorAccessEnvironment):
    """The template's ChargerPolicy (what a new certificate is given), IngestRuleName (what the
    charger publishes to), ProvisioningClaimPolicy (what a batch's claim certificate is given) and
    ProvisioningTemplateName (what a claiming charger registers with); the tables it is given are
    bound by name."""

    charger_policy_name: str = Field(alias="CHARGER_POLICY_NAME")
    ingest_rule_name: str = Field(alias="INGEST_RULE_NAME")
    claim_policy_name: str = Field(alias="CLAIM_POLICY_NAME")
    provisioning_template_name: str = Field(alias="PROVISIONING_TEMPLATE_NAME")


@cache
def charger_administration() -> ChargerAdministration:
    env = environment(OperatorChargersEnvironment)
    return ChargerAdministration(
        access=operator_access(env),
        registry=DynamoChargerRegistry(),
        identities=IotChargerIdentities(env.charger_policy_name, env.ingest_rule_name),
        sessions=DynamoSessionStore(),
        allow_list=DynamoAllowList(),
        claims=IotClaimCertificates(env.claim_policy_name),
        provisioning_template=env.provisioning_template_name,
        deployment_time_zone=deployment_time_zone(),
        clock=utc_now,
    )
