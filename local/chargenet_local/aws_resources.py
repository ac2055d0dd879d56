"""Create the template's tables, queues, topics and IoT policy in moto."""

from __future__ import annotations

import json
from typing import Any

import boto3

from chargenet_local.template import Template


def create_all(template: Template, endpoint: str) -> dict[str, dict[str, str]]:
    """Create every supported resource; returns physical names/URLs by logical id."""
    clients = _Clients(endpoint, template.region)
    return {
        "tables": {
            name: _create_table(clients.dynamodb, name, res)
            for name, res in template.of_type("AWS::DynamoDB::Table").items()
        },
        "queues": {
            name: clients.sqs.create_queue(QueueName=name)["QueueUrl"]
            for name in template.of_type("AWS::SQS::Queue")
        },
        "topics": {
            name: clients.sns.create_topic(Name=name)["TopicArn"]
            for name in template.of_type("AWS::SNS::Topic")
        },
        "iot_policies": {
            name: _create_policy(clients.iot, template, name, res)
            for name, res in template.of_type("AWS::IoT::Policy").items()
        },
    }


class _Clients:
    def __init__(self, endpoint: str, region: str) -> None:
        session = boto3.Session(region_name=region, aws_access_key_id="local", aws_secret_access_key="local")
        self.dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.sns = session.client("sns", endpoint_url=endpoint)
        self.iot = session.client("iot", endpoint_url=endpoint)


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


def _create_policy(iot: Any, template: Template, name: str, resource: dict[str, Any]) -> str:
    document = template.resolve(resource["Properties"]["PolicyDocument"])
    iot.create_policy(policyName=name, policyDocument=json.dumps(document))
    return name
