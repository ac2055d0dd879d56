"""Custom::ConsoleCallback: names the console's callback and sign-out URLs on OperatorConsoleClient.

Why a custom resource: the client's callback URL names the API's domain, and the API's OperatorJwt
authorizer names the client (its audience): in the template that is a dependency cycle. This runs
after both exist and writes the URLs with UpdateUserPoolClient.

UpdateUserPoolClient resets every setting it is not given, so the client is read first
(DescribeUserPoolClient) and all its updatable settings are sent back with the new URLs. Setting
the same URLs again changes nothing (idempotent). Delete is a success that does nothing: the client
goes with the stack, and a replaced client's new id makes CloudFormation run Create for it.

The answer goes to CloudFormation's pre-signed ResponseURL, as the cfn-response module does, with
the standard library only. No request's Host is involved: the URLs come from the template
(PublicBaseUrl, else the API's execute-api domain).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from functools import cache
from typing import Any

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)
RESPONSE_TIMEOUT_S = 10
MAX_REASON = 1000  # CloudFormation shows the reason in the stack's events; keep it short


@cache
def cognito() -> Any:
    return boto3.client("cognito-idp")


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    properties = event.get("ResourceProperties", {})
    physical_id = event.get("PhysicalResourceId") or _physical_id(properties)
    try:
        if event["RequestType"] in ("Create", "Update"):
            physical_id = _physical_id(properties)
            set_urls(
                properties["UserPoolId"],
                properties["ClientId"],
                properties["CallbackUrl"],
                properties["LogoutUrl"],
            )
        status, reason = "SUCCESS", "callback and sign-out URLs set"
    except Exception as exc:  # any failure must reach CloudFormation, or the stack waits an hour
        logger.exception("ConsoleCallback %s failed", event.get("RequestType"))
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"[:MAX_REASON]
    respond(event, context, status, reason, physical_id)


def _physical_id(properties: dict[str, Any]) -> str:
    return f"{properties.get('UserPoolId', '-')}/{properties.get('ClientId', '-')}/console-callback"


def set_urls(user_pool_id: str, client_id: str, callback_url: str, logout_url: str) -> None:
    client = cognito()
    described = client.describe_user_pool_client(UserPoolId=user_pool_id, ClientId=client_id)[
        "UserPoolClient"
    ]
    updatable = set(client.meta.service_model.operation_model("UpdateUserPoolClient").input_shape.members)
    settings = {key: value for key, value in described.items() if key in updatable}
    settings.update(CallbackURLs=[callback_url], LogoutURLs=[logout_url])
    settings.pop("DefaultRedirectURI", None)  # it must be one of the callback URLs: the old one may not be
    client.update_user_pool_client(**settings)
    logger.info("client %s: callback %s, sign-out %s", client_id, callback_url, logout_url)


def respond(event: dict[str, Any], context: Any, status: str, reason: str, physical_id: str) -> None:
    """PUT the result to CloudFormation's pre-signed URL (no Content-Type: the URL is signed without one)."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": f"{reason} (log stream {getattr(context, 'log_stream_name', '-')})",
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {},
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_S) as answer:
        logger.info("CloudFormation answered %s", answer.status)
