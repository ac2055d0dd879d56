"""Signing out on the real local stack: POST /ops/v1/sign-out with one token makes the operator API
refuse every token of that operator issued until then (the local JWT check, like API Gateway's,
would accept them until they expire), in every area's function; a new sign-in works again; and
`chargenet logout` does the same for the CLI's cached token.

Each test signs in an operator of its own: signing out the first admin would sign out the CLI
the other tests of this session use."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from chargenet_cli import operator_auth
from chargenet_cli.operator_profile import local_profile
from chargenet_local.stack import StackState
from tests.integration.cli_in_process import operator_cli
from tests.integration.test_operator_access import _cognito
from tests.integration.test_operator_journey import PASSWORD, _operator
from tests.integration.test_operator_journey import _call as call_api

SIGNED_OUT = {"error": "unauthorized", "message": "signed out: sign in again"}
# One route of each area's function (OperatorApiFunction, -Sessions, -Payments, -Chargers, -Commands).
AREAS = [
    "/whoami",
    "/sessions",
    "/payments",
    "/provisioning/serials",
    "/firmware/releases",
]


def _new_admin(stack: StackState) -> str:
    username = f"signout-{uuid.uuid4().hex[:8]}"
    _operator(stack, username, "admin")
    return username


def _token(stack: StackState, username: str) -> str:
    answer = _cognito(stack).initiate_auth(
        ClientId=stack.operator_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    return str(answer["AuthenticationResult"]["AccessToken"])


def _call(stack: StackState, route: str, token: str, method: str = "GET") -> tuple[int, Any]:
    return call_api(f"{stack.operator_api_url}{route}", token, method, {} if method == "POST" else None)


def _next_second() -> None:
    """`iat` has one-second resolution: a token of the sign-out's own second is refused too."""
    time.sleep(1.1)


def _audited_sign_outs(stack: StackState, username: str) -> list[dict[str, Any]]:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    first_admin = operator_auth.current(local_profile(Path(stack.home))).access_token  # this process's CLI
    _, page = _call(stack, f"/audit?day={day}&limit=200", first_admin)
    return [r for r in page["items"] if r["route"] == "/ops/v1/sign-out" and r["username"] == username]


def test_signing_out_with_one_token_makes_the_api_refuse_every_earlier_one(stack: StackState) -> None:
    username = _new_admin(stack)
    first = _token(stack, username)
    _next_second()
    second = _token(stack, username)
    for route in AREAS:
        assert _call(stack, route, first)[0] == 200, route

    assert _call(stack, "/sign-out", second, "POST") == (200, {"signed_out": True})

    for token in (first, second):
        for route in AREAS:
            assert _call(stack, route, token) == (401, SIGNED_OUT), route
    assert _call(stack, "/sign-out", first, "POST") == (401, SIGNED_OUT)
    [record] = _audited_sign_outs(stack, username)
    assert (record["method"], record["status"]) == ("POST", 200)

    _next_second()
    again = _token(stack, username)
    for route in AREAS:
        assert _call(stack, route, again)[0] == 200, route


def test_chargenet_logout_makes_the_cached_token_refused(stack: StackState, tmp_path: Path) -> None:
    username = _new_admin(stack)

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return operator_cli(stack, tmp_path, *args, stdin=stdin)

    _next_second()  # after _new_admin's moment, whatever it was
    assert cli("login", "--username", username, "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    cache = tmp_path / "tokens" / f"{local_profile(Path(stack.home)).key}.json"
    cached = json.loads(cache.read_text())["access_token"]
    assert _call(stack, "/whoami", cached)[0] == 200

    done = cli("logout")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "signed out"
    assert "did not record" not in done.stdout
    assert not cache.exists()
    assert _call(stack, "/whoami", cached) == (401, SIGNED_OUT)
    assert _call(stack, "/sessions", cached) == (401, SIGNED_OUT)
