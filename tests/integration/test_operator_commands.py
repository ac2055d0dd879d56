"""Commands, diagnostics and firmware through the operator API on the real local stack: a technician
signed in with the CLI resets a connected charger and fetches its diagnostics; finance may not
send a command (nothing is sent) and a viewer may not deploy firmware (no job)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from chargenet_local.stack import StackState
from tests.integration.cli_in_process import operator_cli as _cli
from tests.integration.conftest import RawCharger
from tests.integration.test_operator_journey import PASSWORD, _call, _operator

LOG = "boot ok\nconnector 1: contactor weld check passed\n"


def _signed_in(stack: StackState, config: Path, username: str, group: str) -> None:
    _operator(stack, username, group)
    done = _cli(stack, config, "login", "--username", username, "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr


def _upload(location: str, body: bytes) -> None:
    """What the charger does with GetDiagnostics' location: one HTTP PUT, no AWS credentials."""
    headers = {"Content-Type": "text/plain"}  # not urllib's default form type, which a server may parse
    request = urllib.request.Request(location, data=body, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=30):
        pass


def test_a_technician_resets_a_charger_and_fetches_its_diagnostics(stack, new_charger, tmp_path):
    config = tmp_path / "technician"
    _signed_in(stack, config, "tech-commands", "technician")
    credentials = new_charger()
    charger_id = credentials.charger_id

    async def scenario() -> tuple[dict[str, Any], list[Any], str]:
        async with RawCharger(credentials) as charger:
            send = ["command", "send", charger_id, "Reset", '{"type": "Soft"}', "--json"]
            sending = asyncio.create_task(asyncio.to_thread(_cli, stack, config, *send))
            reset = await charger.reply()
            await charger.send([3, reset[1], {"status": "Accepted"}])
            done = await sending
            assert done.returncode == 0, done.stderr

            requesting = asyncio.create_task(
                asyncio.to_thread(_cli, stack, config, "diagnostics", "request", charger_id, "--wait", "10")
            )
            diagnostics = await charger.reply()
            location = diagnostics[3]["location"]
            await asyncio.to_thread(_upload, location, LOG.encode())
            await charger.send([3, diagnostics[1], {"fileName": "diag.log"}])
            requested = await requesting
            assert requested.returncode == 0, requested.stderr
            return json.loads(done.stdout), diagnostics, requested.stdout

    answered, diagnostics, requested = asyncio.run(scenario())

    assert answered["outcome"] == {"result": {"status": "Accepted"}}
    assert diagnostics[2] == "GetDiagnostics"
    assert f"chargenet diagnostics get {charger_id}" in requested and 'answered {"fileName"' in requested
    listed = json.loads(_cli(stack, config, "diagnostics", "list", charger_id, "--json").stdout)
    assert [f["bytes"] for f in listed] == [len(LOG)]
    printed = _cli(stack, config, "diagnostics", "get", charger_id)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == LOG, printed.stderr
    history = json.loads(_cli(stack, config, "command", "list", charger_id, "--json").stdout)
    assert [c["action"] for c in history] == ["Reset", "GetDiagnostics"]
    assert "X-Amz-Signature" not in json.dumps(history)  # the history keeps no pre-signed URL


def test_finance_cannot_send_a_command_and_nothing_reaches_the_charger(stack, new_charger):
    finance = _operator(stack, "finance-commands", "finance")
    credentials = new_charger()
    charger_id = credentials.charger_id

    async def scenario() -> tuple[int, Any]:
        async with RawCharger(credentials) as charger:
            url = f"{stack.operator_api_url}/chargers/{charger_id}/commands"
            answer = await asyncio.to_thread(
                _call, url, finance, "POST", {"action": "Reset", "payload": {"type": "Soft"}}
            )
            await charger.no_reply(2.0)  # nothing published to the charger
            return answer

    status, body = asyncio.run(scenario())

    assert (status, body["error"]) == (403, "forbidden")
    pending = boto3.resource("dynamodb", region_name=stack.region, endpoint_url=stack.moto_url).Table(
        stack.tables["PendingCallsTable"]
    )
    assert pending.query(KeyConditionExpression=Key("charger_id").eq(charger_id))["Items"] == []


def test_a_viewer_reads_firmware_status_but_cannot_deploy(stack, new_charger):
    viewer = _operator(stack, "viewer-firmware", "viewer")
    charger_id = new_charger().charger_id
    iot = boto3.client("iot", region_name=stack.region, endpoint_url=stack.moto_url)
    jobs_before = iot.list_jobs()["jobs"]

    status, body = _call(
        f"{stack.operator_api_url}/firmware/deployments",
        viewer,
        "POST",
        {"version": "1.1.0", "chargers": [charger_id]},
    )

    assert (status, body["error"]) == (403, "forbidden")
    assert iot.list_jobs()["jobs"] == jobs_before
    assert _call(f"{stack.operator_api_url}/firmware/status", viewer)[0] == 200
