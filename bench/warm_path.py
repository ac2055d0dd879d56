"""Warm-path benchmark: CPU per OCPP message through the ingest service, I/O excluded.

Each message goes through what the ingest function does once warm: the rule's event parsed
into `IngestEvent` (as Powertools' event_parser does), then `OcppIngest.handle` (frame
parsing, schema validation, routing, domain, idempotency) over the in-memory stores of
tests/fakes.py (tests/ingest_network.Network), so no network or DynamoDB time is counted.
A charging cycle (BootNotification, Heartbeat, StatusNotification, Authorize,
StartTransaction, MeterValues x --meter-values, StopTransaction) is repeated many times; each
message is timed with time.process_time_ns, and right after it the baseline: `json.loads` +
`json.dumps` of the same frame, timed the same way. The ratio per message type is the median
message CPU over the median baseline CPU (and the same with means).

Usage: .venv/bin/python -m bench.warm_path [--cycles 400] [--out bench/results/warm_path.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, write_results

DEFAULT_OUT = RESULTS / "warm_path.json"
MESSAGE_TYPES = (
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "MeterValues",
    "StopTransaction",
)
FRESH_NETWORK_EVERY = 50  # cycles: the in-memory stores stay small, as one charger's would


def cycle_frames(cycle: int, tx: Callable[[], int], meter_values: int) -> list[tuple[str, Callable[[], Any]]]:
    """The payloads of one charging cycle; later ones read the transaction id the start got."""
    from tests.ingest_network import ts

    base = cycle * 120.0  # minutes: each cycle on its own stretch of the charger's clock
    wh0 = 1000 + cycle * 50_000
    frames: list[tuple[str, Callable[[], Any]]] = [
        (
            "BootNotification",
            lambda: {
                "chargePointVendor": "Acme",
                "chargePointModel": "AC22",
                "chargePointSerialNumber": "SN-1",
                "firmwareVersion": "1.2.3",
            },
        ),
        ("Heartbeat", lambda: {}),
        (
            "StatusNotification",
            lambda: {"connectorId": 1, "errorCode": "NoError", "status": "Preparing", "timestamp": ts(base)},
        ),
        ("Authorize", lambda: {"idTag": "TAG-OK"}),
        (
            "StartTransaction",
            lambda: {"connectorId": 1, "idTag": "TAG-OK", "meterStart": wh0, "timestamp": ts(base + 1)},
        ),
    ]
    for k in range(meter_values):
        minutes, wh = base + 2 + k, wh0 + 300 * (k + 1)
        frames.append(
            (
                "MeterValues",
                lambda minutes=minutes, wh=wh: {
                    "connectorId": 1,
                    "transactionId": tx(),
                    "meterValue": [
                        {
                            "timestamp": ts(minutes),
                            "sampledValue": [
                                {
                                    "value": str(wh),
                                    "measurand": "Energy.Active.Import.Register",
                                    "unit": "Wh",
                                },
                                {"value": "18000", "measurand": "Power.Active.Import", "unit": "W"},
                            ],
                        }
                    ],
                },
            )
        )
    stop_wh, stop_at = wh0 + 300 * (meter_values + 1), base + 3 + meter_values
    frames.append(
        (
            "StopTransaction",
            lambda: {
                "transactionId": tx(),
                "meterStop": stop_wh,
                "timestamp": ts(stop_at),
                "idTag": "TAG-OK",
            },
        )
    )
    return frames


def baseline(frame: bytes) -> None:
    json.dumps(json.loads(frame))


def run(cycles: int, meter_values: int) -> dict[str, Any]:
    from chargenet.services.ingest import IngestEvent
    from tests.ingest_network import T0, Network

    cpu: dict[str, list[int]] = defaultdict(list)
    base: dict[str, list[int]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    network = Network()
    state = {"tx": 0, "n": 0}
    for cycle in range(cycles):
        if cycle % FRESH_NETWORK_EVERY == 0:
            network = Network()
        network.now = T0 + timedelta(minutes=cycle * 120 + 1)
        for action, payload in cycle_frames(cycle, lambda: state["tx"], meter_values):
            state["n"] += 1
            frame = json.dumps([2, f"m{state['n']}", action, payload()]).encode()
            raw_event = {
                "charger_id": "CP-1",
                "client_id": "CP-1",
                "payload": base64.b64encode(frame).decode(),
                "received_at": int(network.now.timestamp() * 1000),
            }
            sent = len(network.channel.sent)
            started = time.process_time_ns()
            network.ingest.handle(IngestEvent.model_validate(raw_event))
            cpu[action].append(time.process_time_ns() - started)
            started = time.process_time_ns()
            baseline(frame)
            base[action].append(time.process_time_ns() - started)
            reply = json.loads(network.channel.sent[-1][1]) if len(network.channel.sent) > sent else None
            if reply is None or reply[0] != 3:
                errors[action] += 1
            elif action == "StartTransaction":
                state["tx"] = reply[2]["transactionId"]
    return {"cpu_ns": cpu, "baseline_ns": base, "errors": errors}


def summarise(measured: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for action in MESSAGE_TYPES:
        cpu, base = measured["cpu_ns"].get(action, []), measured["baseline_ns"].get(action, [])
        if not cpu:
            continue
        med, base_med = statistics.median(cpu), max(statistics.median(base), 1)
        mean, base_mean = statistics.fmean(cpu), max(statistics.fmean(base), 1)
        out[action] = {
            "messages": len(cpu),
            "not_answered_with_callresult": measured["errors"].get(action, 0),
            "cpu_us_median": round(med / 1000, 1),
            "cpu_us_mean": round(mean / 1000, 1),
            "baseline_us_median": round(base_med / 1000, 2),
            "ratio_median": round(med / base_med, 1),
            "ratio_mean": round(mean / base_mean, 1),
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=400)
    parser.add_argument("--meter-values", type=int, default=5, help="MeterValues per session")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    measured = run(args.cycles, args.meter_values)
    report = {
        "generated_by": "python -m bench.warm_path " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "cycles": args.cycles,
        "baseline": "json.loads + json.dumps of the same frame, timed right after each message",
        "real_seconds": round(time.perf_counter() - started, 1),
        "messages": summarise(measured),
    }
    write_results(args.out, report)
    print(summary(report))
    print(f"\nwritten to {args.out}")
    return 0


def summary(report: dict[str, Any]) -> str:
    lines = [f"{'MESSAGE':20} {'N':>6} {'CPU us (med)':>13} {'BASE us':>8} {'x BASE':>7}"]
    for action, r in report["messages"].items():
        lines.append(
            f"{action:20} {r['messages']:6} {r['cpu_us_median']:13} {r['baseline_us_median']:8} {r['ratio_median']:7}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
