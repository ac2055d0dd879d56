"""The chaos run: a simulated fleet on the real local stack while things break, then the invariants.

What is injected while the fleet charges (chargenet_shim.fleet.run_sessions over mTLS):

* duplicated and late MQTT frames: every charger's link is a ChaosLink (seeded per charger);
* charger disconnections mid-session: a share of the chargers lose their link for a few
  seconds; their offline queues (chargenet_shim.outbox) replay the transaction messages;
* handler crashes before and after DynamoDB writes, and DynamoDB throttling: a plan for the
  local Lambda runtime's injector (chargenet_local.fault_injection), active while the fleet runs;
* poison: frames from a charger whose registry record is corrupt (the function cannot process
  them: they must reach the dead-letter queue) and malformed frames (they must be answered
  with a CALLERROR);
* one safety fault (GroundFailure) on a charger: exactly one alert must reach the operators.

Then it waits until every session is billed or in review, checks the invariants against the
simulator's ground truth (bench/chaos_invariants.py), prints them, writes
bench/results/chaos.json and exits non-zero on any violation.

`run_chaos` works on any running local stack (tests/integration/test_chaos.py runs a small
fleet on the test stack); `main` starts a fresh stack in a temporary folder.

Usage: .venv/bin/python bench/chaos.py [--chargers 50 --sessions-per-charger 6 --seed 7 --speed 300]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaos_invariants import BilledSession, DeliveredSession, Facts, FailedSession, Verdict, check, table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "chaos.json"
EXAMPLE_TARIFF = ROOT / "docs" / "tariffs" / "example-tariff.json"
RATED_POWER_KW = 22.0
SAFETY_FAULT = "GroundFailure"
# As bench/fault_detection.py: short grace periods, scheduled functions every second.
STACK_PARAMETERS = "HeartbeatIntervalSeconds=30 OfflineGraceSeconds=30 MajorAlertDelaySeconds=30"
# Frames the codec can read a message id from, each wrong in its own way.
MALFORMED_FRAMES = (
    '[2, "{id}", "Heartbeat"]',  # a CALL without its payload
    '[2, "{id}", "BootNotification", {{"chargePointVendor": 5}}]',  # schema violation
    '[2, "{id}", "NoSuchAction", {{}}]',  # not implemented
    '[2, "{id}", "Heartbeat", {{',  # cut off
)
POISON_FRAMES = 3
REPLY_TIMEOUT_S = 20.0
STACK_READY_TIMEOUT_S = 300

Say = Callable[[str], None]


@dataclass(frozen=True)
class ChaosOptions:
    chargers: int = 50
    sessions_per_charger: int = 6
    seed: int = 7
    speed: float = 300.0
    meter_interval_s: int = 900
    duplicate: float = 0.1
    reorder: float = 0.1
    disconnect_share: float = 0.3  # of the chargers, each losing its link once mid-run
    outage_s: float = 3.0
    throttle: float = 0.01  # per DynamoDB request attempt (botocore backs off in the worker)
    crash_before_write: float = 0.01  # per DynamoDB write
    crash_after_write: float = 0.01
    # The crashable functions run with this timeout instead of the template's (None: the
    # template's): a crashed invocation is retried once its deadline has passed, so this is what
    # each crash costs. Ingest answers in well under a second; a charger waits 10 s for a reply.
    function_timeout_s: float | None = None
    settle_timeout_s: float = 240.0


@dataclass(frozen=True)
class _Roles:
    """Chargers with a part besides charging."""

    disconnected: set[str]  # lose their link once mid-session
    alert: str  # reports a safety fault
    poison: str  # its registry record is corrupt: the function cannot process its frames
    malformed: str  # sends malformed frames


@dataclass(frozen=True)
class ChaosResult:
    verdicts: list[Verdict]
    sessions: int  # delivered to their end
    not_started: list[FailedSession]
    injected: dict[str, int]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def as_json(self, options: ChaosOptions) -> dict[str, Any]:
        return {
            "options": asdict(options),
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "injected": self.injected,
            "sessions": self.sessions,
            "not_started": [asdict(f) for f in self.not_started],
            "invariants": [
                {"name": v.name, "checked": v.checked, "violations": v.violations} for v in self.verdicts
            ],
        }


# Functions a crash is retried for by the platform: asynchronous invocations and stream batches.
# The HTTP API's functions are left alone: API Gateway does not retry, the caller does.
CRASHABLE_FUNCTIONS = frozenset(
    {
        "OcppIngestFunction",
        "PresenceFunction",
        "BillingFunction",
        "SessionSweepFunction",
        "FaultSweepFunction",
    }
)


def run_chaos(state: Any, options: ChaosOptions, say: Say) -> ChaosResult:
    """The chaos run on the running stack `state` (chargenet_local.stack.StackState)."""
    from chargenet_local import fault_injection

    started = time.monotonic()
    run = uuid.uuid4().hex[:4].upper()
    rng = random.Random(options.seed)
    fleet_ids = [f"CHAOS{run}-{n:03d}" for n in range(1, options.chargers + 1)]
    alert_id, poison_id, malformed_id = f"CHAOS{run}-ALERT", f"CHAOS{run}-POISON", f"CHAOS{run}-BAD"
    say(f"provisioning {len(fleet_ids) + 3} chargers, the example tariff on each, a tag per charger")
    credentials = _provision(state, [*fleet_ids, alert_id, poison_id, malformed_id])
    _corrupt_registry_record(state, poison_id)
    # Chargers that lose their link mid-session charge on one connector: a second one would be
    # between sessions at times, when a driver cannot start while the charger is offline.
    disconnected = set(rng.sample(fleet_ids, round(len(fleet_ids) * options.disconnect_share)))
    plans = _plans(fleet_ids, disconnected, options, rng)
    plans.append([])  # the alert charger only reports its fault
    plan = fault_injection.FaultPlan(
        stack=state.moto_url,
        seed=options.seed,
        functions=CRASHABLE_FUNCTIONS,
        throttle=options.throttle,
        crash_before_write=options.crash_before_write,
        crash_after_write=options.crash_after_write,
        function_timeout_s=options.function_timeout_s,
    )
    fault_injection.forget(state.pid)
    total = sum(len(p) for p in plans)
    say(
        f"{total} sessions at {options.speed:g}x with duplicates {options.duplicate:.0%}, late copies "
        f"{options.reorder:.0%}, {options.disconnect_share:.0%} of chargers disconnected mid-session, "
        f"DynamoDB throttling {options.throttle:.0%}, crashes around writes "
        f"{options.crash_before_write:.0%}/{options.crash_after_write:.0%}"
    )
    roles = _Roles(disconnected, alert_id, poison_id, malformed_id)
    try:
        # Faults start once the fleet is up: a charger whose boot fails runs no sessions at all.
        with_faults = functools.partial(fault_injection.activate, state.pid, plan)
        outcomes, frames = asyncio.run(_drive(credentials, plans, options, rng, roles, with_faults, say))
    finally:
        fault_injection.deactivate(state.pid)
    injected_calls = fault_injection.injected(state.pid)
    fault_injection.forget(state.pid)
    delivered = [o for o in outcomes if hasattr(o, "transaction_id")]
    say(f"{len(delivered)}/{len(outcomes)} sessions ran; waiting until each is billed or in review")
    review = _settle([str(s.transaction_id) for s in delivered], options.settle_timeout_s)
    alerts = _alerts(state, [alert_id], say)
    facts = Facts(
        delivered=[
            DeliveredSession(s.charger_id, s.connector_id, s.transaction_id, s.energy_wh) for s in delivered
        ],
        failed=[
            FailedSession(o.charger_id, o.connector_id, o.error)
            for o in outcomes
            if not hasattr(o, "transaction_id")
        ],
        cdrs=_cdrs(set(fleet_ids)),
        review_session_ids=review,
        malformed_sent=frames["malformed_sent"],
        malformed_answered=frozenset(frames["malformed_answered"]),
        poison_sent=frames["poison_sent"],
        dead_lettered=_dead_lettered(state, poison_id, len(frames["poison_sent"]), say),
        alerts_expected=[f"{alert_id}/{SAFETY_FAULT}"],
        alerts_received=alerts,
    )
    injected = {f"{kind} ({function})": count for (function, kind), count in sorted(injected_calls.items())}
    injected.update(frames["counts"])
    return ChaosResult(
        check(facts), len(facts.delivered), list(facts.failed), injected, time.monotonic() - started
    )


def _provision(state: Any, ids: Sequence[str]) -> list[Any]:
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTariffBook
    from chargenet.domain.clock import utc_now
    from chargenet.domain.tariffs import load_tariff
    from chargenet_cli.provisioning import provision
    from chargenet_shim.credentials import ChargerCredentials

    tariff = load_tariff(EXAMPLE_TARIFF.read_text())
    book = DynamoTariffBook()
    book.store(tariff.id, tariff.model_dump_json(exclude_none=True), utc_now())
    credentials = []
    for charger_id in ids:
        done = provision(state, charger_id, "SITE-CHAOS", rated_power_w=int(RATED_POWER_KW * 1000))
        # Per charger, not the network default: the run leaves a shared stack's pricing alone.
        book.assign(tariff.id, charger_id=charger_id)
        credentials.append(ChargerCredentials.load(done.credentials_dir))
    return credentials


def _corrupt_registry_record(state: Any, charger_id: str) -> None:
    """Every read of this charger's record now fails inside the function: its frames are poison."""
    import boto3

    boto3.client("dynamodb").put_item(
        TableName=state.tables["ChargersTable"],
        Item={
            "charger_id": {"S": charger_id},
            "sk": {"S": "charger"},
            "registered_at": {"S": "not-a-timestamp"},
        },
    )


