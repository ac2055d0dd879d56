"""`chargenet command send|list`: remote diagnostics and repair over the operator API, with the
charger's answer (the API sends the way the backend calls a charger: in the charger's OCPP version,
a pending call, an IoT publish; a command of the other version is refused, naming the right one)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from urllib.parse import quote

from chargenet_cli.errors import UsageError
from chargenet_cli.operator_api import OperatorApi
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table

POLL_S = 0.2


def register(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("command", help="send OCPP commands to chargers and see their answers")
    sub = command.add_subparsers(dest="command_command", required=True)
    send = sub.add_parser(
        "send",
        help="send a command and wait for the answer",
        epilog='examples: chargenet command send CP-001 Reset \'{"type": "Soft"}\' (OCPP 1.6); '
        'chargenet command send CP-201 GetBaseReport \'{"requestId": 1, "reportBase": "FullInventory"}\' '
        "(OCPP 2.0.1: `chargenet charger show` says which version a charger speaks)",
    )
    send.add_argument("charger_id")
    send.add_argument(
        "action",
        help="in the charger's OCPP version: Reset, UnlockConnector, ChangeAvailability, TriggerMessage, "
        "GetConfiguration (1.6), GetVariables, SetVariables, GetBaseReport, GetLog (2.0.1), ...",
    )
    send.add_argument("payload", nargs="?", default="{}", help="the OCPP payload as JSON (default {})")
    wait_option(send)
    send.add_argument("--json", action="store_true")
    send.set_defaults(run=send_command)
    listing = sub.add_parser("list", help="commands sent to a charger and what became of them")
    listing.add_argument("charger_id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_commands)


def wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", type=float, default=30, help="seconds to wait for the answer (0: do not wait)"
    )


def commands_path(charger_id: str) -> str:
    return f"/chargers/{quote(charger_id, safe='')}/commands"


def send_command(args: argparse.Namespace) -> str:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        raise UsageError(f"payload is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise UsageError("payload must be a JSON object")
    check_wait(args.wait)
    client = api(args)
    body = {"action": args.action, "payload": payload}
    call = client.post(commands_path(args.charger_id), body, action="send commands")
    return answered(client, call, args)


def check_wait(wait_s: float) -> None:
    if wait_s < 0:
        raise UsageError("--wait must be 0 or more seconds")


def answered(client: OperatorApi, call: dict[str, Any], args: argparse.Namespace) -> str:
    """The call once answered (or timed out after --wait), as text or JSON."""
    upload_key = call.pop("upload_key", None)
    if args.wait:
        call = await_answer(client, call, args.wait)
    if args.json:
        return as_json(call)
    if upload_key is None:
        return describe(call)
    return f"{describe(call)}\nuploads to {upload_key}: chargenet diagnostics get {args.charger_id}"


def await_answer(client: OperatorApi, call: dict[str, Any], wait_s: float) -> dict[str, Any]:
    path = f"{commands_path(call['charger_id'])}/{call['message_id']}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        current: dict[str, Any] = client.get(path, action="read commands")
        if current.get("outcome") is not None:
            return current
        time.sleep(POLL_S)
    timed_out: dict[str, Any] = client.post(f"{path}/timeout", action="send commands")
    return timed_out


def describe(call: dict[str, Any]) -> str:
    outcome = call.get("outcome")
    if outcome is None:
        answer = "sent, no answer yet"
    elif "result" in outcome:
        answer = f"answered {json.dumps(outcome['result'])}"
    elif "error" in outcome:
        answer = f"refused: {outcome['error']['code']} {outcome['error']['description']}".rstrip()
    else:
        answer = "no answer in time (recorded as timeout)"
    return f"{call['action']} to {call['charger_id']} ({call['message_id']}): {answer}"


def list_commands(args: argparse.Namespace) -> str:
    pages = api(args).paginate(commands_path(args.charger_id), action="read commands")
    calls = sorted(pages, key=lambda c: str(c["sent_at"]))
    if args.json:
        return as_json(calls)
    rows = [
        (_sent(c["sent_at"]), c["action"], c["message_id"][:8], describe(c).split(": ", 1)[1]) for c in calls
    ]
    return table(["SENT", "COMMAND", "ID", "OUTCOME"], rows)


def _sent(at: str) -> str:
    """`2026-12-07T10:15:00Z` as the table shows it: 2026-12-07 10:15:00."""
    return at.replace("T", " ")[:19]
