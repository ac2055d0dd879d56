"""The chaos run: a simulated fleet on the real local stack while things break, then the invariants.

What is injected while a mixed fleet charges (chargenet_shim.sim.fleet.run_sessions over mTLS;
every third charger speaks OCPP 2.0.1, the others 1.6, paying and alerting ones included):

* duplicated and late MQTT frames: every charger's link is a ChaosLink (seeded per charger);
* charger disconnections mid-session: a share of the chargers lose their link for a few
  seconds; their offline queues (chargenet_shim.sim.outbox) replay the transaction messages;
* handler crashes before and after DynamoDB writes, and DynamoDB throttling: a plan for the
  local Lambda runtime's injector (chargenet_local.fault_injection), active while the fleet runs;
* poison: frames from a charger whose registry record is corrupt (the function cannot process
  them: they must reach the dead-letter queue) and malformed frames (they must be answered
  with a CALLERROR), each on both versions' ingest topics;
* one safety fault (GroundFailure) on a charger: exactly one alert must reach the operators;
* paid sessions: drivers pay through the pay link (chargenet_local.commands.demo_payments) while the Stripe
  fault proxy (chargenet_local.stripe_faults) answers PaymentIntent and invoice item calls with
  500s, timeouts, resets and 500s after the fact, and Stripe's webhooks come twice and some late;
* subscriber sessions: an active subscriber's tag on some connectors (a usage line per CDR);
* broker restarts: mosquitto down for a few seconds mid-run (chargenet_local.broker.restart_broker).

Then it waits until every session is billed or in review and every payment settled, checks the invariants against the
simulator's ground truth (bench.chaos_invariants), prints them, writes
bench/results/chaos.json and exits non-zero on any violation. A 1.6 charger's truth carries the
backend's session number; a 2.0.1 charger's carries its own transactionId, whose session is
looked up as the backend allocated it (SessionStore.transaction_of, no allocation).

`run_chaos` works on any running local stack (tests/integration/test_chaos.py runs a small
fleet on the test stack); `main` starts a fresh stack in a temporary folder (bench.harness).

Usage: .venv/bin/python -m bench.chaos [--chargers 50 --sessions-per-charger 6 --seed 7 --speed 300
                                       --paying-chargers 5 --subscriber-chargers 5
                                       --ocpp-versions 1.6,1.6,2.0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from bench.chaos_invariants import (
    BilledSession,
    DeliveredSession,
    Facts,
    FailedSession,
    PaidSession,
    UsageLine,
    Verdict,
    check,
    table,
)
from bench.harness import EXAMPLE_TARIFF, RESULTS, Say, fresh_stack, stepper, write_results

DEFAULT_OUT = RESULTS / "chaos.json"
RATED_POWER_KW = 22.0
SAFETY_FAULT = "GroundFailure"
# As bench/fault_detection.py: short grace periods, scheduled functions every second.
STACK_PARAMETERS = "HeartbeatIntervalSeconds=30 OfflineGraceSeconds=30 MajorAlertDelaySeconds=30"
# The sweeps (idle sessions, offline chargers, payment retries) each scan a table per pass, and
# the local stack's moto serves them beside the fleet: every 5 s, not every second, is still well
# inside the 30 s grace periods above.
SWEEP_EVERY_S = 5
# Simulated seconds a connector stays free between two drivers, at most.
NEXT_DRIVER_WITHIN_S = 600
# Frames the codec can read a message id from, each wrong in its own way.
MALFORMED_FRAMES = (
    '[2, "{id}", "Heartbeat"]',  # a CALL without its payload
    '[2, "{id}", "BootNotification", {{"chargePointVendor": 5}}]',  # schema violation
    '[2, "{id}", "NoSuchAction", {{}}]',  # not implemented
    '[2, "{id}", "Heartbeat", {{',  # cut off
)
POISON_FRAMES = 3
# Every PaymentIntent call the product makes (retrieve, update, capture, cancel) and every usage
# line it adds to a subscriber's invoice may fail in each of the fault proxy's modes
# (chargenet_local.stripe_faults); checkouts and sign-ups are left alone.
STRIPE_FAULTED_CALLS = r"^/v1/(payment_intents/[^/]+(/capture|/cancel)?|invoiceitems)$"
# The first armed rule that draws a failure takes the call: the one that makes a retry risky first.
STRIPE_FAULT_MODES = ("500_after", "500", "timeout", "reset")
STRIPE_HOLD_S = 9.0  # a "timeout" holds the request just past the product client's 8 s
REPLY_TIMEOUT_S = 20.0
OUTAGE_WAIT_S = 120.0
BROKER_RESTART_EVERY_S = 5.0
RECONNECT_WAIT_S = 30.0
# The backend gives a charger this long to start after a payment (PaymentStartTimeoutSeconds).
REMOTE_START_WAIT_S = 120.0
# Covers 18 s of real time at 600x between a paid session's remote start and its StartTransaction.
REMOTE_CLOCK_BACKDATE = dt.timedelta(hours=3)
SUBSCRIBER_ACTIVE_WAIT_S = 60.0  # the setup page's webhook activates the subscription
STACK_READY_TIMEOUT_S = 300

T = TypeVar("T")


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
    # The fleet's sessions must end within this: a backend that never answers fails the run, not hangs it.
    drive_timeout_s: float = 1800.0
    # Chargers whose drivers pay through the pay link, one paid session per connector (at most 2).
    paying_chargers: int = 5
    paid_sessions_per_charger: int = 2
    stripe_faults: float = 0.05  # per PaymentIntent call, for each of the fault proxy's modes
    # A capture that failed all its quick retries waits for the payment sweep's backoff (2 min).
    payment_timeout_s: float = 300.0
    webhook_duplicate: float = 1.0  # Stripe events sent twice
    webhook_late: float = 0.3  # each copy held back up to webhook_late_s
    webhook_late_s: float = 5.0
    # Chargers whose connector 1 is used by an active subscriber (charging by RFID tag, billed
    # monthly: a usage line per CDR at Stripe).
    subscriber_chargers: int = 5
    usage_timeout_s: float = 120.0
    # mosquitto restarted mid-run (no persistence: every charger reconnects, offline queues replay).
    broker_restarts: int = 1
    broker_down_s: float = 2.0
    # Real seconds over which the first drivers arrive (a connector's first session waits up to
    # this before plugging in): a fleet whose every driver taps a card in the same second is a
    # burst no real site makes. The next driver on a connector comes within NEXT_DRIVER_WITHIN_S.
    arrival_spread_s: float = 0.0
    # The OCPP versions repeated over the charging fleet (fleet, alerting, paying chargers in that
    # order; chargenet_shim.sim.fleet.versions_for): every third charger speaks 2.0.1.
    ocpp_versions: tuple[str, ...] = ("ocpp1.6", "ocpp1.6", "ocpp2.0.1")


@dataclass(frozen=True)
class _Roles:
    """Chargers with a part besides charging."""

    disconnected: set[str]  # lose their link once mid-session
    alert: str  # reports a safety fault
    poison: str  # its registry record is corrupt: the function cannot process its frames
    malformed: str  # sends malformed frames
    paying: set[str]  # charge only when a driver pays through the pay link


@dataclass(frozen=True)
class ChaosResult:
    verdicts: list[Verdict]
    sessions: int  # delivered to their end
    sessions_by_version: dict[str, int]
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
            "sessions_by_version": self.sessions_by_version,
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
    paying_ids = [f"CHAOS{run}-PAY{n:02d}" for n in range(1, options.paying_chargers + 1)]
    alert_id, poison_id, malformed_id = f"CHAOS{run}-ALERT", f"CHAOS{run}-POISON", f"CHAOS{run}-BAD"
    charging_ids = [*fleet_ids, alert_id, *paying_ids]
    spoken = _versions(charging_ids, options.ocpp_versions)
    say(f"provisioning {len(charging_ids) + 2} chargers, the example tariff on each, a tag per charger")
    credentials = _provision(state, [*charging_ids, poison_id, malformed_id])
    _corrupt_registry_record(state, poison_id)
    subscribed = rng.sample(fleet_ids, min(options.subscriber_chargers, len(fleet_ids)))
    subscribers = _subscribers(state, run, subscribed, say)
    disconnected = set(rng.sample(fleet_ids, round(len(fleet_ids) * options.disconnect_share)))
    plans = _plans(fleet_ids, {c: tag for c, (tag, _) in subscribers.items()}, options, rng)
    plans.append([])  # the alert charger only reports its fault
    plans += [[] for _ in paying_ids]  # paying chargers charge when a driver has paid
    plan = fault_injection.FaultPlan(
        stack=state.moto_url,
        seed=options.seed,
        functions=CRASHABLE_FUNCTIONS,
        throttle=options.throttle,
        crash_before_write=options.crash_before_write,
        crash_after_write=options.crash_after_write,
        function_timeout_s=options.function_timeout_s,
    )
    webhooks = fault_injection.WebhookPlan(
        api_url=state.api_url,
        seed=options.seed,
        duplicate=options.webhook_duplicate,
        late=options.webhook_late,
        late_s=options.webhook_late_s,
    )
    fault_injection.forget(state.pid)
    total = sum(len(p) for p in plans)
    paid_total = len(paying_ids) * options.paid_sessions_per_charger
    say(
        f"{total} sessions and {paid_total} paid through the pay link at {options.speed:g}x with "
        f"duplicates {options.duplicate:.0%}, late copies {options.reorder:.0%}, "
        f"{options.disconnect_share:.0%} of chargers disconnected mid-session, DynamoDB throttling "
        f"{options.throttle:.0%}, crashes around writes {options.crash_before_write:.0%}/"
        f"{options.crash_after_write:.0%}, Stripe faults {options.stripe_faults:.0%} per mode, webhooks "
        f"duplicated {options.webhook_duplicate:.0%} and late {options.webhook_late:.0%}, "
        f"{options.broker_restarts} broker restarts; "
        + ", ".join(f"{n} chargers on {v}" for v, n in sorted(Counter(spoken.values()).items()))
    )
    roles = _Roles(disconnected, alert_id, poison_id, malformed_id, set(paying_ids))
    stripe = _StripeFaults(state.stripe_faults_url)
    stripe.clear()

    def start_faults() -> None:
        fault_injection.activate(state.pid, plan)
        fault_injection.activate_webhooks(state.pid, webhooks)
        stripe.arm(options.stripe_faults, options.seed)

    try:
        # Faults start once the fleet is up: a charger whose boot fails runs no sessions at all.
        frames: dict[str, Any] = {
            "counts": {},
            "session_urls": [],
            "paid_outcomes": [],
            "faults_reported": [],
        }
        driving = _drive(state, credentials, plans, spoken, options, rng, roles, start_faults, frames, say)
        outcomes = asyncio.run(_within(driving, options.drive_timeout_s, lambda: _open_sessions(frames)))
    finally:
        fault_injection.deactivate(state.pid)
        stripe_injected = stripe.clear()  # Stripe is back: what still retries gets through
    injected_calls = fault_injection.injected(state.pid)
    fault_injection.forget(state.pid)
    outcomes += frames["paid_outcomes"]
    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore

    truths = [o for o in outcomes if hasattr(o, "transaction_id")]
    delivered = _delivered(truths, DynamoSessionStore())
    say(f"{len(delivered)}/{len(outcomes)} sessions ran; waiting until each is billed or in review")
    review = _settle([s.session_id for s in delivered if s.session_id], options.settle_timeout_s)
    stripe_truth = _StripeTruth(state)
    paid = _paid(stripe_truth, frames["session_urls"], options.payment_timeout_s, say)
    cdrs = _cdrs(set(charging_ids))
    subscriber_tags = {tag for tag, _ in subscribers.values()}
    subscriber_sessions = frozenset(
        session.session_id
        for session, truth in zip(delivered, truths, strict=True)
        if truth.id_tag in subscriber_tags and session.session_id
    )
    usage_lines = _usage_lines(
        stripe_truth,
        [customer for _, customer in subscribers.values()],
        {c.cdr_id for c in cdrs if c.session_id in subscriber_sessions},
        options.usage_timeout_s,
        say,
    )
    alerts = _alerts(state, [alert_id], len(frames["faults_reported"]), say)
    came_up = {c.id: str(c.ocpp_version) for c in frames.get("chargers", [])}
    facts = Facts(
        delivered=delivered,
        failed=[
            FailedSession(o.charger_id, o.connector_id, o.error)
            for o in outcomes
            if not hasattr(o, "transaction_id")
        ],
        cdrs=cdrs,
        review_session_ids=review,
        malformed_sent=frames["malformed_sent"],
        malformed_answered=frozenset(frames["malformed_answered"]),
        poison_sent=frames["poison_sent"],
        dead_lettered=_dead_lettered(state, poison_id, len(frames["poison_sent"]), say),
        alerts_expected=frames["faults_reported"],
        alerts_received=alerts,
        paid=paid,
        subscriber_sessions=subscriber_sessions,
        usage_lines=usage_lines,
        versions_spoken=came_up,
        versions_recorded=_recorded_versions(list(came_up)),
    )
    injected = {f"{kind} ({function})": count for (function, kind), count in sorted(injected_calls.items())}
    injected.update(
        {f"stripe {mode} (PaymentIntent and invoice item calls)": n for mode, n in stripe_injected.items()}
    )
    injected.update(frames["counts"])
    by_version = dict(sorted(Counter(s.ocpp_version for s in facts.delivered).items()))
    return ChaosResult(
        check(facts),
        len(facts.delivered),
        by_version,
        list(facts.failed),
        injected,
        time.monotonic() - started,
    )


class ChaosAborted(RuntimeError):
    """The run cannot go on: a phase did not end in time (the backend lost or never answered
    something), or its set-up failed."""


async def _within(
    work: Coroutine[Any, Any, T], timeout_s: float, open_sessions: Callable[[], list[str]]
) -> T:
    """`work`'s result, or ChaosAborted naming the sessions still open when `timeout_s` passes
    (taken before the work is cancelled, which ends them)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if task in done:
        return task.result()
    still_open = open_sessions()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    listed = "".join(f"\n  {line}" for line in still_open)
    raise ChaosAborted(
        f"the fleet's sessions did not all end within {timeout_s:g} s; {len(still_open)} open:{listed}"
    )


