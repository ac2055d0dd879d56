"""Fault-detection benchmark: a scripted fleet with injected faults on a fresh local stack.

Starts its own local stack (scheduled functions every second, the template parameters in
--parameters), runs the scenario (scenarios/faults.yaml) as `chargenet scenario run` does,
watches the backend's fault records meanwhile, stops the stack and writes
bench/results/fault_detection.json. For each fault kind:

* alerts: detection rate (injections an operator alert matched / injections), repeats
  (further alerts a detected injection explains), false alerts (paging alerts no injection
  explains, filed under the kind that would have expected them), time from injection to
  alert, median and worst;
* fault records: the same for the faults the backend recorded, whether or not its alert
  policy pages them (minor faults never page; majors only once open MajorAlertDelaySeconds);
* the ratio of the median alert time to the run's broker round trip (a Heartbeat CALL through
  mosquitto, the rules engine and the ingest function, and its reply), the baseline.

Usage: .venv/bin/python -m bench.fault_detection [--scenario FILE] [--parameters "Name=value ..."]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, ROOT, fresh_stack, write_results
from chargenet_cli.errors import CliError
from chargenet_cli.output import table
from chargenet_local.commands.scenario_cmd import ScenarioReport, execute, read, stderr_stepper
from chargenet_shim.sim.scenario import Scenario, injection_label
from chargenet_shim.sim.scoring import KindScore, Observation, match, score

DEFAULT_SCENARIO = ROOT / "scenarios" / "faults.yaml"
DEFAULT_OUT = RESULTS / "fault_detection.json"
# Short enough for a run of minutes: a 30 s heartbeat (the template's minimum), a disconnected
# charger offline after 30 s, major faults paged once open 30 s. The template defaults are
# 300 s, 120 s and 600 s; pass --parameters "" to measure with those.
DEFAULT_PARAMETERS = "HeartbeatIntervalSeconds=30 OfflineGraceSeconds=30 MajorAlertDelaySeconds=30"
# The sweeps (offline, reboot loop, major-fault pages) run every second instead of every minute.
SCHEDULE_EVERY_S = "1"
WATCH_EVERY_S = 0.5

log = logging.getLogger("bench.fault_detection")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Before anything reads them: the stack's daemon inherits this environment.
    os.environ["CHARGENET_SCHEDULE_EVERY_S"] = SCHEDULE_EVERY_S
    os.environ["CHARGENET_PARAMETERS"] = args.parameters
    try:
        scenario = read(args.scenario, args.settle_s)
    except CliError as exc:
        print(f"fault_detection: {exc}", file=sys.stderr)
        return 2
    try:
        results = _benchmark(scenario, args)
    except (RuntimeError, CliError) as exc:  # the stack did not start, or the run could not
        print(f"fault_detection: {exc}", file=sys.stderr)  # the harness said where the stack's files are
        return 1
    write_results(args.out, results)
    print(_summary(results))
    print(f"\nwritten to {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--parameters",
        default=DEFAULT_PARAMETERS,
        help=f"template parameters (default: {DEFAULT_PARAMETERS})",
    )
    parser.add_argument(
        "--settle-s", type=float, help="real seconds to wait for alerts (default: the scenario's)"
    )
    parser.add_argument("--home", type=Path, help="the stack's folder (default: a new temporary one)")
    return parser


def _benchmark(scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    say = stderr_stepper()
    detail = args.parameters or "template defaults"
    with fresh_stack("chargenet-bench-", home=args.home, say=say, detail=detail) as state:
        started = time.monotonic()
        with FaultWatcher() as watcher:
            report = execute(state, scenario, say)
        duration_s = time.monotonic() - started
    records = [r for r in watcher.seen if r.at <= report.settled_at]
    return _results(args, report, records, duration_s)


class FaultWatcher:
    """Notes when each fault episode first shows in the backend's fault records (every WATCH_EVERY_S)."""

    def __init__(self) -> None:
        # The tables are bound by local_env.connect (chargenet.composition), not by this import.
        from chargenet.adapters.faults_dynamodb import DynamoFaultStore

        self._store = DynamoFaultStore()
        self._known = {(f.fault_id, f.episode) for f in self._store.list()}
        self.seen: list[Observation] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fault-watcher", daemon=True)

    def __enter__(self) -> FaultWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_EVERY_S):
            try:
                self._look()
            except Exception:  # a moto hiccup: the next look catches up
                log.exception("reading the fault records failed")

    def _look(self) -> None:
        faults = self._store.list()
        now = dt.datetime.now(dt.UTC)
        for fault in faults:
            if (fault.fault_id, fault.episode) in self._known:
                continue
            self._known.add((fault.fault_id, fault.episode))
            what = fault.evidence[-1] if fault.evidence else fault.code
            self.seen.append(Observation(now, fault.charger_id, fault.kind.value, fault.code, what))


