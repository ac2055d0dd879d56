"""Operator accounts on the real local stack, all through the CLI: an admin invites a finance
operator, who signs in with the temporary password and must choose a new one (Cognito's
NEW_PASSWORD_REQUIRED), is moved to viewer, listed, and removed; a technician cannot invite; the
audit trail holds the admin's three changes and not the refused call."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chargenet_local.stack import FIRST_ADMIN_PASSWORD_FILE, StackState
from tests.integration.cli_in_process import operator_cli
from tests.integration.test_operator_journey import _call, _cognito, _operator

NEW_PASSWORD = "Finance-Chosen-2026!"


def _accounts(stack: StackState, config: Path) -> dict[str, Any]:
    listed = operator_cli(stack, config, "operator", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {a["username"]: a for a in json.loads(listed.stdout)}


def test_an_admin_adds_moves_and_removes_an_operator_a_technician_cannot(
    stack: StackState, tmp_path: Path
) -> None:
    admin, newcomer = tmp_path / "admin", tmp_path / "newcomer"
    admin_password = (Path(stack.home) / FIRST_ADMIN_PASSWORD_FILE).read_text().strip()
    signed_in = operator_cli(
        stack, admin, "login", "--username", "admin", "--password-stdin", stdin=admin_password + "\n"
    )
    assert signed_in.returncode == 0, signed_in.stderr

    added = operator_cli(
        stack, admin, "operator", "add", "fin-accounts", "--email", "fin@example.com", "--role", "finance"
    )
    assert added.returncode == 0, added.stderr
    found = re.search(r"temporary password \(local stack only, shown once\): (\S+)", added.stdout)
    assert found, added.stdout
    temporary = found.group(1)
    again = operator_cli(
        stack, admin, "operator", "add", "fin-accounts", "--email", "x@example.com", "--role", "viewer"
    )
    assert again.returncode == 1 and "already" in again.stderr

    first = operator_cli(
        stack,
        newcomer,
        "login",
        "--username",
        "fin-accounts",
        "--password-stdin",
        "--new-password-stdin",
        stdin=f"{temporary}\n{NEW_PASSWORD}\n",
    )
    assert first.returncode == 0, first.stderr
    whoami = json.loads(operator_cli(stack, newcomer, "whoami", "--json").stdout)
    assert (whoami["username"], whoami["roles"]) == ("fin-accounts", ["finance"])  # access token: no e-mail

    moved = operator_cli(stack, admin, "operator", "set-role", "fin-accounts", "viewer")
    assert moved.returncode == 0, moved.stderr
    account = _accounts(stack, admin)["fin-accounts"]
    assert (account["roles"], account["email"], account["enabled"]) == (["viewer"], "fin@example.com", True)
    assert account["status"] == "CONFIRMED"

    # A technician may not invite: 403, nobody created, nothing recorded.
    technician = _operator(stack, "tech-accounts", "technician")
    status, answer = _call(
        f"{stack.operator_api_url}/operators",
        technician,
        "POST",
        {"username": "sneaky", "email": "s@example.com", "role": "admin"},
    )
    assert (status, answer["error"]) == (403, "forbidden")
    assert "sneaky" not in _accounts(stack, admin)

    assert operator_cli(stack, admin, "operator", "remove", "admin").returncode == 1  # not yourself
    removed = operator_cli(stack, admin, "operator", "remove", "fin-accounts")
    assert removed.returncode == 0, removed.stderr
    assert "fin-accounts" not in _accounts(stack, admin)
    refused = operator_cli(
        stack, newcomer, "login", "--username", "fin-accounts", "--password-stdin", stdin=NEW_PASSWORD + "\n"
    )
    assert refused.returncode == 1 and "sign-in failed" in refused.stderr
    users = _cognito(stack).list_users(UserPoolId=stack.operator_pool_id)["Users"]
    assert "fin-accounts" not in {u["Username"] for u in users}

    trail = json.loads(operator_cli(stack, admin, "audit", "list", "--json").stdout)
    mine = [
        (e["method"], e["route"], e["status"])
        for e in trail
        if e["targets"].get("username") == "fin-accounts"
    ]
    assert sorted(mine) == sorted(
        [
            ("POST", "/ops/v1/operators", 201),
            ("POST", "/ops/v1/operators", 409),
            ("PUT", "/ops/v1/operators/{username}/role", 200),
            ("DELETE", "/ops/v1/operators/{username}", 200),
        ]
    ), trail
    assert all(e["username"] != "tech-accounts" for e in trail)
    assert temporary not in json.dumps(trail)
