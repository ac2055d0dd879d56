"""An operator journey on the real local stack: sign in with the CLI through moto's Cognito, then
the operator API behind the local JWT check: a technician acknowledges a real charger's fault, a
viewer's attempt is refused and changes nothing, and the audit trail holds exactly the change."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from chargenet_local.stack import StackState
from tests.integration.cli_in_process import operator_cli
from tests.integration.conftest import RawCharger, eventually

PASSWORD = "Operator-Journey-2026!"


def _cognito(stack: StackState) -> Any:
    return boto3.client("cognito-idp", region_name=stack.region, endpoint_url=stack.moto_url)


def _operator(stack: StackState, username: str, group: str) -> str:
    """An operator in `group`, as an admin adds one; their access token."""
    cognito = _cognito(stack)
    cognito.admin_create_user(UserPoolId=stack.operator_pool_id, Username=username, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(
        UserPoolId=stack.operator_pool_id, Username=username, Password=PASSWORD, Permanent=True
    )
    cognito.admin_add_user_to_group(UserPoolId=stack.operator_pool_id, Username=username, GroupName=group)
    answer = cognito.initiate_auth(
        ClientId=stack.operator_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    return str(answer["AuthenticationResult"]["AccessToken"])


def _call(url: str, token: str, method: str = "GET", body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _faulted_charger(new_charger: Any) -> str:
    credentials = new_charger()

    async def report() -> None:
        async with RawCharger(credentials) as charger:
            await charger.send(
                [
                    2,
                    "b1",
                    "BootNotification",
                    {"chargePointVendor": "chargenet", "chargePointModel": "SimCharger"},
                ]
            )
            await charger.reply()
            status = {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"}
            await charger.send([2, "s1", "StatusNotification", status])
            await charger.reply()

    asyncio.run(report())
    return credentials.charger_id


def test_a_technician_acknowledges_a_fault_a_viewer_cannot_and_the_audit_shows_it(
    stack: StackState, new_charger: Any, tmp_path: Path
) -> None:
    # An admin of its own: its logout at the end signs every token of its account out, and the
    # stack's first admin is the one this test process's other CLI calls use.
    _operator(stack, "admin-journey", "admin")
    signed_in = operator_cli(
        stack, tmp_path, "login", "--username", "admin-journey", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert signed_in.returncode == 0, signed_in.stderr
    whoami = json.loads(operator_cli(stack, tmp_path, "whoami", "--json").stdout)
    assert whoami["username"] == "admin-journey" and "admin" in whoami["roles"]

    charger_id = _faulted_charger(new_charger)
    technician = _operator(stack, "tech-journey", "technician")
    viewer = _operator(stack, "viewer-journey", "viewer")
    api = stack.operator_api_url

    def open_fault() -> dict[str, Any] | None:
        status, page = _call(f"{api}/faults?open=true&limit=200", technician)
        assert status == 200, page
        return next((f for f in page["items"] if f["charger_id"] == charger_id), None)

    fault = eventually(open_fault, timeout=20)
    ack = f"{api}/faults/{fault['fault_id']}/ack"
    assert _call(ack, viewer, "POST", {"note": "not mine"})[0] == 403
    assert open_fault()["acknowledged_by"] is None
    status, answer = _call(ack, technician, "POST", {"note": "on site tomorrow"})
    assert status == 200, answer
    assert open_fault()["acknowledged_by"] == "tech-journey"

    trail = json.loads(operator_cli(stack, tmp_path, "audit", "list", "--json").stdout)
    mine = [entry for entry in trail if fault["fault_id"] in json.dumps(entry)]
    assert len(mine) == 1, trail
    assert mine[0]["username"] == "tech-journey" and mine[0]["status"] == 200
    # The viewer is not a technician, and nothing it was refused is in the trail.
    assert all(entry["username"] != "viewer-journey" for entry in trail)
    assert operator_cli(stack, tmp_path, "logout").returncode == 0
    assert operator_cli(stack, tmp_path, "whoami").returncode != 0
