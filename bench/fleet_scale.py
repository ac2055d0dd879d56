"""Fleet-scale benchmark: how large a charging fleet the local stack carries on this machine.

Starts its own local stack, then runs steps of growing fleets. In each step every charger of
the fleet charges (chargenet_shim.sim.fleet.run_sessions over mTLS, MeterValues every 60
simulated seconds), the fleet started in ten staggered groups so its meter values spread
over the interval as a real fleet's do. While the fleet charges, probe chargers measure:

* publish -> DynamoDB: a probe's MeterValues, from the publish to the moment its reading is
  in the session record (polled every POLL_S);
* safety fault -> alert: a probe's StatusNotification Faulted/GroundFailure (paged at once),
  from the publish to the SNS notification's own timestamp (a fresh probe charger each
  time: repeated faults on one charger would be a flapping storm, and are not paged);
* the baselines of the same moment: mosquitto's own round trip (a publish to a topic the
  same client subscribes to), and the Heartbeat round trip (mosquitto, rules engine, ingest
  function, IoT Data endpoint and back).

A fleet of N chargers at --speed k sends meter values as often as N*k chargers at real time
do: its `equivalent_chargers`. A step is sustained when every charger came up and charged,
and the publish -> DynamoDB p99 stays within --max-p99-s; the run stops at the first step
that is not. Writes bench/results/fleet_scale.json.

Usage: .venv/bin/python -m bench.fleet_scale [--steps 25,50,100] [--speed 6] [--step-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import EXAMPLE_TARIFF, RESULTS, fresh_stack, write_results
from chargenet_cli.errors import CliError
from chargenet_cli.output import table
from chargenet_cli.provisioning import charger_dir, provision
from chargenet_local.alert_sink import read_inbox
from chargenet_local.broker import BACKEND_USER
from chargenet_local.stack import StackState

DEFAULT_OUT = RESULTS / "fleet_scale.json"
METER_INTERVAL_S = 60  # simulated seconds, as the issue asks
GROUPS = 10
POLL_S = 0.02
PROBE_EVERY_S = 0.5
PROBE_POWER_W = 10_800  # the probe's meter rises as a 10.8 kW session's: no metering anomaly
TAG = "FLEET-BENCH"

log = logging.getLogger("bench.fleet_scale")


@dataclass
class StepResult:
    chargers: int
    speed: float
    came_up: int = 0
    sessions_ok: int = 0
    sessions_failed: int = 0
    window_s: float = 0.0
    store_latency_s: list[float] = field(default_factory=list)
    alert_latency_s: list[float] = field(default_factory=list)
    heartbeat_rtt_s: list[float] = field(default_factory=list)
    broker_rtt_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with fresh_stack("chargenet-fleet-", home=args.home) as state:
            results = _benchmark(state, args)
    except (RuntimeError, CliError) as exc:
        print(f"fleet_scale: {exc}", file=sys.stderr)  # the harness said where the stack's files are
        return 1
    write_results(args.out, results)
    print(_summary(results))
    print(f"\nwritten: {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", default="25,50,100,150", help="fleet sizes, comma separated")
    parser.add_argument("--speed", type=float, default=6.0, help="simulated seconds per real second")
    parser.add_argument("--step-s", type=float, default=60.0, help="real seconds of probing per step")
    parser.add_argument("--fault-probes", type=int, default=3, help="safety faults injected per step")
    parser.add_argument("--max-p99-s", type=float, default=5.0, help="publish -> DynamoDB p99 to sustain")
    parser.add_argument("--home", type=Path, help="stack folder (default: a temporary one, removed)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def _benchmark(state: StackState, args: argparse.Namespace) -> dict[str, Any]:
    steps = [int(n) for n in args.steps.split(",")]
    _price_and_tag()
    fleet = _provision(state, "FLEET", max(steps))
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    for size in steps:
        probes = _provision(state, f"PROBE{len(results)}", 1 + args.fault_probes)
        step = asyncio.run(_step(state, fleet[:size], probes, args))
        results.append(_step_summary(step, args.max_p99_s))
        print(_summary({"steps": results[-1:]}), flush=True)
        if not results[-1]["sustained"]:
            break
    sustained = [r for r in results if r["sustained"]]
    return {
        "benchmark": "fleet_scale",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 1)},
        "meter_interval_s": METER_INTERVAL_S,
        "speed": args.speed,
        "max_p99_s": args.max_p99_s,
        "largest_sustained": max(sustained, key=lambda r: r["equivalent_chargers"]) if sustained else None,
        "steps": results,
        "duration_s": round(time.monotonic() - started, 1),
    }


def _price_and_tag() -> None:
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
    from chargenet.domain.clock import utc_now
    from chargenet.domain.models import TagStatus
    from chargenet.domain.tariffs import load_tariff

    tariff = load_tariff(EXAMPLE_TARIFF.read_text())
    book = DynamoTariffBook()
    book.store(tariff.id, tariff.model_dump_json(exclude_none=True), utc_now())
    book.assign(tariff.id)
    DynamoTagDirectory().put(TAG, TagStatus.ACCEPTED, max_concurrent=100_000, expires_at=None)


def _provision(state: StackState, prefix: str, count: int) -> list[Any]:
    from chargenet_shim.credentials import ChargerCredentials

    run = uuid.uuid4().hex[:4].upper()
    ids = [f"{prefix}-{run}-{n:04d}" for n in range(count)]
    for charger_id in ids:
        provision(state, charger_id, site_id="SITE-BENCH")
    return [ChargerCredentials.load(charger_dir(state, charger_id)) for charger_id in ids]


async def _step(
    state: StackState, fleet: list[Any], probes: list[Any], args: argparse.Namespace
) -> StepResult:
    from chargenet_shim.sim.fleet import run_sessions
    from chargenet_shim.sim.simclock import SimClock

    result = StepResult(chargers=len(fleet), speed=args.speed)
    charging = asyncio.Event()
    window_s = args.step_s

    def progress(charger_id: str, stage: str) -> None:
        if stage == "done":
            result.came_up += 1
            if result.came_up == len(fleet):
                charging.set()

    plan = _plan(window_s * args.speed * 1.5)
    groups = [fleet[g::GROUPS] for g in range(GROUPS) if fleet[g::GROUPS]]

    async def group(index: int, members: list[Any]) -> list[Any]:
        await asyncio.sleep(index * METER_INTERVAL_S / args.speed / len(groups))
        return await run_sessions(members, [[plan]] * len(members), SimClock(speed=args.speed), progress)

    running = asyncio.gather(*(group(i, m) for i, m in enumerate(groups)))
    try:
        await asyncio.wait_for(charging.wait(), timeout=120 + len(fleet))
    except TimeoutError:
        result.errors.append(f"only {result.came_up}/{len(fleet)} chargers came up")
    opened = time.monotonic()
    await _probe(state, probes, window_s, result)
    result.window_s = round(time.monotonic() - opened, 1)
    outcomes = [o for per_group in await running for o in per_group]
    result.sessions_ok = sum(1 for o in outcomes if hasattr(o, "transaction_id"))
    result.sessions_failed = len(outcomes) - result.sessions_ok
    return result


def _plan(session_sim_s: float) -> Any:
    """A session of about `session_sim_s` simulated seconds at 11 kW, below the taper."""
    from chargenet_shim.sim.session import SessionPlan

    power_kw = 11.0
    battery_kwh = power_kw * session_sim_s / 3600 / 0.7
    return SessionPlan(
        connector_id=1,
        id_tag=TAG,
        battery_kwh=round(battery_kwh, 3),
        start_soc=10,
        target_soc=80,
        max_power_kw=power_kw,
        meter_interval_s=METER_INTERVAL_S,
    )


async def _probe(state: StackState, probes: list[Any], window_s: float, result: StepResult) -> None:
    """Meter, heartbeat and broker probes through the window; the fault probes spread over it."""
    from chargenet_shim.sim.simulator import SimulatedCharger

    meter_probe = SimulatedCharger(probes[0])
    broker = _BrokerEcho(state)
    await meter_probe.start()
    try:
        try:
            await meter_probe.run_boot()
            transaction = await _start_transaction(meter_probe)
        except Exception as exc:  # a backlog this deep is the step's result: not sustained
            result.errors.append(f"meter probe could not start charging: {type(exc).__name__}: {exc}")
            return
        deadline = time.monotonic() + window_s
        fault_every = window_s / max(len(probes) - 1, 1)
        next_fault, faults = time.monotonic() + fault_every / 2, iter(probes[1:])
        energy_started = time.monotonic()
        while time.monotonic() < deadline:
            await _measure(result.heartbeat_rtt_s, result.errors, _timed(meter_probe.heartbeat()))
            await _measure(result.broker_rtt_s, result.errors, asyncio.to_thread(broker.round_trip))
            wh = int((time.monotonic() - energy_started) * PROBE_POWER_W / 3600)
            await _measure(result.store_latency_s, result.errors, _meter_value(meter_probe, transaction, wh))
            if time.monotonic() >= next_fault and (credentials := next(faults, None)) is not None:
                await _measure(result.alert_latency_s, result.errors, _fault_to_alert(state, credentials))
                next_fault += fault_every
            await asyncio.sleep(PROBE_EVERY_S)
    finally:
        broker.close()
        await meter_probe.stop()


async def _measure(samples: list[float], errors: list[str], probe: Awaitable[float]) -> None:
    try:
        samples.append(await probe)
    except Exception as exc:  # a lost probe is reported, and the step goes on
        errors.append(f"{type(exc).__name__}: {exc}")


async def _timed(call: Awaitable[Any]) -> float:
    started = time.monotonic()
    await call
    return time.monotonic() - started


async def _start_transaction(charger: Any) -> int:
    from ocpp.v16 import call
    from ocpp.v16.enums import ChargePointStatus

    await charger.send_status(1, ChargePointStatus.preparing)
    reply = await charger.outbox.call(
        call.StartTransaction(connector_id=1, id_tag=TAG, meter_start=0, timestamp=_stamp(_now()))
    )
    await charger.send_status(1, ChargePointStatus.charging)
    return int(reply.transaction_id)


async def _meter_value(charger: Any, transaction_id: int, wh: int) -> float:
    """Seconds from the MeterValues publish to its reading in the session record."""
    from ocpp.v16 import call

    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore

    at = _now()
    sample = {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    published = time.monotonic()
    await charger.outbox.call(
        call.MeterValues(
            connector_id=1,
            transaction_id=transaction_id,
            meter_value=[{"timestamp": _stamp(at), "sampled_value": [sample]}],
        )
    )
    store = DynamoSessionStore()
    return await _until(
        lambda: (
            (s := store.get(str(transaction_id))) is not None
            and s.last_reading_at is not None
            and s.last_reading_at >= at.replace(microsecond=at.microsecond // 1000 * 1000)
        ),
        published,
    )


async def _fault_to_alert(state: StackState, credentials: Any) -> float:
    """Seconds from a GroundFailure's publish to the SNS notification of its page."""
    from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus

    from chargenet_shim.sim.simulator import SimulatedCharger

    charger = SimulatedCharger(credentials)
    await charger.start()
    try:
        await charger.run_boot()
        published_at = dt.datetime.now(dt.UTC)
        await charger.send_status(1, ChargePointStatus.faulted, ChargePointErrorCode.ground_failure)
        alert = await _until(lambda: _alert_for(state, credentials.charger_id), time.monotonic())
        await charger.send_status(1, ChargePointStatus.available)
    finally:
        await charger.stop()
    received = dt.datetime.fromisoformat(alert["received_at"].replace("Z", "+00:00"))
    return (received - published_at).total_seconds()


