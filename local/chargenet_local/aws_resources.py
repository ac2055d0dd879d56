"""Create the template's tables, queues, topics, buckets, secrets, IoT policy and Cognito user
pools (with their clients and groups) in moto."""

from __future__ import annotations

import json
import secrets
from typing import Any

import boto3

from chargenet_local.stripe_local import API_KEY_SECRET, WEBHOOK_SECRET
from chargenet_local.template import Template, bucket_name


def create_all(
    template: Template, endpoint: str, existing: dict[str, dict[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """Create every supported resource not in `existing` (what a kept stack already has, by kind
    and logical id: a restart creates only what the template added since); returns physical
    names/URLs by logical id."""
    clients = _Clients(endpoint, template.region)
    kept = existing or {}

    def missing(kind: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            name: res
            for name, res in template.of_type(resource_type).items()
            if name not in kept.get(kind, {})
        }

    created = {
        "tables": {
            name: _create_table(clients.dynamodb, name, res)
            for name, res in missing("tables", "AWS::DynamoDB::Table").items()
        },
        "queues": {
            name: clients.sqs.create_queue(QueueName=name)["QueueUrl"]
            for name in missing("queues", "AWS::SQS::Queue")
        },
        "topics": {
            name: clients.sns.create_topic(Name=name)["TopicArn"]
            for name in missing("topics", "AWS::SNS::Topic")
        },
        "buckets": {
            name: _create_bucket(clients.s3, name, res)
            for name, res in missing("buckets", "AWS::S3::Bucket").items()
        },
        "secrets": {
            name: _create_secret(clients.secretsmanager, template, name, res)
            for name, res in missing("secrets", "AWS::SecretsManager::Secret").items()
        },
        "iot_policies": {
            name: _create_policy(clients.iot, template, name, res)
            for name, res in missing("iot_policies", "AWS::IoT::Policy").items()
        },
        # Pools, clients and groups go together: a kept pool keeps its clients and groups.
        "user_pools": {} if kept.get("user_pools") else _create_user_pools(clients.cognito, template),
    }
    # A queue's URL names moto's address, which may have moved since (chargenet_local.persistence.PortBook).
    queues = {name: clients.sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in kept.get("queues", {})}
    return {kind: {**kept.get(kind, {}), **made} for kind, made in created.items()} | {
        "queues": {**queues, **created["queues"]}
    }


class _Clients:
    def __init__(self, endpoint: str, region: str) -> None:
        session = boto3.Session(region_name=region, aws_access_key_id="local", aws_secret_access_key="local")
        self.dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.sns = session.client("sns", endpoint_url=endpoint)
        self.iot = session.client("iot", endpoint_url=endpoint)
        self.s3 = session.client("s3", endpoint_url=endpoint)
        self.secretsmanager = session.client("secretsmanager", endpoint_url=endpoint)
        self.cognito = session.client("cognito-idp", endpoint_url=endpoint)


def _create_table(dynamodb: Any, name: str, resource: dict[str, Any]) -> str:
    props = resource["Properties"]
    # Encryption and point-in-time recovery are cloud-only settings; moto ignores them.
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in props:
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    dynamodb.create_table(**kwargs)
    if ttl := props.get("TimeToLiveSpecification"):
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name


def _create_bucket(s3: Any, logical_id: str, resource: dict[str, Any]) -> str:
    # Named as CloudFormation would, stack name then logical id (the template's Ref gives the same).
    # Encryption, public access block and lifecycle are cloud-only settings, as for tables.
    name = bucket_name(logical_id)
    s3.create_bucket(Bucket=name)
    # Versioning is not: firmware jobs name the package version they install (moto keeps versions).
    if versioning := resource.get("Properties", {}).get("VersioningConfiguration"):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=versioning)
    return name


def _create_policy(iot: Any, template: Template, name: str, resource: dict[str, Any]) -> str:
    document = template.resolve(resource["Properties"]["PolicyDocument"])
    iot.create_policy(policyName=name, policyDocument=json.dumps(document))
    return name


# Secrets whose cloud value an operator puts in after deploy get a local one of the same form:
# any sk_test_ key works against localstripe, and the webhook secret is what the stack signs with.
LOCAL_SECRET_PREFIXES = {API_KEY_SECRET: "sk_test_local_", WEBHOOK_SECRET: "whsec_local_"}


def _create_secret(secretsmanager: Any, template: Template, logical_id: str, resource: dict[str, Any]) -> str:
    """Returns the secret's ARN; its name is the one `Ref` resolves to (see Template.ref)."""
    props = resource.get("Properties", {})
    if logical_id in LOCAL_SECRET_PREFIXES:
        value = LOCAL_SECRET_PREFIXES[logical_id] + secrets.token_hex(16)
    else:
        value = (
            str(template.resolve(props["SecretString"])) if "SecretString" in props else secrets.token_hex(16)
        )
    created = secretsmanager.create_secret(Name=template.secret_name(logical_id), SecretString=value)
    return str(created["ARN"])


# The template's properties that are also CreateUserPool / CreateUserPoolClient parameters (same
# names and shapes); the rest (EnabledMfas, DeletionProtection, ...) changes nothing moto checks.
_POOL_PROPERTIES = (
    "Policies",
    "AdminCreateUserConfig",
    "MfaConfiguration",
    "Schema",
    "AutoVerifiedAttributes",
)
_CLIENT_PROPERTIES = (
    "ExplicitAuthFlows",
    "GenerateSecret",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "AccessTokenValidity",
    "IdTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
)


def _create_user_pools(cognito: Any, template: Template) -> dict[str, str]:
    """Pools, then their clients and groups. moto names pools and clients itself: their ids go into
    `template.physical_ids`, so `Ref` (authorizer issuers, function environments) resolves to them.
    Returns the ids of pools and clients by logical id."""
    created: dict[str, str] = {}
    for name, res in template.of_type("AWS::Cognito::UserPool").items():
        props = template.resolve(res.get("Properties", {}))
        kwargs = {key: props[key] for key in _POOL_PROPERTIES if key in props}
        created[name] = cognito.create_user_pool(PoolName=name, **kwargs)["UserPool"]["Id"]
        template.physical_ids[name] = created[name]
    for name, res in template.of_type("AWS::Cognito::UserPoolClient").items():
        props = template.resolve(res["Properties"])
        kwargs = {key: props[key] for key in _CLIENT_PROPERTIES if key in props}
        client = cognito.create_user_pool_client(UserPoolId=props["UserPoolId"], ClientName=name, **kwargs)
        created[name] = client["UserPoolClient"]["ClientId"]
        template.physical_ids[name] = created[name]
    for res in template.of_type("AWS::Cognito::UserPoolGroup").values():
        props = template.resolve(res["Properties"])
        optional = {key: props[key] for key in ("Description", "Precedence") if key in props}
        cognito.create_group(UserPoolId=props["UserPoolId"], GroupName=props["GroupName"], **optional)
    return created