def _open_sessions(frames: dict[str, Any]) -> list[str]:
    """One line per session a charger is running, with the stage it is at."""
    return [
        f"{charger.id} {visit.describe()}"
        for charger in frames.get("chargers", [])
        for visit in charger.sessions.values()
    ]


def _versions(charger_ids: Sequence[str], cycle: Sequence[str]) -> dict[str, Any]:
    """Each charger's OCPP version (chargenet_shim's OcppVersion), `cycle` repeated over them."""
    from chargenet_shim.ocpp_version import OcppVersion
    from chargenet_shim.sim.fleet import versions_for

    versions = versions_for(len(charger_ids), [OcppVersion(v) for v in cycle])
    return dict(zip(charger_ids, versions, strict=True))


def _under_way(visit: Any) -> bool:
    """A transaction has started on the visit's connector: the driver tapped in and energy flows
    (1.6's StartTransaction or 2.0.1's TransactionEvent Started sent, answered or queued)."""
    return visit.started_at is not None


def _delivered(truths: Sequence[Any], store: Any) -> list[DeliveredSession]:
    """The simulator's truths as the backend's sessions: a 1.6 charger was told its session's
    number; a 2.0.1 charger named its transaction, whose number the backend allocated for the
    (charger, transactionId) pair, read from `store` (a SessionStore) without allocating one
    (None: the backend never heard of it)."""
    from chargenet.domain.transactions201 import transaction_key

    def delivered(truth: Any) -> DeliveredSession:
        # A 2.0.1 truth names its version as an OcppVersion, a 1.6 one as its text: text for both.
        version, transaction_id = str(truth.ocpp_version), str(truth.transaction_id)
        if version == "ocpp1.6":
            session_id: str | None = transaction_id
        else:
            number = store.transaction_of(transaction_key(truth.charger_id, transaction_id))
            session_id = None if number is None else str(number)
        charger_transaction_id = None if version == "ocpp1.6" else transaction_id
        return DeliveredSession(
            truth.charger_id, truth.connector_id, session_id, truth.energy_wh, version, charger_transaction_id
        )

    return [delivered(truth) for truth in truths]


