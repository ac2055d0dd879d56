"""`chargenet demo`: the network in one run (what `make run` does).

Starts the local stack, provisions N chargers (key pair per charger, certificate from
the CA), stores the example tariff as the network default and an RFID tag per driver,
connects each charger over mutual TLS (every third speaks OCPP 2.0.1, the others 1.6: one
network, two protocols), boots it, runs charging sessions on accelerated
simulated time (SoC taper, periodic meter values, idle time before unplugging), runs a
scripted fault scenario on four more chargers (demo_faults.py), waits until every session
is billed, rotates a charger's certificate and rolls signed firmware out to part of a site,
a tampered image refused (demo_security.py), has drivers pay through the pay link and
reconciles their captures with Stripe (demo_payments.py), has subscribers charge by tag and
pay their monthly invoices, reconciled with Stripe too (demo_subscribers.py), prints what
each part did, and stops the stack. The fleet (with the faults), security, payments and
subscribers are independent scenes on chargers of their own: they run at once, each progress line
led by its scene, the report in the order above.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from chargenet.services.operator_api import charger_record
from chargenet_cli import local_env
from chargenet_cli.charger_cmd import fleet_table
from chargenet_cli.errors import CliError
from chargenet_cli.output import table
from chargenet_local.commands.demo_faults import DEMO_PARAMETERS, DEMO_SCHEDULE_EVERY_S, run_faults
from chargenet_local.commands.demo_payments import run_payments
from chargenet_local.commands.demo_security import run_security
from chargenet_local.commands.demo_subscribers import run_subscribers
from chargenet_local.commands.local_cmd import console_hint
from chargenet_local.operator_sign_in import sign_in_first_admin
from chargenet_local.stack import StackState, default_home, default_template, down, up

SETTLE_TIMEOUT_S = 120
# The longest scene's tag, "subscribers:": the scenes' progress lines start in one column.
SCENE_TAG_WIDTH = 12
RATED_POWER_KW = 22
# The fleet's OCPP versions, repeated over its chargers: every third speaks 2.0.1 (3 of 10).
FLEET_VERSIONS = ("ocpp1.6", "ocpp1.6", "ocpp2.0.1")
# Beside the template: the demo runs from a checkout of the project.
EXAMPLE_TARIFF = Path("docs") / "tariffs" / "example-tariff.json"
Say = Callable[[str], None]


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="start the local stack, run a simulated fleet with billed sessions, stop"
    )
    demo.add_argument("--chargers", type=int, default=10)
    demo.add_argument("--sessions", type=int, default=1, help="sessions per charger (0: boot only)")
    demo.add_argument("--speed", type=float, default=600, help="simulated seconds per real second")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--keep", action="store_true", help="leave the local stack running afterwards")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> str:
    if not 1 <= args.chargers <= 500:
        raise CliError("--chargers must be between 1 and 500")
    if not 0 <= args.sessions <= 20 or args.speed <= 0:
        raise CliError("--sessions must be 0-20 and --speed positive")
    home = args.home or default_home()
    if not default_template().exists():
        raise CliError(
            f"no template at {default_template()}: run from the project root or set CHARGENET_TEMPLATE"
        )
    say = _stepper()
    say("starting the local stack (mosquitto mTLS, moto, rules engine, functions, stream, schedules)")
    os.environ.setdefault("CHARGENET_PARAMETERS", DEMO_PARAMETERS)
    os.environ.setdefault("CHARGENET_SCHEDULE_EVERY_S", DEMO_SCHEDULE_EVERY_S)
    try:
        up(home, default_template())
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    try:
        state = local_env.connect(home)
        # The operator commands the demo shows go through the operator API, as an admin's would.
        say("signing in to the operator API as the stack's first admin")
        sign_in_first_admin(state)
        return _run(state, args, say) + _console_ending(state, args.keep)
    finally:
        if not args.keep:
            say("stopping the local stack")
            down(home)


def _console_ending(state: StackState, keep: bool) -> str:
    """Last lines: the operator console of this stack, and how to keep it up to look at it."""
    hint = console_hint(state).strip()
    if not hint:
        return ""
    if keep:
        return f"\n\n{hint}\n(`chargenet local down` stops the stack)"
    return f"\n\n{hint}\n(the stack stops now: `chargenet demo --keep` leaves it running, or `chargenet local up`)"


def _run(state: StackState, args: argparse.Namespace, say: Say) -> str:
    ids = [f"CP-{n:03d}" for n in range(1, args.chargers + 1)]
    say(
        f"provisioning {len(ids)} chargers: key pair on the device side, CSR signed by the CA, thing + policy"
    )
    # Provisioned and priced here, before the scenes start: the first AWS clients are made in one
    # thread (boto3's default session is not safe to set up from several at once).
    credentials = _provision(state, ids)
    tariff_id = _price_list(say)
    plans = _plans(ids, args.sessions, random.Random(args.seed))
    versions = [FLEET_VERSIONS[n % len(FLEET_VERSIONS)] for n in range(len(ids))]
    fleet = Fleet(ids, credentials, plans, versions, tariff_id)
    # Independent scenes on chargers of their own, run at once; the report keeps this order. Last,
    # the money: what drivers paid through the link and subscribers were invoiced, each reconciled
    # with the Stripe emulator.
    return _concurrently(
        {
            "fleet": lambda tagged: _fleet(state, args, fleet, tagged, _tagged(say, "faults")),
            "security": lambda tagged: run_security(state, tagged),
            "payments": lambda tagged: run_payments(state, args.speed, tagged),
            "subscribers": lambda tagged: run_subscribers(state, args.speed, tagged),
        },
        say,
    )


@dataclass(frozen=True)
class Fleet:
    """The demo's CP- chargers: their credentials, session plans and OCPP versions, in id order."""

    ids: list[str]
    credentials: list[Any]
    plans: list[list[Any]]
    versions: list[str]
    tariff_id: str