def _plans(
    ids: Sequence[str], one_connector: set[str], options: ChaosOptions, rng: random.Random
) -> list[list[Any]]:
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory
    from chargenet.domain.models import TagStatus
    from chargenet_shim.session import sample_plan

    tags = DynamoTagDirectory()
    plans = []
    for charger_id in ids:
        tag = charger_id.replace("-", "")  # 13 characters: within OCPP's 20
        tags.put(tag, TagStatus.ACCEPTED, max_concurrent=2, expires_at=None)
        charger_plans = []
        for k in range(options.sessions_per_charger):
            sampled = sample_plan(rng, connector_id=1 if charger_id in one_connector else 1 + k % 2)
            charger_plans.append(
                sampled.model_copy(
                    update={
                        "id_tag": tag,
                        "max_power_kw": min(sampled.max_power_kw, RATED_POWER_KW),
                        "meter_interval_s": options.meter_interval_s,
                    }
                )
            )
        plans.append(charger_plans)
    return plans


async def _drive(
    credentials: list[Any],
    plans: list[list[Any]],
    options: ChaosOptions,
    rng: random.Random,
    roles: _Roles,
    start_faults: Callable[[], None],
    say: Say,
) -> tuple[list[Any], dict[str, Any]]:
    from chargenet_shim.chaos import ChaosConfig
    from chargenet_shim.fleet import run_sessions
    from chargenet_shim.simclock import SimClock

    by_id = {c.charger_id: c for c in credentials}
    fleet = [c for c in credentials if c.charger_id not in (roles.poison, roles.malformed)]
    frames: dict[str, Any] = {"counts": {}}
    done: list[str] = []
    total = sum(len(p) for p in plans)

    def progress(charger_id: str, stage: str) -> None:
        if stage.endswith((" done", "session failed")):
            done.append(charger_id)
            if len(done) % max(1, total // 10) == 0 or stage.endswith("failed"):
                say(f"  [{len(done):>4}/{total}] {charger_id} {stage}")

    async def alongside(chargers: list[Any]) -> None:
        start_faults()
        victims = [c for c in chargers if c.id in roles.disconnected]
        alerting = [c for c in chargers if c.id == roles.alert]
        frames["counts"]["charger disconnections"] = len(victims)
        await asyncio.gather(
            *(_outage(c, rng.uniform(0.0, 2.0), options.outage_s) for c in victims),
            *(_safety_fault(c) for c in alerting),
            _poison(by_id[roles.poison], by_id[roles.malformed], frames),
        )

    chaos = ChaosConfig(duplicate=options.duplicate, reorder=options.reorder, seed=options.seed)
    outcomes = await run_sessions(
        fleet,
        plans,
        SimClock(speed=options.speed),
        on_progress=progress,
        chaos=chaos,
        alongside=alongside,
    )
    return outcomes, frames


async def _outage(charger: Any, after_s: float, outage_s: float) -> None:
    """The link drops mid-session: once a transaction has started, `after_s` later."""
    while not any(visit.transaction.id is not None for visit in charger.sessions.values()):
        await asyncio.sleep(0.1)
    await asyncio.sleep(after_s)
    await charger.drop_connection()
    await asyncio.sleep(outage_s)
    await charger.restore_connection()


async def _safety_fault(charger: Any) -> None:
    await asyncio.sleep(1.0)
    await charger.inject_fault(1, SAFETY_FAULT)


async def _poison(poison: Any, malformed: Any, frames: dict[str, Any]) -> None:
    """Frames the function cannot process (no reply: retries, then the dead-letter queue), and
    malformed frames (a CALLERROR each)."""
    from chargenet_shim.link import ChargerLink

    poison_ids = [f"poison-{n}" for n in range(POISON_FRAMES)]
    link = ChargerLink(poison)
    await link.connect()
    try:
        for message_id in poison_ids:
            await link.send(json.dumps([2, message_id, "Heartbeat", {}]))
    finally:
        await link.close()
    frames["poison_sent"] = poison_ids

    malformed_ids = [f"bad-{n}" for n in range(len(MALFORMED_FRAMES))]
    answered: set[str] = set()
    link = ChargerLink(malformed)
    await link.connect()
    try:
        for message_id, template in zip(malformed_ids, MALFORMED_FRAMES, strict=True):
            await link.send(template.format(id=message_id))
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while answered != set(malformed_ids) and time.monotonic() < deadline:
            try:
                reply = json.loads(await asyncio.wait_for(link.recv(), deadline - time.monotonic()))
            except TimeoutError:
                break
            if reply[0] == 4:
                answered.add(reply[1])
    finally:
        await link.close()
    frames["malformed_sent"], frames["malformed_answered"] = malformed_ids, answered
    frames["counts"]["malformed frames"] = len(malformed_ids)
    frames["counts"]["poison frames"] = len(poison_ids)


def _settle(session_ids: Sequence[str], timeout_s: float) -> frozenset[str]:
    """Wait until each session has a CDR or is in review; the ids in review."""
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore

    cdrs, sessions = DynamoCdrStore(), DynamoSessionStore()
    pending, review = set(session_ids), set()
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for session_id in list(pending):
            if cdrs.get(session_id):
                pending.discard(session_id)
            elif (session := sessions.get(session_id)) and session.state == "needs_review":
                pending.discard(session_id)
                review.add(session_id)
        time.sleep(1.0)
    return frozenset(review)


def _cdrs(charger_ids: set[str]) -> list[BilledSession]:
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore

    return [
        BilledSession(r.cdr_id, r.session_id, r.charger_id, r.energy_wh)
        for r in DynamoCdrStore().list()
        if r.charger_id in charger_ids and r.credit_reference_id is None
    ]


def _dead_lettered(state: Any, charger_id: str, expected: int, say: Say) -> frozenset[str]:
    """Message ids of the charger's frames in the dead-letter queue (after the function's retries)."""
    import boto3

    sqs = boto3.client("sqs")
    found: set[str] = set()
    deadline = time.monotonic() + 30
    while len(found) < expected and time.monotonic() < deadline:
        for queue_url in state.queues.values():
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                if message_id := _poison_message_id(message["Body"], charger_id):
                    found.add(message_id)
    say(f"dead-letter queue: {len(found)}/{expected} poison frames found")
    return frozenset(found)


def _poison_message_id(body: str, charger_id: str) -> str | None:
    try:
        event = json.loads(body)
        if not isinstance(event, dict) or event.get("charger_id") != charger_id:
            return None
        frame = json.loads(base64.b64decode(event["payload"]))
    except (ValueError, KeyError, TypeError):
        return None
    return str(frame[1]) if isinstance(frame, list) and len(frame) > 1 else None


def _alerts(state: Any, charger_ids: Sequence[str], say: Say) -> list[str]:
    """`charger/code` of every raised safety alert the operators received for these chargers."""
    from chargenet_local.alert_sink import read_inbox

    def received() -> list[str]:
        keys = []
        for alert in read_inbox(Path(state.home)):
            subject = alert.get("subject") or ""
            if alert.get("attributes", {}).get("kind") != "raised" or SAFETY_FAULT not in subject:
                continue
            keys += [f"{c}/{SAFETY_FAULT}" for c in charger_ids if c in subject]
        return keys

    deadline = time.monotonic() + 30
    while len(received()) < len(charger_ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # a duplicate would follow within the retries' delays
    keys = received()
    say(f"operator inbox: {len(keys)} safety alerts for {len(charger_ids)} injected faults")
    return keys


# ------------------------------------------------------------------ the command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=ChaosOptions.chargers)
    parser.add_argument("--sessions-per-charger", type=int, default=ChaosOptions.sessions_per_charger)
    parser.add_argument("--seed", type=int, default=ChaosOptions.seed)
    parser.add_argument("--speed", type=float, default=ChaosOptions.speed)
    parser.add_argument(
        "--function-timeout-s",
        type=float,
        default=ChaosOptions.function_timeout_s,
        help="run the crashable functions with this timeout (crashes are retried after it)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.chargers < 1 or args.sessions_per_charger < 1 or args.speed <= 0:
        parser.error("--chargers and --sessions-per-charger must be at least 1, --speed positive")
    if args.function_timeout_s is not None and args.function_timeout_s <= 0:
        parser.error("--function-timeout-s must be positive")
    options = ChaosOptions(
        chargers=args.chargers,
        sessions_per_charger=args.sessions_per_charger,
        seed=args.seed,
        speed=args.speed,
        function_timeout_s=args.function_timeout_s,
    )
    # ocpp logs every late or duplicated reply the chaos provokes: expected here, not news.
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    say = _stepper()
    result = _on_fresh_stack(options, say)
    print(table(result.verdicts, result.not_started))
    print(f"sessions delivered: {result.sessions}, not started: {len(result.not_started)}")
    print(f"injected: {json.dumps(result.injected)}")
    print(f"chaos run: {'OK' if result.ok else 'VIOLATIONS'} in {result.seconds:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result.as_json(options), indent=2) + "\n")
    return 0 if result.ok else 1


def _on_fresh_stack(options: ChaosOptions, say: Say) -> ChaosResult:
    from chargenet_cli import local_env
    from chargenet_local import stack
    from chargenet_local.stack import down, up

    # On a loaded 2-core machine the stack's start-up can outlast the CLI's patience.
    stack.READY_TIMEOUT_S = max(stack.READY_TIMEOUT_S, STACK_READY_TIMEOUT_S)
    os.environ.setdefault("CHARGENET_SCHEDULE_EVERY_S", "1")
    os.environ.setdefault("CHARGENET_PARAMETERS", STACK_PARAMETERS)
    with tempfile.TemporaryDirectory(prefix="chargenet-chaos-") as folder:
        home = Path(folder)
        say(f"starting a fresh local stack in {home}")
        up(home, ROOT / "template.yaml")
        try:
            return run_chaos(local_env.connect(home), options, say)
        finally:
            say("stopping the local stack")
            down(home)


def _stepper() -> Say:
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