def _recorded_versions(charger_ids: Sequence[str]) -> dict[str, str | None]:
    """The OCPP version each charger's registry record names (what its BootNotification wrote)."""
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    registry = DynamoChargerRegistry()
    return {c: record.ocpp_version for c in charger_ids if (record := registry.get(c)) is not None}


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


def _subscribers(state: Any, run: str, charger_ids: Sequence[str], say: Say) -> dict[str, tuple[str, str]]:
    """An active subscriber per charger, the example tariff as member tariff: its tag and Stripe
    customer. Signed up as the operator and a driver do (`chargenet subscriber add`, the card saved
    on the hosted setup page), before any fault is armed."""
    from chargenet.adapters.subscriptions_dynamodb import DynamoSubscriberStore
    from chargenet.domain.subscriptions import SubscriberState
    from chargenet_cli import subscriber_cmd
    from chargenet_local.commands.demo_payments import CARD, HTTP_TIMEOUT_S

    if not charger_ids:
        return {}
    home = Path(state.home)
    plan_id = f"chaos-{run.lower()}"
    tariff_id = json.loads(EXAMPLE_TARIFF.read_text())["id"]
    subscriber_cmd.add_plan(
        argparse.Namespace(home=home, plan_id=plan_id, monthly_fee="9.00", currency="EUR", tariff=tariff_id)
    )
    subscribers = {}
    for n, charger_id in enumerate(charger_ids, 1):
        tag = f"SUB{run}{n:03d}"
        email = f"{tag.lower()}@example.test"
        added = json.loads(
            subscriber_cmd.add_subscriber(
                argparse.Namespace(home=home, email=email, tag=tag, plan=plan_id, json=True)
            )
        )
        saved = requests.post(
            added["setup_url"], data={**CARD, "email": email}, allow_redirects=False, timeout=HTTP_TIMEOUT_S
        )
        if saved.status_code != 303:
            raise ChaosAborted(f"subscriber {tag}: the hosted setup page answered {saved.status_code}")
        subscribers[charger_id] = (tag, str(added["customer_id"]))
    store = DynamoSubscriberStore()

    def pending() -> list[str]:
        return [
            tag
            for tag, _ in subscribers.values()
            if (found := store.get(tag)) is None or found.state is not SubscriberState.ACTIVE
        ]

    deadline = time.monotonic() + SUBSCRIBER_ACTIVE_WAIT_S
    while pending() and time.monotonic() < deadline:
        time.sleep(0.5)
    if waiting := pending():
        raise ChaosAborted(f"subscriptions not active {SUBSCRIBER_ACTIVE_WAIT_S:g} s after setup: {waiting}")
    say(f"{len(subscribers)} subscribers active, charging by tag on connector 1 of {', '.join(charger_ids)}")
    return subscribers


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
    ids: Sequence[str],
    subscriber_tags: dict[str, str],
    options: ChaosOptions,
    rng: random.Random,
) -> list[list[Any]]:
    """Each charger's sessions on its own tag; connector 1's on its subscriber's, if it has one."""
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory
    from chargenet.domain.models import TagStatus
    from chargenet_shim.sim.session import sample_plan

    tags = DynamoTagDirectory()
    plans = []
    for charger_id in ids:
        tag = charger_id.replace("-", "")  # 13 characters: within OCPP's 20
        tags.put(tag, TagStatus.ACCEPTED, max_concurrent=2, expires_at=None)
        charger_plans: list[Any] = []
        for k in range(options.sessions_per_charger):
            sampled = sample_plan(rng, 1 + k % 2, rated_power_kw=RATED_POWER_KW)
            first_driver = all(plan.connector_id != sampled.connector_id for plan in charger_plans)
            arrival_s = options.arrival_spread_s * options.speed if first_driver else NEXT_DRIVER_WITHIN_S
            charger_plans.append(
                sampled.model_copy(
                    update={
                        "id_tag": subscriber_tags.get(charger_id, tag) if sampled.connector_id == 1 else tag,
                        "meter_interval_s": options.meter_interval_s,
                        "arrives_after_s": rng.uniform(0, arrival_s),
                    }
                )
            )
        plans.append(charger_plans)
    return plans