def _fleet(state: StackState, args: argparse.Namespace, fleet: Fleet, say: Say, faults_say: Say) -> str:
    """The fleet's sessions, with the fault scenario run while it stays connected; their report."""
    spoken = ", ".join(f"{n} OCPP {_short(v)}" for v, n in collections.Counter(fleet.versions).items())
    say(
        f"connecting {len(fleet.ids)} chargers over mutual TLS ({spoken}); "
        f"{len(fleet.ids) * args.sessions} sessions at {args.speed:g}x"
    )
    fleet_records: list[dict[str, Any]] = []
    fault_report: list[str] = []

    async def faults(_: list[Any]) -> None:
        # While the fleet charges and stays connected: only the injected faults are news to operators.
        faults_say("a scripted scenario on four more chargers while the fleet stays connected")
        fault_report.append(await asyncio.to_thread(run_faults, state, fleet.ids, faults_say))

    async def while_connected() -> None:
        fleet_records.extend(await asyncio.to_thread(_wait_for_registry, fleet.ids, say))

    outcomes = asyncio.run(
        _drive(fleet.credentials, fleet.plans, fleet.versions, args.speed, say, while_connected, faults)
    )
    failed = [o for o in outcomes if not hasattr(o, "transaction_id")]
    report = (
        fleet_table(fleet_records)
        + "\n\n"
        + _versions_report(fleet_records, dict(zip(fleet.ids, fleet.versions, strict=True)))
    )
    if args.sessions:
        report += "\n\n" + _billing_report(
            [o for o in outcomes if hasattr(o, "transaction_id")], fleet.tariff_id, say
        )
    report += "\n\n" + "\n".join(fault_report)
    if failed:
        raise CliError(report + "\n" + "\n".join(f"  {f.charger_id}: {f.error}" for f in failed))
    return report


