"""`chargenet demo`: the whole foundation in one run (what `make run` does).

Starts the local stack, provisions N chargers (key pair per charger, certificate
from the CA), connects each over mutual TLS, boots it, sends its statuses, then
prints the fleet as the registry in DynamoDB holds it, and stops the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chargenet_cli import local_env
from chargenet_cli.charger_cmd import charger_record, fleet_table
from chargenet_cli.errors import CliError
from chargenet_local.stack import StackState, default_home, default_template, down, up

SETTLE_TIMEOUT_S = 60


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="start the local stack, connect a simulated fleet, show it, stop")
    demo.add_argument("--chargers", type=int, default=10)
    demo.add_argument("--keep", action="store_true", help="leave the local stack running afterwards")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> str:
    if not 1 <= args.chargers <= 500:
        raise CliError("--chargers must be between 1 and 500")
    home = args.home or default_home()
    say = _stepper()
    say("starting the local stack (mosquitto mTLS, moto, rules engine, functions)")
    try:
        up(home, default_template())
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    try:
        state = local_env.connect(home)
        return _run(state, args.chargers, say)
    finally:
        if not args.keep:
            say("stopping the local stack")
            down(home)


def _run(state: StackState, count: int, say: Callable[[str], None]) -> str:
    from chargenet_cli.provisioning import charger_dir, provision
    from chargenet_shim.credentials import ChargerCredentials

    ids = [f"CP-{n:03d}" for n in range(1, count + 1)]
    say(f"provisioning {count} chargers: key pair on the device side, CSR signed by the CA, thing + policy")
    for charger_id in ids:
        if not (charger_dir(state, charger_id) / "charger.json").exists() or _unregistered(charger_id):
            provision(state, charger_id, site_id=f"SITE-{(int(charger_id[3:]) - 1) // 5 + 1}")
    credentials = [ChargerCredentials.load(charger_dir(state, charger_id)) for charger_id in ids]
    say(f"connecting {count} chargers over mutual TLS; each boots and reports its connectors")
    records: list[dict[str, Any]] = []

    async def while_connected() -> None:
        records.extend(await asyncio.to_thread(_wait_for_registry, ids, say))

    results = asyncio.run(_fleet(credentials, say, while_connected))
    failed = [r for r in results if r.error]
    report = fleet_table(records)
    rtts = sorted(r.boot_rtt_ms for r in results if r.boot_rtt_ms is not None)
    summary = f"\n{count - len(failed)}/{count} chargers booted"
    if rtts:
        summary += (
            f"; boot round trip (charger -> IoT rule -> Lambda -> reply) median {rtts[len(rtts) // 2]:.0f} ms"
        )
    if failed:
        summary += "\n" + "\n".join(f"  {r.charger_id}: {r.error}" for r in failed)
        raise CliError(report + summary)
    return report + summary


async def _fleet(
    credentials: list[Any], say: Callable[[str], None], hold: Callable[[], Awaitable[None]]
) -> list[Any]:
    from chargenet_shim.fleet import run_fleet

    done: set[str] = set()

    def progress(charger_id: str, stage: str) -> None:
        if stage in ("done", "failed"):
            done.add(charger_id)
            say(f"  [{len(done):>3}/{len(credentials)}] {charger_id} {stage}")

    return await run_fleet(credentials, on_progress=progress, hold=hold)


def _unregistered(charger_id: str) -> bool:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    return DynamoChargerRegistry().get(charger_id) is None


def _wait_for_registry(ids: list[str], say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Poll DynamoDB until every charger's boot, statuses and presence have landed."""
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    registry = DynamoChargerRegistry()
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        chargers = [registry.get(charger_id) for charger_id in ids]
        records = [charger_record(c, registry.connectors(c.charger_id)) for c in chargers if c]
        settled = [r for r in records if r["vendor"] and r["connectors"] and r["online"]]
        if len(settled) == len(ids) or time.monotonic() > deadline:
            say(
                f"registry: {len(settled)}/{len(ids)} chargers online, booted, connector statuses in DynamoDB"
            )
            return records
        time.sleep(0.5)


def _stepper() -> Callable[[str], None]:
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    return say
