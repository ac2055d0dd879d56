"""Operator access on the real local stack: the template's user pool, client and groups in moto's
Cognito, the first admin (password only in a 0600 file, in no log), and the HTTP front refusing the
operator API's routes without a valid token while the drivers' pages stay public."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest

from chargenet_local.persistence import MOTO_SNAPSHOT, state_dir
from chargenet_local.stack import FIRST_ADMIN_PASSWORD_FILE, StackState
from tests.integration.conftest import eventually

CHARGENET = [sys.executable, "-m", "chargenet_cli.main"]


def _cognito(stack: StackState) -> Any:
    return boto3.client(
        "cognito-idp",
        region_name=stack.region,
        endpoint_url=stack.moto_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _password_file(stack: StackState) -> Path:
    return Path(stack.home) / FIRST_ADMIN_PASSWORD_FILE


def _password(stack: StackState) -> str:
    return _password_file(stack).read_text().strip()


def _sign_in(stack: StackState) -> dict[str, str]:
    answer = _cognito(stack).initiate_auth(
        ClientId=stack.operator_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "admin", "PASSWORD": _password(stack)},
    )
    return dict(answer["AuthenticationResult"])


def _get(url: str, token: str | None = None) -> tuple[int, Any]:
    """Status and body (JSON when it is; the drivers' pages answer HTML)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body or b"null")
    except ValueError:
        return status, body.decode(errors="replace")


def test_state_names_the_pool_client_and_api(stack: StackState) -> None:
    assert stack.operator_pool_id.startswith(f"{stack.region}_")
    assert stack.operator_client_id
    assert stack.operator_api_url == stack.api_url + "/ops/v1"
    cognito = _cognito(stack)
    pool = cognito.describe_user_pool(UserPoolId=stack.operator_pool_id)["UserPool"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 14
    groups = cognito.list_groups(UserPoolId=stack.operator_pool_id)["Groups"]
    assert {g["GroupName"] for g in groups} == {"admin", "technician", "finance", "viewer"}
    client = cognito.describe_user_pool_client(
        UserPoolId=stack.operator_pool_id, ClientId=stack.operator_client_id
    )["UserPoolClient"]
    assert "ClientSecret" not in client
    assert "ALLOW_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"]


def test_first_admin_signs_in_with_the_private_password(stack: StackState) -> None:
    mode = stat.S_IMODE(_password_file(stack).stat().st_mode)
    assert mode == 0o600, oct(mode)
    tokens = _sign_in(stack)
    claims = jwt.decode(tokens["AccessToken"], options={"verify_signature": False})
    assert claims["username"] == "admin" and "admin" in claims["cognito:groups"]
    assert claims["iss"] == f"https://cognito-idp.{stack.region}.amazonaws.com/{stack.operator_pool_id}"
    assert claims["client_id"] == stack.operator_client_id


def test_local_up_says_how_to_sign_in_and_nothing_logs_the_password(stack: StackState) -> None:
    printed = subprocess.run(
        [*CHARGENET, "--home", stack.home, "local", "up"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    [hint] = [line for line in printed.splitlines() if "chargenet login --username admin" in line]
    assert str(_password_file(stack)) in hint
    password = _password(stack)
    assert password not in printed
    # moto's Cognito keeps passwords as given, so its saved state (the local stack keeps its data)
    # holds it: like the password file, owner-only; anywhere else (logs above all) it is a leak.
    owner_only = {FIRST_ADMIN_PASSWORD_FILE, MOTO_SNAPSHOT}
    leaks = []
    for path in Path(stack.home).rglob("*"):
        if path.is_file() and path.name not in owner_only and password.encode() in path.read_bytes():
            leaks.append(str(path))
    assert leaks == []
    snapshot = state_dir(Path(stack.home)) / MOTO_SNAPSHOT
    eventually(snapshot.exists, timeout=30)  # the first is written within seconds of a change
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600


def test_operator_routes_need_a_token_the_drivers_pages_do_not(stack: StackState) -> None:
    assert _get(f"{stack.operator_api_url}/me") == (401, {"message": "Unauthorized"})
    assert _get(f"{stack.operator_api_url}/me", "not-a-token") == (401, {"message": "Unauthorized"})
    # Another pool's token: moto signs it with the same key, the issuer refuses it.
    cognito = _cognito(stack)
    other = cognito.create_user_pool(PoolName="not-operators")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=other, ClientName="x", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=other, Username="admin", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(
        UserPoolId=other, Username="admin", Password=_password(stack), Permanent=True
    )
    foreign = cognito.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "admin", "PASSWORD": _password(stack)},
    )["AuthenticationResult"]["AccessToken"]
    assert _get(f"{stack.operator_api_url}/me", foreign)[0] == 401
    # The admin's own token passes the authorizer (what the function answers is the operator API's).
    assert _get(f"{stack.operator_api_url}/me", _sign_in(stack)["AccessToken"])[0] != 401
    # A driver's pay page is public: whatever it answers, the authorizer is not in the way.
    assert _get(f"{stack.api_url}/pay/CP-NOPE/1")[0] != 401


@pytest.mark.parametrize("path", ["/stripe/webhook"])
def test_stripe_webhook_stays_public(stack: StackState, path: str) -> None:
    request = urllib.request.Request(f"{stack.api_url}{path}", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=30)
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    assert status != 401  # refused for its missing Stripe signature, not by the authorizer