def _concurrently(scenes: dict[str, Callable[[Say], str]], say: Say) -> str:
    """Each scene in its own thread, its progress tagged with its name; their reports in the order
    given, a failed scene's error in its place (and then the demo fails)."""
    with ThreadPoolExecutor(max_workers=len(scenes), thread_name_prefix="demo") as pool:
        running = [pool.submit(scene, _tagged(say, name)) for name, scene in scenes.items()]
    reports, failed = [], False
    for scene in running:
        try:
            reports.append(scene.result())
        except CliError as exc:
            reports.append(str(exc))
            failed = True
    if failed:
        raise CliError("\n\n".join(reports))
    return "\n\n".join(reports)


def _tagged(say: Say, scene: str) -> Say:
    """Progress lines of concurrent scenes, each led by its scene (once: "payments: ..." is not
    tagged twice), so that a reader can follow one scene through the interleaved lines."""
    lead = f"{scene}:"

    def tagged(message: str) -> None:
        say(f"{lead:<{SCENE_TAG_WIDTH}} {message.removeprefix(lead + ' ')}")

    return tagged


def _provision(state: StackState, ids: list[str]) -> list[Any]:
    from chargenet_cli.provisioning import charger_dir, provision
    from chargenet_shim.credentials import ChargerCredentials

    for charger_id in ids:
        if _unregistered(charger_id):
            site = f"SITE-{(int(charger_id[3:]) - 1) // 5 + 1}"
            provision(state, charger_id, site_id=site, rated_power_w=RATED_POWER_KW * 1000)
    return [ChargerCredentials.load(charger_dir(state, charger_id)) for charger_id in ids]


def _price_list(say: Say) -> str:
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTariffBook
    from chargenet.domain.clock import utc_now
    from chargenet.domain.tariffs import describe, load_tariff, price_display

    tariff = load_tariff((default_template().parent / EXAMPLE_TARIFF).read_text())
    book = DynamoTariffBook()
    book.store(tariff.id, tariff.model_dump_json(exclude_none=True), utc_now())
    book.assign(tariff.id)
    say(f"network tariff {tariff.id}: " + "; ".join(describe(price_display(tariff, utc_now()))))
    return tariff.id


def _plans(ids: list[str], sessions: int, rng: random.Random) -> list[list[Any]]:
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory
    from chargenet.domain.models import TagStatus
    from chargenet_shim.sim.session import sample_plan

    tags = DynamoTagDirectory()
    plans = []
    for n, _ in enumerate(ids, start=1):
        tag = f"DEMO-{n:04d}"
        tags.put(tag, TagStatus.ACCEPTED, max_concurrent=2, expires_at=None)
        plans.append(
            [
                sample_plan(rng, connector_id=1 + k % 2, rated_power_kw=RATED_POWER_KW).model_copy(
                    update={"id_tag": tag, "meter_interval_s": 300}
                )
                for k in range(sessions)
            ]
        )
    return plans


def _short(version: str) -> str:
    return version.removeprefix("ocpp")


def _versions_report(records: list[dict[str, Any]], spoken: dict[str, str]) -> str:
    """Which version each charger speaks, as the registry recorded it at its boot (no version
    recorded: 1.6, from before versions were); a charger recorded otherwise than it spoke is named."""
    recorded = {r["charger_id"]: r.get("ocpp_version") or "ocpp1.6" for r in records}
    lines = [
        f"OCPP {_short(version)}: " + ", ".join(c for c in spoken if recorded.get(c) == version)
        for version in dict.fromkeys(spoken.values())
    ]
    wrong = [
        f"{c} spoke {_short(v)}, registry says {recorded.get(c, 'nothing')}"
        for c, v in spoken.items()
        if recorded.get(c) != v
    ]
    return "protocols (the registry's record of each boot)\n  " + "\n  ".join(lines + wrong)