def _alert_for(state: StackState, charger_id: str) -> dict[str, Any] | None:
    for alert in read_inbox(Path(state.home)):
        text = f"{alert.get('subject')} {alert.get('message')}"
        if charger_id in text and alert.get("attributes", {}).get("severity") == "safety_critical":
            return alert
    return None


async def _until(check: Any, started: float, timeout_s: float = 60.0) -> Any:
    """Poll `check` until it is truthy; returns its value, or the seconds since `started` for True."""
    while time.monotonic() - started < timeout_s:
        value = await asyncio.to_thread(check)
        if value:
            return time.monotonic() - started if value is True else value
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"not seen within {timeout_s:.0f} s")


class _BrokerEcho:
    """mosquitto's own round trip: a publish to a topic this client subscribes to, QoS 1."""

    def __init__(self, state: StackState) -> None:
        from awscrt import mqtt
        from awsiot import mqtt_connection_builder

        folder = Path(state.home) / "broker"
        self._topic = f"bench/echo/{uuid.uuid4().hex[:8]}"
        self._received: asyncio.Queue[bytes] | None = None
        self._arrived: dict[bytes, float] = {}
        self._connection = mqtt_connection_builder.mtls_from_path(
            endpoint="127.0.0.1",
            port=state.mqtt_port,
            cert_filepath=str(folder / f"{BACKEND_USER}.pem"),
            pri_key_filepath=str(folder / f"{BACKEND_USER}.key"),
            ca_filepath=state.ca_path,
            client_id=f"bench-echo-{uuid.uuid4().hex[:6]}",
            clean_session=True,
        )
        self._connection.connect().result(10)
        subscribed, _ = self._connection.subscribe(self._topic, mqtt.QoS.AT_LEAST_ONCE, self._on_message)
        subscribed.result(10)

    def _on_message(self, topic: str, payload: bytes, **_: object) -> None:
        self._arrived[payload] = time.monotonic()

    def round_trip(self) -> float:
        from awscrt import mqtt

        token = uuid.uuid4().hex.encode()
        sent = time.monotonic()
        published, _ = self._connection.publish(self._topic, token, mqtt.QoS.AT_LEAST_ONCE)
        published.result(10)
        while token not in self._arrived:
            if time.monotonic() - sent > 10:
                raise TimeoutError("echo not received within 10 s")
            time.sleep(0.001)
        return self._arrived.pop(token) - sent

    def close(self) -> None:
        self._connection.disconnect().result(10)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(at: dt.datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _step_summary(step: StepResult, max_p99_s: float) -> dict[str, Any]:
    store, alerts = _percentiles(step.store_latency_s), _percentiles(step.alert_latency_s)
    broker, heartbeat = _percentiles(step.broker_rtt_s), _percentiles(step.heartbeat_rtt_s)
    sustained = (
        step.came_up == step.chargers
        and step.sessions_failed == 0
        and store["p99"] is not None
        and store["p99"] <= max_p99_s
    )
    return {
        "chargers": step.chargers,
        "equivalent_chargers": round(step.chargers * step.speed),
        "meter_values_per_s": round(step.chargers * step.speed / METER_INTERVAL_S, 2),
        "came_up": step.came_up,
        "sessions_ok": step.sessions_ok,
        "sessions_failed": step.sessions_failed,
        "window_s": step.window_s,
        "publish_to_dynamodb_s": store,
        "fault_to_alert_s": alerts,
        "broker_rtt_s": broker,
        "heartbeat_rtt_s": heartbeat,
        "publish_to_dynamodb_p50_vs_broker_rtt": _ratio(store["p50"], broker["p50"]),
        "fault_to_alert_p50_vs_broker_rtt": _ratio(alerts["p50"], broker["p50"]),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "probe_errors": step.errors[:10],
        "sustained": sustained,
    }


def _percentiles(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"samples": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "samples": len(ordered),
        "p50": round(statistics.median(ordered), 4),
        "p99": round(p99, 4),
        "max": round(ordered[-1], 4),
    }


def _ratio(value: float | None, baseline: float | None) -> float | None:
    return round(value / baseline, 1) if value is not None and baseline else None


def _summary(results: dict[str, Any]) -> str:
    rows = [
        (
            s["chargers"],
            s["equivalent_chargers"],
            s["meter_values_per_s"],
            f"{s['sessions_ok']}/{s['chargers']}",
            _ms(s["broker_rtt_s"]["p50"]),
            _ms(s["heartbeat_rtt_s"]["p50"]),
            f"{_ms(s['publish_to_dynamodb_s']['p50'])} / {_ms(s['publish_to_dynamodb_s']['p99'])}",
            f"{_ms(s['fault_to_alert_s']['p50'])} / {_ms(s['fault_to_alert_s']['max'])}",
            s["publish_to_dynamodb_p50_vs_broker_rtt"],
            "yes" if s["sustained"] else "NO",
        )
        for s in results["steps"]
    ]
    headers = [
        "CHARGERS",
        "EQUIV@60S",
        "MV/S",
        "SESSIONS",
        "BROKER RTT MS",
        "HEARTBEAT MS",
        "TO DYNAMODB P50/P99 MS",
        "FAULT->ALERT P50/MAX MS",
        "P50/RTT",
        "SUSTAINED",
    ]
    return table(headers, rows)


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"


if __name__ == "__main__":
    sys.exit(main())
