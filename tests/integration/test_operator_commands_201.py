"""Commands to an OCPP 2.0.1 charger through the operator API on the real local stack: the charger
boots on the 2.0.1 ingest rule's topic, a technician signed in with the CLI resets it, reads a
variable and fetches its log, each in 2.0.1, and its answers are matched to the calls; a 1.6
command is refused (a non-zero exit naming the 2.0.1 one) and nothing reaches the charger."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from chargenet_shim.ocpp_version import OcppVersion
from tests.integration.cli_in_process import operator_cli as _cli
from tests.integration.conftest import RawCharger, registry
from tests.integration.test_operator_commands import LOG, _signed_in, _upload

BOOT = {"reason": "PowerUp", "chargingStation": {"model": "AC-22", "vendorName": "ACME"}}
HEARTBEAT_INTERVAL = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}


async def answer_next(charger: RawCharger, payload: dict[str, Any]) -> list[Any]:
    """The next CALL the backend sends the charger, answered with `payload`."""
    call = await charger.reply()
    await charger.send([3, call[1], payload])
    return call


def test_a_2_0_1_charger_is_reset_and_read_in_2_0_1_and_its_answers_are_matched(stack, new_charger, tmp_path):
    config = tmp_path / "technician"
    _signed_in(stack, config, "tech-commands-201", "technician")
    credentials = new_charger()
    charger_id = credentials.charger_id

    def cli(*args: str) -> Any:
        return asyncio.to_thread(_cli, stack, config, *args)

    async def scenario() -> dict[str, Any]:
        async with RawCharger(credentials, OcppVersion.V201) as charger:
            await charger.send([2, "boot-1", "BootNotification", BOOT])
            booted = await charger.reply()
            assert booted[:2] == [3, "boot-1"] and booted[2]["status"] == "Accepted", booted

            resetting = asyncio.create_task(
                cli("command", "send", charger_id, "Reset", '{"type": "Immediate"}', "--json")
            )
            reset = await answer_next(charger, {"status": "Accepted"})
            reading = asyncio.create_task(
                cli(
                    "command",
                    "send",
                    charger_id,
                    "GetVariables",
                    json.dumps({"getVariableData": [HEARTBEAT_INTERVAL]}),
                    "--json",
                )
            )
            read = await answer_next(
                charger,
                {
                    "getVariableResult": [
                        {"attributeStatus": "Accepted", "attributeValue": "300", **HEARTBEAT_INTERVAL}
                    ]
                },
            )
            refused = await cli("command", "send", charger_id, "GetConfiguration", "{}")
            await charger.no_reply()

            requesting = asyncio.create_task(cli("diagnostics", "request", charger_id, "--wait", "10"))
            get_log = await charger.reply()
            await asyncio.to_thread(_upload, get_log[3]["log"]["remoteLocation"], LOG.encode())
            await charger.send([3, get_log[1], {"status": "Accepted", "filename": "diag.log"}])
            return {
                "reset": (reset, await resetting),
                "read": (read, await reading),
                "refused": refused,
                "get_log": (get_log, await requesting),
            }

    done = asyncio.run(scenario())

    reset_call, reset_cli = done["reset"]
    assert reset_call[2:] == ["Reset", {"type": "Immediate"}]
    assert reset_cli.returncode == 0, reset_cli.stderr
    assert json.loads(reset_cli.stdout)["outcome"] == {"result": {"status": "Accepted"}}  # valid in 2.0.1

    read_call, read_cli = done["read"]
    assert read_call[2] == "GetVariables" and read_cli.returncode == 0, read_cli.stderr
    [variable] = json.loads(read_cli.stdout)["outcome"]["result"]["getVariableResult"]
    assert variable["attributeValue"] == "300" and "invalid" not in json.loads(read_cli.stdout)["outcome"]

    refused = done["refused"]
    assert refused.returncode != 0 and "send GetVariables" in refused.stderr, refused.stderr

    get_log, requested = done["get_log"]
    assert (get_log[2], get_log[3]["logType"]) == ("GetLog", "DiagnosticsLog")
    assert requested.returncode == 0 and 'answered {"status": "Accepted"' in requested.stdout, (
        requested.stderr
    )
    printed = _cli(stack, config, "diagnostics", "get", charger_id)
    assert (printed.returncode, printed.stdout) == (0, LOG), printed.stderr

    history = json.loads(_cli(stack, config, "command", "list", charger_id, "--json").stdout)
    assert [c["action"] for c in history] == ["Reset", "GetVariables", "GetLog"]
    assert "X-Amz-Signature" not in json.dumps(history)  # the history keeps no pre-signed URL
    shown = json.loads(_cli(stack, config, "charger", "show", charger_id, "--json").stdout)
    assert shown["ocpp_version"] == registry().get(charger_id).ocpp_version == "ocpp2.0.1"
