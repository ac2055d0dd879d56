"""`chargenet local up|down|status`."""

from __future__ import annotations

import argparse

from chargenet_cli.errors import CliError
from chargenet_cli.output import as_json
from chargenet_local.stack import (
    FIRST_ADMIN,
    FIRST_ADMIN_PASSWORD_FILE,
    NotAStackHome,
    StackNotRunning,
    StackState,
    default_home,
    default_template,
    down,
    read_state,
    reset,
    up,
)


def register(commands: argparse._SubParsersAction) -> None:
    local = commands.add_parser(
        "local", help="the local stack (mosquitto, moto, rules engine, functions, HTTP API, Stripe)"
    )
    sub = local.add_subparsers(dest="local_command", required=True)
    start = sub.add_parser("up", help="start the local stack in the background")
    start.add_argument("--json", action="store_true")
    start.set_defaults(run=local_up)
    stop = sub.add_parser("down", help="stop the local stack")
    stop.set_defaults(run=local_down)
    wipe = sub.add_parser(
        "reset", help="stop the local stack and wipe its data (chargers, sessions, payments, operators)"
    )
    wipe.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    wipe.set_defaults(run=local_reset)
    status = sub.add_parser("status", help="is it running, and its endpoints")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=local_status)


def local_up(args: argparse.Namespace) -> str:
    template = default_template()
    if not template.exists():
        raise CliError(f"no template at {template}: run from the project root or set CHARGENET_TEMPLATE")
    try:
        state = up(args.home or default_home(), template)
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        return as_json(endpoints(state))
    return f"local stack running\n{_describe(state)}{_sign_in_hint(state)}{console_hint(state)}"


def _sign_in_hint(state: StackState) -> str:
    """How the first operator signs in; the password stays in its file."""
    if not state.operator_pool_id:
        return ""
    password_file = f"{state.home}/{FIRST_ADMIN_PASSWORD_FILE}"
    return (
        f"\noperators: sign in with `chargenet login --username {FIRST_ADMIN}` (password in {password_file})"
    )


def console_hint(state: StackState) -> str:
    """Where the operator console is and who signs in to it (the stand-in login takes the same account)."""
    if not state.console_url:
        return ""
    password_file = f"{state.home}/{FIRST_ADMIN_PASSWORD_FILE}"
    return f"\nconsole: {state.console_url} (user `{FIRST_ADMIN}`, password in {password_file})"


def local_down(args: argparse.Namespace) -> str:
    stopped = down(args.home or default_home())
    return "local stack stopped" if stopped else "local stack was not running"


def local_reset(args: argparse.Namespace) -> str:
    home = args.home or default_home()
    if not args.yes:
        question = f"wipe the local stack in {home}: every charger, certificate, session, payment and operator? [y/N] "
        if input(question).strip().lower() not in ("y", "yes"):
            return "nothing wiped"
    try:
        wiped = reset(home)
    except NotAStackHome as exc:
        raise CliError(str(exc)) from exc
    return "local stack wiped: the next `chargenet local up` starts a new one" if wiped else "nothing to wipe"


def local_status(args: argparse.Namespace) -> str:
    try:
        state = read_state(args.home or default_home())
    except StackNotRunning as exc:
        raise CliError(str(exc)) from exc
    return as_json(endpoints(state)) if args.json else f"local stack running\n{_describe(state)}"


def endpoints(state: StackState) -> dict[str, object]:
    return {
        "status": state.status,
        "pid": state.pid,
        "region": state.region,
        "home": state.home,
        "mqtt": f"mqtts://{state.mqtt_host}:{state.mqtt_port}",
        "mqtt_ca": state.ca_path,
        "moto": state.moto_url,
        "iot_data": state.iot_data_url,
        "ingest_rule": state.ingest_rule,
        "charger_policy": state.charger_policy,
        "tables": state.tables,
        "queues": state.queues,
        "topics": state.topics,
        "buckets": state.buckets,
        "secrets": state.secrets,
        "api": state.api_url,
        "stripe_api_base": state.stripe_api_base,
        "checkout": state.checkout_url,
        "localstripe": state.localstripe_url,
        "operator_pool_id": state.operator_pool_id,
        "operator_client_id": state.operator_client_id,
        "operator_api": state.operator_api_url,
        "console": state.console_url,
    }


def _describe(state: StackState) -> str:
    info = endpoints(state)
    keys = ("mqtt", "moto", "iot_data", "api", "console", "stripe_api_base", "mqtt_ca", "home")
    return "\n".join(f"  {key:<16}{info[key]}" for key in keys)
