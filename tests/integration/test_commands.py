"""Operator commands through IoT to a charger, correlated with its answer, on the real stack."""

from __future__ import annotations

import asyncio
import json

from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import RawCharger


def test_commands_get_their_answer_an_error_or_a_timeout(stack, new_charger):
    credentials = new_charger()

    async def run():
        async with RawCharger(credentials) as charger:

            async def answer(reply) -> dict:
                sending = asyncio.create_task(asyncio.to_thread(cli, stack.home, *reply["cli"]))
                call = await charger.reply()  # the CALL the backend sent
                if reply["answer"] is not None:
                    await charger.send(reply["answer"](call[1]))
                return json.loads((await sending).stdout) | {"frame": call}

            accepted = await answer(
                {
                    "cli": ["command", "send", credentials.charger_id, "Reset", '{"type": "Soft"}', "--json"],
                    "answer": lambda mid: [3, mid, {"status": "Accepted"}],
                }
            )
            refused = await answer(
                {
                    "cli": [
                        "command",
                        "send",
                        credentials.charger_id,
                        "UnlockConnector",
                        '{"connectorId": 1}',
                        "--json",
                    ],
                    "answer": lambda mid: [4, mid, "NotSupported", "no lock", {}],
                }
            )
            silent = await answer(
                {
                    "cli": ["command", "send", credentials.charger_id, "ClearCache", "--wait", "1", "--json"],
                    "answer": None,
                }
            )
            return accepted, refused, silent

    accepted, refused, silent = asyncio.run(run())
    assert accepted["frame"][2:] == ["Reset", {"type": "Soft"}]
    assert accepted["outcome"] == {"result": {"status": "Accepted"}}
    assert refused["outcome"] == {"error": {"code": "NotSupported", "description": "no lock"}}
    assert silent["outcome"] == {"timeout": True}
    listed = json.loads(cli(stack.home, "command", "list", credentials.charger_id, "--json").stdout)
    assert [c["action"] for c in listed] == ["Reset", "UnlockConnector", "ClearCache"]


def test_bad_commands_are_refused_before_anything_is_sent(stack, new_charger):
    credentials = new_charger()
    schema = cli(stack.home, "command", "send", credentials.charger_id, "Reset", '{"type": "Gentle"}')
    assert schema.returncode == 1 and "payload refused" in schema.stderr
    unknown = cli(stack.home, "command", "send", "CP-nobody", "Reset", '{"type": "Soft"}')
    assert unknown.returncode == 1 and "no charger CP-nobody" in unknown.stderr
    not_json = cli(stack.home, "command", "send", credentials.charger_id, "Reset", "{type}")
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    assert json.loads(cli(stack.home, "command", "list", credentials.charger_id, "--json").stdout) == []
