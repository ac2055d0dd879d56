"""Where the operator API and its Cognito user pool are: the local stack, or a deployed stack by name.

The default is the local stack (its state file, as `local_env` reads it); `chargenet --stack NAME`
names a deployed CloudFormation stack, whose outputs `OperatorApiUrl`, `OperatorUserPoolId` and
`OperatorUserPoolClientId` give the same three things. boto3 is imported where it is used: the CLI
module imports stay free of the AWS SDK.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chargenet_cli.errors import CliError

API_URL_OUTPUT = "OperatorApiUrl"
POOL_ID_OUTPUT = "OperatorUserPoolId"
CLIENT_ID_OUTPUT = "OperatorUserPoolClientId"
OPERATOR_API_PATH = "/ops/v1"


@dataclass(frozen=True)
class Profile:
    """One place operators sign in to: `key` names its token cache file."""

    key: str
    api_url: str  # the operator API's base, ending in /ops/v1
    pool_id: str
    client_id: str
    region: str
    endpoint_url: str = ""  # the local stack's moto; empty: AWS itself
    credentials: dict[str, str] = field(default_factory=dict)  # the local stack's fake keys

    def cognito(self) -> Any:
        """A cognito-idp client for this pool (InitiateAuth needs no AWS credentials in the cloud)."""
        import boto3

        options: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.credentials:
            options["aws_access_key_id"] = self.credentials.get("AWS_ACCESS_KEY_ID")
            options["aws_secret_access_key"] = self.credentials.get("AWS_SECRET_ACCESS_KEY")
        return boto3.client("cognito-idp", **options)


def resolve(home: Path | None = None, stack: str | None = None) -> Profile:
    """The profile `chargenet [--home DIR] [--stack NAME]` names."""
    return stack_profile(stack) if stack else local_profile(home)


def local_profile(home: Path | None = None) -> Profile:
    from chargenet_local.stack import StackNotRunning, default_home, read_state

    folder = (home or default_home()).resolve()
    try:
        state = read_state(folder)
    except StackNotRunning as exc:
        raise CliError(str(exc)) from exc
    pool_id = getattr(state, "operator_pool_id", "") or ""
    client_id = getattr(state, "operator_client_id", "") or ""
    api_url = getattr(state, "operator_api_url", "") or (
        state.api_url.rstrip("/") + OPERATOR_API_PATH if state.api_url else ""
    )
    if not (pool_id and client_id and api_url):
        raise CliError(
            "the local stack has no operator sign-in (it started before it had one): "
            "chargenet local down && chargenet local up"
        )
    environment = state.aws_environment()
    return Profile(
        # One cache per stack folder: several local stacks may run side by side (tests do).
        key="local-" + hashlib.sha256(str(folder).encode()).hexdigest()[:12],
        api_url=api_url.rstrip("/"),
        pool_id=pool_id,
        client_id=client_id,
        region=state.region,
        endpoint_url=state.moto_url,
        credentials={k: environment[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
    )


def stack_outputs(stack_name: str, cloudformation: Any = None) -> dict[str, str]:
    """A deployed stack's CloudFormation outputs (the caller's AWS credentials and region)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if cloudformation is None:
            import boto3

            cloudformation = boto3.client("cloudformation")  # the caller's region and credentials
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise CliError(f"stack {stack_name}: {exc.response['Error'].get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise CliError(f"stack {stack_name}: {exc}") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_profile(stack_name: str, cloudformation: Any = None) -> Profile:
    """A deployed stack's profile from its CloudFormation outputs (the caller's AWS credentials)."""
    outputs = stack_outputs(stack_name, cloudformation)
    missing = [k for k in (API_URL_OUTPUT, POOL_ID_OUTPUT, CLIENT_ID_OUTPUT) if not outputs.get(k)]
    if missing:
        raise CliError(f"stack {stack_name} has no operator API (outputs missing: {', '.join(missing)})")
    pool_id = outputs[POOL_ID_OUTPUT]
    return Profile(
        key="stack-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in stack_name),
        api_url=outputs[API_URL_OUTPUT].rstrip("/"),
        pool_id=pool_id,
        client_id=outputs[CLIENT_ID_OUTPUT],
        # A pool id is <region>_<id>: the pool's region, whatever the caller's default is.
        region=pool_id.split("_", 1)[0] if "_" in pool_id else _caller_region(cloudformation),
    )


def _caller_region(cloudformation: Any) -> str:
    if cloudformation is not None:
        return str(cloudformation.meta.region_name)
    import boto3

    return str(boto3.session.Session().region_name or "")
