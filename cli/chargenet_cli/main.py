"""`chargenet`: the operator CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chargenet_cli import (
    charger_cmd,
    command_cmd,
    cost_cmd,
    diagnostics_cmd,
    fault_cmd,
    firmware_cmd,
    health_cmd,
    operator_cmd,
    payment_cmd,
    provisioning_cmd,
    report_cmd,
    session_cmd,
    site_cmd,
    subscriber_cmd,
    tariff_cmd,
)
from chargenet_cli.errors import CliError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="chargenet", description="chargenet operator CLI")
    root.add_argument(
        "--home", type=Path, default=None, help="local stack folder (default: $CHARGENET_HOME or ./.local)"
    )
    root.add_argument(
        "--stack",
        default=None,
        metavar="NAME",
        help="operator commands go to this deployed CloudFormation stack's operator API (default: the local stack)",
    )
    commands = root.add_subparsers(dest="command", required=True)
    _register_local_stack_commands(commands)
    charger_cmd.register(commands)
    site_cmd.register(commands)
    session_cmd.register(commands)
    command_cmd.register(commands)
    fault_cmd.register(commands)
    health_cmd.register(commands)
    report_cmd.register(commands)
    diagnostics_cmd.register(commands)
    firmware_cmd.register(commands)
    tariff_cmd.register(commands)
    subscriber_cmd.register(commands)
    payment_cmd.register(commands)
    cost_cmd.register(commands)
    provisioning_cmd.register(commands)
    operator_cmd.register(commands)
    return root


def _register_local_stack_commands(commands: argparse._SubParsersAction) -> None:
    """`local`, `demo` and `scenario` live with the local stack (chargenet_local.commands), not
    with the operator commands; they are offered where the local stack is installed."""
    try:
        from chargenet_local.commands import demo_cmd, local_cmd, scenario_cmd
    except ImportError:  # an operator's install without the local stack
        return
    local_cmd.register(commands)
    demo_cmd.register(commands)
    scenario_cmd.register(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        output = args.run(args)
    except CliError as exc:
        print(f"chargenet: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    if output:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
