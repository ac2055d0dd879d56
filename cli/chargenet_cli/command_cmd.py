"""`chargenet command send|list`: remote diagnostics and repair over IoT, with the charger's answer."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from chargenet.domain.models import PendingCall
from chargenet_cli import local_env
from chargenet_cli.diagnostics_cmd import upload_location
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.output import as_json, table

POLL_S = 0.2


def register(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("command", help="send OCPP commands to chargers and see their answers")
    sub = command.add_subparsers(dest="command_command", required=True)
    send = sub.add_parser(
        "send",
        help="send a command and wait for the answer",
        epilog='example: chargenet command send CP-001 Reset \'{"type": "Soft"}\'',
    )
    send.add_argument("charger_id")
    send.add_argument("action", help="Reset, UnlockConnector, ChangeAvailability, TriggerMessage, ...")
    send.add_argument("payload", nargs="?", default="{}", help="the OCPP payload as JSON (default {})")
    send.add_argument(
        "--wait", type=float, default=30, help="seconds to wait for the answer (0: do not wait)"
    )
    send.add_argument("--json", action="store_true")
    send.set_defaults(run=send_command)
    listing = sub.add_parser("list", help="commands sent to a charger and what became of them")
    listing.add_argument("charger_id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_commands)


def _service() -> Any:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry, DynamoPendingCalls
    from chargenet.adapters.iot_data import IotDataChannel
    from chargenet.domain.clock import utc_now
    from chargenet.services.commands import ChargerCommands

    return ChargerCommands(DynamoChargerRegistry(), DynamoPendingCalls(), IotDataChannel(), utc_now)


def send_command(args: argparse.Namespace) -> str:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        raise UsageError(f"payload is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise UsageError("payload must be a JSON object")
    if args.wait < 0:
        raise UsageError("--wait must be 0 or more seconds")
    local_env.connect(args.home)
    from chargenet.domain.clock import utc_now
    from chargenet.services.commands import CommandRefused

    upload_key = None
    if args.action == "GetDiagnostics" and "location" not in payload:
        # The charger PUTs its log straight into the diagnostics bucket through a pre-signed URL.
        upload_key, payload["location"] = upload_location(args.charger_id, utc_now())
    service = _service()
    try:
        call = service.send(args.charger_id, args.action, payload)
    except CommandRefused as exc:
        raise CliError(str(exc)) from exc
    if args.wait:
        call = _await_answer(service, call, args.wait)
    if args.json:
        return as_json(call.model_dump(mode="json"))
    if upload_key is None:
        return describe(call)
    return f"{describe(call)}\nuploads to {upload_key}: chargenet diagnostics get {args.charger_id}"


def _await_answer(service: Any, call: PendingCall, wait_s: float) -> PendingCall:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        current = service.pending.get(call.charger_id, call.message_id)
        if current is not None and current.outcome is not None:
            return current
        time.sleep(POLL_S)
    return service.time_out(call.charger_id, call.message_id) or call


def describe(call: PendingCall) -> str:
    outcome = call.outcome
    if outcome is None:
        answer = "sent, no answer yet"
    elif "result" in outcome:
        answer = f"answered {json.dumps(outcome['result'])}"
    elif "error" in outcome:
        answer = f"refused: {outcome['error']['code']} {outcome['error']['description']}".rstrip()
    else:
        answer = "no answer in time (recorded as timeout)"
    return f"{call.action} to {call.charger_id} ({call.message_id}): {answer}"


def list_commands(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    calls = _service().pending.of_charger(args.charger_id)
    if args.json:
        return as_json([c.model_dump(mode="json") for c in calls])
    rows = [
        (f"{c.sent_at:%Y-%m-%d %H:%M:%S}", c.action, c.message_id[:8], describe(c).split(": ", 1)[1])
        for c in calls
    ]
    return table(["SENT", "COMMAND", "ID", "OUTCOME"], rows)