async def _drive(
    credentials: list[Any],
    plans: list[list[Any]],
    versions: list[str],
    speed: float,
    say: Say,
    hold: Callable[[], Awaitable[None]],
    alongside: Callable[[list[Any]], Awaitable[None]],
) -> list[Any]:
    from chargenet_shim.ocpp_version import OcppVersion
    from chargenet_shim.sim.fleet import run_sessions
    from chargenet_shim.sim.simclock import SimClock

    total = sum(len(p) for p in plans)
    done: list[str] = []

    def progress(charger_id: str, stage: str) -> None:
        if stage.endswith((" done", "session failed")):
            done.append(charger_id)
            say(f"  [{len(done):>3}/{total}] {charger_id} {stage}")
        elif stage == "failed":
            say(f"  {charger_id} failed to come up")

    return await run_sessions(
        credentials,
        plans,
        SimClock(speed=speed),
        on_progress=progress,
        hold=hold,
        alongside=alongside,
        versions=[OcppVersion(v) for v in versions],
    )


def _billing_report(truths: list[Any], tariff_id: str, say: Say) -> str:
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore

    store, cdrs = DynamoSessionStore(), DynamoCdrStore()
    # Each truth with the backend's session id, in the order the backend numbered them.
    # A transaction the backend never heard of has no session: last, and reported missing.
    billed = sorted(
        ((t, _session_id(store, t)) for t in truths),
        key=lambda pair: (pair[1] is None, int(pair[1] or 0)),
    )
    wanted = {session_id for _, session_id in billed if session_id is not None}
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        records = {sid: cdrs.get(sid) for sid in wanted}
        sessions = {sid: store.get(sid) for sid in wanted}
        settled = [
            sid for sid in wanted if records[sid] or (sessions[sid] and sessions[sid].state == "needs_review")
        ]
        if len(settled) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    say(
        f"billing: {sum(1 for r in records.values() if r)}/{len(wanted)} sessions have a CDR (tariff {tariff_id})"
    )
    rows, revenue, currency = [], Decimal(0), ""
    for truth, session_id in billed:
        session = sessions[session_id] if session_id else None
        record = records[session_id] if session_id else None
        cost = (
            f"{record.total_incl_vat} {record.currency}"
            if record
            else (session.state if session else "missing")
        )
        if record:
            revenue += record.total_incl_vat
            currency = record.currency
        rows.append(
            (
                session_id or "-",
                truth.charger_id,
                _short(truth.ocpp_version),
                truth.connector_id,
                f"{session.energy_wh / 1000:.2f}" if session else "-",
                f"{session.peak_power_w / 1000:.1f}" if session else "-",
                round(session.charging_seconds / 60) if session else "-",
                round(session.parking_seconds / 60) if session else "-",
                cost,
            )
        )
    headers = [
        "SESSION",
        "CHARGER",
        "OCPP",
        "PORT",
        "KWH",
        "PEAK KW",
        "CHARGING MIN",
        "IDLE MIN",
        "COST INCL VAT",
    ]
    return table(headers, rows) + f"\n\nrevenue: {revenue} {currency} incl. VAT from {len(rows)} sessions"


def _session_id(store: Any, truth: Any) -> str | None:
    """The backend's session of a truth: a 1.6 charger was told its number; a 2.0.1 charger named
    its transaction, and the backend numbered it when its first event came in (None: none came)."""
    if truth.ocpp_version == "ocpp1.6":
        return str(truth.transaction_id)
    session_id: str | None = store.session_id_of_transaction(truth.charger_id, truth.transaction_id)
    return session_id


def _unregistered(charger_id: str) -> bool:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    return DynamoChargerRegistry().get(charger_id) is None


def _wait_for_registry(ids: list[str], say: Say) -> list[dict[str, Any]]:
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


def _stepper() -> Say:
    started = time.monotonic()
    # The scenes say things from their own threads: one whole line at a time.
    printing = threading.Lock()

    def say(message: str) -> None:
        with printing:
            print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    return say