def _results(
    args: argparse.Namespace, report: ScenarioReport, records: list[Observation], duration_s: float
) -> dict[str, Any]:
    rtt_ms = statistics.median(report.run.rtt_ms) if report.run.rtt_ms else None
    alerted = {s.label: s for s in score(report.outcomes, report.false_alerts)}
    recorded = {s.label: s for s in score(*match(report.run.injected, records))}
    kinds = {
        label: _kind(alerted.get(label), recorded.get(label), rtt_ms)
        for label in sorted(set(alerted) | set(recorded))
    }
    return {
        "benchmark": "fault_detection",
        "scenario": _shown(args.scenario),
        "run_at": report.run.started_at.isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 1),
        "speed": report.scenario.speed,
        "stack": {
            "parameters": args.parameters or "template defaults",
            "schedule_every_s": float(SCHEDULE_EVERY_S),
            "heartbeat_interval_s": report.run.heartbeat_interval_s,
        },
        "baseline": {
            "broker_rtt_ms": _round(rtt_ms),
            "samples": len(report.run.rtt_ms),
            "what": "Heartbeat CALL to CALLRESULT: mosquitto, rules engine, ingest function and back",
        },
        "totals": {
            "injected": sum(k["injected"] for k in kinds.values()),
            "alerted": sum(k["alerted"] for k in kinds.values()),
            "false_alerts": sum(k["false_alerts"] for k in kinds.values()),
        },
        "kinds": kinds,
        "failed_injections": [
            {
                "label": injection_label(o.injected.injection),
                "charger_id": o.injected.charger_id,
                "error": o.injected.error,
            }
            for o in report.outcomes
            if o.injected.error
        ],
        "notes": report.notes,
        # Each injection with the alert that matched it, and the false alerts: the evidence.
        "run": {key: report.as_dict()[key] for key in ("injections", "false_alerts", "sessions")},
    }


def _kind(alerted: KindScore | None, recorded: KindScore | None, rtt_ms: float | None) -> dict[str, Any]:
    """One fault kind's row: alerts (what operators got) and fault records (what the rules saw).

    Both score the same injections; a kind only one of them has comes from unexplained alerts
    or records alone.
    """
    injections = alerted or recorded
    assert injections is not None
    median_s = alerted.median_s if alerted else None
    return {
        "expects": injections.expects,
        "injected": injections.injected,
        "alerted": alerted.detected if alerted else 0,
        "detection_rate": _rate(injections, alerted.detected if alerted else 0),
        "repeat_alerts": alerted.repeats if alerted else 0,
        "false_alerts": alerted.false_alerts if alerted else 0,
        "alert_latency_s": {
            "median": _round(median_s),
            "worst": _round(alerted.worst_s if alerted else None),
        },
        "alert_latency_vs_rtt": _round(median_s * 1000 / rtt_ms) if median_s is not None and rtt_ms else None,
        "recorded": recorded.detected if recorded else 0,
        "record_rate": _rate(injections, recorded.detected if recorded else 0),
        "repeat_records": recorded.repeats if recorded else 0,
        "unexpected_records": recorded.false_alerts if recorded else 0,
        "record_latency_s": {
            "median": _round(recorded.median_s if recorded else None),
            "worst": _round(recorded.worst_s if recorded else None),
        },
    }


def _rate(kind: KindScore, detected: int) -> float | None:
    """None when there is nothing to detect: no injection, or one that expects no fault."""
    if kind.expects is None or not kind.injected:
        return None
    return round(detected / kind.injected, 3)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _summary(results: dict[str, Any]) -> str:
    rows = [
        (
            label,
            k["injected"],
            _text(k["detection_rate"]),
            k["repeat_alerts"],
            k["false_alerts"],
            _text(k["alert_latency_s"]["median"]),
            _text(k["alert_latency_s"]["worst"]),
            _text(k["record_rate"]),
            _text(k["record_latency_s"]["median"]),
        )
        for label, k in results["kinds"].items()
    ]
    baseline = results["baseline"]
    head = (
        f"fault detection, {results['scenario']} at {results['speed']:g}x, {results['duration_s']:.0f} s; "
        f"broker round trip {_text(baseline['broker_rtt_ms'])} ms (median of {baseline['samples']})"
    )
    headers = [
        "KIND",
        "INJECTED",
        "ALERT RATE",
        "REPEATS",
        "FALSE",
        "ALERT MEDIAN S",
        "WORST S",
        "RECORD RATE",
        "RECORD MEDIAN S",
    ]
    return head + "\n\n" + table(headers, rows)


def _text(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