async def _drive(
    state: Any,
    credentials: list[Any],
    plans: list[list[Any]],
    spoken: dict[str, Any],
    options: ChaosOptions,
    rng: random.Random,
    roles: _Roles,
    start_faults: Callable[[], None],
    frames: dict[str, Any],
    say: Say,
) -> list[Any]:
    """The fleet's session outcomes; what the faults running alongside did goes into `frames`."""
    from chargenet_shim.sim.chaos import ChaosConfig
    from chargenet_shim.sim.fleet import run_sessions
    from chargenet_shim.sim.simclock import SimClock

    by_id = {c.charger_id: c for c in credentials}
    fleet = [c for c in credentials if c.charger_id not in (roles.poison, roles.malformed)]
    done: list[str] = []
    total = sum(len(p) for p in plans)

    def progress(charger_id: str, stage: str) -> None:
        if stage.endswith((" done", "session failed")):
            done.append(charger_id)
            if len(done) % max(1, total // 10) == 0 or stage.endswith("failed"):
                say(f"  [{len(done):>4}/{total}] {charger_id} {stage}")

    async def alongside(chargers: list[Any]) -> None:
        frames["chargers"] = chargers
        start_faults()
        victims = [c for c in chargers if c.id in roles.disconnected]
        alerting = [c for c in chargers if c.id == roles.alert]
        paying = [c for c in chargers if c.id in roles.paying]
        # A victim's first driver may arrive as late as the arrival spread.
        outage_wait_s = options.arrival_spread_s + OUTAGE_WAIT_S
        await asyncio.gather(
            *(_outage(c, rng.uniform(0.0, 2.0), options.outage_s, outage_wait_s, frames) for c in victims),
            *(_safety_fault(c, frames) for c in alerting),
            _poison(by_id[roles.poison], by_id[roles.malformed], frames),
            *(_paid_visits(state, c, options, frames) for c in paying),
            _broker_restarts(state, chargers, options, frames),
        )

    chaos = ChaosConfig(duplicate=options.duplicate, reorder=options.reorder, seed=options.seed)
    outcomes = await run_sessions(
        fleet,
        plans,
        SimClock(speed=options.speed),
        on_progress=progress,
        chaos=chaos,
        alongside=alongside,
        versions=[spoken[c.charger_id] for c in fleet],
    )
    return outcomes


async def _outage(
    charger: Any, after_s: float, outage_s: float, wait_s: float, frames: dict[str, Any]
) -> None:
    """The link drops mid-session: `after_s` after a transaction has started (within `wait_s`)."""
    deadline = time.monotonic() + wait_s
    while not any(_under_way(visit) for visit in charger.sessions.values()):
        if time.monotonic() > deadline:
            return  # no driver got to charge here: nothing to interrupt
        await asyncio.sleep(0.1)
    from chargenet_shim.link import LinkError

    await asyncio.sleep(after_s)
    await charger.drop_connection()
    frames["counts"]["charger disconnections"] = frames["counts"].get("charger disconnections", 0) + 1
    await asyncio.sleep(outage_s)
    # A broker restart may be under way: the charger keeps trying, as a real one would.
    deadline = time.monotonic() + RECONNECT_WAIT_S
    while True:
        try:
            await charger.restore_connection()
            return
        except LinkError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def _paid_visits(state: Any, charger: Any, options: ChaosOptions, frames: dict[str, Any]) -> None:
    """Drivers pay through the pay link, one per connector at once (the demo's drivers,
    chargenet_local.commands.demo_payments); the backend starts the charger and the car charges to full."""
    from chargenet_local.commands.demo_payments import CARD, Driver, pay_through_link
    from chargenet_shim.sim.fleet import SessionFailure
    from chargenet_shim.sim.simclock import SimClock

    # Each paid session on its own accelerated clock from its start. The payment's tag is valid for
    # two minutes of real time, which the seconds before the StartTransaction (an Authorize, retried
    # after a crash) can be hours of at the run's speed: the clock starts back-dated by that much.
    charger.remote_clock = lambda: SimClock(
        speed=options.speed, start=dt.datetime.now(dt.UTC) - REMOTE_CLOCK_BACKDATE
    )
    charger.remote_plan = charger.remote_plan.model_copy(
        update={"meter_interval_s": options.meter_interval_s}
    )
    connectors = range(1, min(options.paid_sessions_per_charger, charger.connectors) + 1)
    paying = [asyncio.to_thread(pay_through_link, state, Driver(charger.id, c, CARD)) for c in connectors]
    outcomes: list[Any] = []
    for connector_id, paid in zip(
        connectors, await asyncio.gather(*paying, return_exceptions=True), strict=True
    ):
        if isinstance(paid, str):
            frames["session_urls"].append(paid)
        else:  # the checkout failed: no money taken, no session
            error = paid.outcome if hasattr(paid, "outcome") else f"{type(paid).__name__}: {paid}"
            outcomes.append(SessionFailure(charger.id, connector_id, f"pay link: {error}"))
    started = len(connectors) - len(outcomes)
    deadline = time.monotonic() + REMOTE_START_WAIT_S
    while len(charger.remote_sessions) < started and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    for task in charger.remote_sessions:
        try:
            outcomes.append(await task)
        except Exception as error:  # the session's own failure: a driver who did not get to charge
            outcomes.append(SessionFailure(charger.id, 0, f"paid session: {type(error).__name__}: {error}"))
    missing = started - len(charger.remote_sessions)
    outcomes += [SessionFailure(charger.id, 0, "paid, the charger never started") for _ in range(missing)]
    frames["paid_outcomes"] += outcomes


async def _broker_restarts(
    state: Any, chargers: list[Any], options: ChaosOptions, frames: dict[str, Any]
) -> None:
    """mosquitto goes down and comes back, once transactions are under way, every few seconds."""
    from chargenet_local.broker import restart_broker

    deadline = time.monotonic() + OUTAGE_WAIT_S
    while not any(_under_way(v) for c in chargers for v in c.sessions.values()):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    for _ in range(options.broker_restarts):
        await asyncio.sleep(BROKER_RESTART_EVERY_S)
        await asyncio.to_thread(restart_broker, state, options.broker_down_s)
        frames["counts"]["broker restarts"] = frames["counts"].get("broker restarts", 0) + 1


async def _safety_fault(charger: Any, frames: dict[str, Any]) -> None:
    """Only a charger that came up reports its fault: one whose boot failed owes no alert."""
    await asyncio.sleep(1.0)
    # Counted before the frame leaves: once sent, an unanswered StatusNotification still owes its alert.
    frames["faults_reported"].append(f"{charger.id}/{SAFETY_FAULT}")
    await charger.inject_fault(1, SAFETY_FAULT)


async def _poison(poison: Any, malformed: Any, frames: dict[str, Any]) -> None:
    """Frames the function cannot process (no reply: retries, then the dead-letter queue), and
    malformed frames (a CALLERROR each), on each OCPP version's ingest topic."""
    from chargenet_shim.ocpp_version import OcppVersion

    frames["poison_sent"], frames["malformed_sent"], frames["malformed_answered"] = [], [], set()
    for version in OcppVersion:
        frames["poison_sent"] += await _send_poison(poison, version)
        sent, answered = await _send_malformed(malformed, version)
        frames["malformed_sent"] += sent
        frames["malformed_answered"] |= answered
    frames["counts"]["malformed frames"] = len(frames["malformed_sent"])
    frames["counts"]["poison frames"] = len(frames["poison_sent"])


async def _send_poison(charger: Any, version: Any) -> list[str]:
    """POISON_FRAMES Heartbeats on `version`'s ingest topic; their message ids."""
    from chargenet_shim.link import ChargerLink

    poison_ids = [f"poison-{version.schemas}-{n}" for n in range(POISON_FRAMES)]
    link = ChargerLink(charger, ocpp_version=version)
    await link.connect()
    try:
        for message_id in poison_ids:
            await link.send(json.dumps([2, message_id, "Heartbeat", {}]))
    finally:
        await link.close()
    return poison_ids


async def _send_malformed(charger: Any, version: Any) -> tuple[list[str], set[str]]:
    """MALFORMED_FRAMES on `version`'s ingest topic: their message ids, and those answered with a
    CALLERROR within REPLY_TIMEOUT_S."""
    from chargenet_shim.link import ChargerLink

    malformed_ids = [f"bad-{version.schemas}-{n}" for n in range(len(MALFORMED_FRAMES))]
    answered: set[str] = set()
    link = ChargerLink(charger, ocpp_version=version)
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
    return malformed_ids, answered


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
    from chargenet.domain.money import to_minor_units

    return [
        BilledSession(
            r.cdr_id, r.session_id, r.charger_id, r.energy_wh, to_minor_units(r.total_incl_vat, r.currency)
        )
        for r in DynamoCdrStore().list()
        if r.charger_id in charger_ids and r.credit_reference_id is None
    ]


class _StripeFaults:
    """The Stripe fault proxy's control (chargenet_local.stripe_faults)."""

    def __init__(self, url: str) -> None:
        self._url = url

    def arm(self, probability: float, seed: int) -> None:
        if probability <= 0:
            return
        for n, mode in enumerate(STRIPE_FAULT_MODES):
            rule = {
                "path": STRIPE_FAULTED_CALLS,
                "mode": mode,
                "times": None,
                "probability": probability,
                "seed": seed + n,
                "hold_s": STRIPE_HOLD_S,
            }
            requests.post(self._url, json=rule, timeout=10).raise_for_status()

    def clear(self) -> dict[str, int]:
        """Disarm every rule; the failures each mode injected."""
        rules = requests.get(self._url, timeout=10).json()["rules"]
        requests.delete(self._url, timeout=10).raise_for_status()
        injected: Counter[str] = Counter()
        for rule in rules:
            injected[rule["mode"]] += rule["injected"]
        return dict(injected)


def _paid(stripe: _StripeTruth, session_urls: Sequence[str], timeout_s: float, say: Say) -> list[PaidSession]:
    """Each driver's payment once settled (a capture still retrying waits for the payment sweep),
    with Stripe's record of its PaymentIntent."""
    from chargenet.adapters.payments_dynamodb import DynamoPaymentStore
    from chargenet.domain.payments import OPEN_STATES, token_digest

    store = DynamoPaymentStore()
    digests = [token_digest(url.rsplit("/", 1)[1]) for url in session_urls]
    deadline = time.monotonic() + timeout_s
    while True:
        payments = [store.by_token(digest) for digest in digests]
        # A payment whose charger never started holds money until the sweep cancels it: nothing taken.
        settling = [p for p in payments if p is None or (p.session_id and p.state in OPEN_STATES)]
        if not settling or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    settled = sum(p is not None and p.state not in OPEN_STATES for p in payments)
    say(f"payments: {settled}/{len(payments)} settled, {len(settling)} with a session still open")
    # A session URL the pay link gave out without a payment record: the payment was lost.
    lost = [PaidSession("?", "(no record)", None, 0, 0, 0, 0, []) for payment in payments if payment is None]
    return [stripe.paid_session(payment) for payment in payments if payment is not None] + lost


def _usage_lines(
    stripe: _StripeTruth, customers: Sequence[str], cdr_ids: set[str], timeout_s: float, say: Say
) -> list[UsageLine]:
    """The subscribers' invoice items at Stripe, once each CDR has one (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [
            UsageLine(item["id"], str((item.get("metadata") or {}).get("cdr_id", "")), int(item["amount"]))
            for customer in customers
            for item in stripe.all("/v1/invoiceitems", {"customer": customer})
        ]
        if cdr_ids <= {line.cdr_id for line in lines} or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    say(f"usage lines at Stripe: {len(lines)} for {len(cdr_ids)} subscriber CDRs")
    return lines


class _StripeTruth:
    """Stripe's own records, read from the emulator (stripe_api_base), not through the fault proxy."""

    def __init__(self, state: Any) -> None:
        from chargenet.adapters.stripe_gateway import read_secret

        self._base = state.stripe_api_base
        self._auth = (read_secret(state.secrets["StripeApiKeySecret"]), "")

    @functools.cached_property
    def _charges(self) -> dict[str, list[dict[str, Any]]]:
        """Every charge by its PaymentIntent, read once the payments have settled."""
        by_intent: dict[str, list[dict[str, Any]]] = {}
        for charge in self.all("/v1/charges"):
            by_intent.setdefault(charge.get("payment_intent") or "", []).append(charge)
        return by_intent

    def paid_session(self, payment: Any) -> PaidSession:
        from chargenet.domain.payments import minimum_minor

        intent_id = payment.payment_intent_id
        intent = self._get(f"/v1/payment_intents/{intent_id}") if intent_id else {}
        charges = self._charges.get(intent_id or "", [])
        return PaidSession(
            session_id=payment.session_id or "-",
            payment_id=payment.payment_id,
            intent_id=intent_id,
            hold_minor=int(intent.get("amount", 0)),
            minimum_minor=minimum_minor(payment.currency),
            received_minor=int(intent.get("amount_received", 0)),
            refunded_minor=sum(int(c["amount_refunded"]) for c in charges),
            captured_charges=[int(c["amount_captured"]) for c in charges if c.get("captured")],
        )

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = requests.get(f"{self._base}{path}", params=params, auth=self._auth, timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    def all(self, path: str, filters: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every object of a list endpoint, page by page."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {**(filters or {}), "limit": 100}
        while True:
            page = self._get(path, params)
            found += page["data"]
            if not page.get("has_more") or not page["data"]:
                return found
            params["starting_after"] = page["data"][-1]["id"]


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


def _alerts(state: Any, charger_ids: Sequence[str], reported: int, say: Say) -> list[str]:
    """`charger/code` of every raised safety alert the operators received for these chargers,
    once the `reported` faults have each had time to page."""
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
    while len(received()) < reported and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # a duplicate would follow within the retries' delays
    keys = received()
    say(f"operator inbox: {len(keys)} safety alerts for {reported} injected faults")
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
    parser.add_argument(
        "--paying-chargers",
        type=int,
        default=ChaosOptions.paying_chargers,
        help="chargers whose drivers pay through the pay link, one per connector",
    )
    parser.add_argument(
        "--subscriber-chargers",
        type=int,
        default=ChaosOptions.subscriber_chargers,
        help="chargers whose connector 1 is used by an active subscriber",
    )
    parser.add_argument(
        "--arrival-spread-s",
        type=float,
        default=ChaosOptions.arrival_spread_s,
        help="real seconds over which the first driver on each connector arrives",
    )
    parser.add_argument(
        "--drive-timeout-s",
        type=float,
        default=ChaosOptions.drive_timeout_s,
        help="the fleet's sessions must all end within this (real seconds), else the run fails",
    )
    parser.add_argument(
        "--ocpp-versions",
        default=",".join(v.removeprefix("ocpp") for v in ChaosOptions.ocpp_versions),
        help="OCPP versions repeated over the chargers, e.g. 1.6,1.6,2.0.1 (every third 2.0.1) or 2.0.1",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.chargers < 1 or args.sessions_per_charger < 1 or args.speed <= 0:
        parser.error("--chargers and --sessions-per-charger must be at least 1, --speed positive")
    if args.function_timeout_s is not None and args.function_timeout_s <= 0:
        parser.error("--function-timeout-s must be positive")
    if args.arrival_spread_s < 0 or args.drive_timeout_s <= 0:
        parser.error("--arrival-spread-s cannot be negative, --drive-timeout-s must be positive")
    if args.paying_chargers < 0 or args.subscriber_chargers < 0:
        parser.error("--paying-chargers and --subscriber-chargers cannot be negative")
    from chargenet_shim.sim.fleet import parse_versions

    try:
        versions = tuple(str(v) for v in parse_versions(args.ocpp_versions))
    except ValueError as exc:
        parser.error(f"--ocpp-versions: {exc}")
    options = ChaosOptions(
        chargers=args.chargers,
        sessions_per_charger=args.sessions_per_charger,
        seed=args.seed,
        speed=args.speed,
        function_timeout_s=args.function_timeout_s,
        paying_chargers=args.paying_chargers,
        subscriber_chargers=args.subscriber_chargers,
        arrival_spread_s=args.arrival_spread_s,
        drive_timeout_s=args.drive_timeout_s,
        ocpp_versions=versions,
    )
    # ocpp logs every late or duplicated reply the chaos provokes: expected here, not news.
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    say = stepper()
    result = _on_fresh_stack(options, say)
    print(table(result.verdicts, result.not_started))
    print(
        f"sessions delivered: {result.sessions} {result.sessions_by_version}, "
        f"not started: {len(result.not_started)}"
    )
    print(f"injected: {json.dumps(result.injected)}")
    print(f"chaos run: {'OK' if result.ok else 'VIOLATIONS'} in {result.seconds:.0f} s")
    write_results(args.out, result.as_json(options))
    return 0 if result.ok else 1


def _on_fresh_stack(options: ChaosOptions, say: Say) -> ChaosResult:
    from chargenet_local import stack

    # On a loaded 2-core machine the stack's start-up can outlast the CLI's patience.
    stack.READY_TIMEOUT_S = max(stack.READY_TIMEOUT_S, STACK_READY_TIMEOUT_S)
    os.environ.setdefault("CHARGENET_SCHEDULE_EVERY_S", str(SWEEP_EVERY_S))
    os.environ.setdefault("CHARGENET_PARAMETERS", STACK_PARAMETERS)
    with fresh_stack("chargenet-chaos-", say=say) as state:
        return run_chaos(state, options, say)


if __name__ == "__main__":
    sys.exit(main())
