"""`chargenet cost`: dollars per charger-month and per session on AWS, broken down by service.

The operation counts come from a real run of the local stack (`bench/cost_counts.py`, written
to bench/results/cost_counts.json); without one, the run shipped in docs/cost_counts.json.
Prices and arithmetic: chargenet_cli.cost_model.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

from chargenet_cli import cost_model
from chargenet_cli.errors import CliError
from chargenet_cli.output import as_json, table

ROOT = Path(__file__).resolve().parents[2]
RUN_COUNTS = Path("bench") / "results" / "cost_counts.json"
SHIPPED_COUNTS = Path("docs") / "cost_counts.json"


def register(commands: argparse._SubParsersAction) -> None:
    cost = commands.add_parser(
        "cost", help="AWS cost per charger-month and per session, from a measured local-stack run"
    )
    cost.add_argument("--chargers", type=_positive_int, required=True)
    cost.add_argument("--sessions-per-day", type=_non_negative_decimal, required=True, help="per charger")
    cost.add_argument("--meter-interval-s", type=_positive_int, required=True, help="MeterValues interval")
    cost.add_argument("--heartbeat-s", type=_positive_int, required=True, help="Heartbeat interval")
    cost.add_argument("--session-minutes", type=_positive_decimal, default=Decimal(60))
    cost.add_argument(
        "--heartbeat-at-shim", action="store_true", help="the device shim answers Heartbeats (none reach AWS)"
    )
    cost.add_argument(
        "--kept-data-months",
        type=_non_negative_decimal,
        default=Decimal(12),
        help="age of the deployment, for the data kept without a TTL (sessions, CDRs): default 12",
    )
    cost.add_argument(
        "--counts",
        type=Path,
        default=None,
        help=f"counts file (default: {RUN_COUNTS}, else {SHIPPED_COUNTS})",
    )
    cost.add_argument(
        "--lambda-duration",
        choices=("wall", "cpu"),
        default="wall",
        help="Lambda GB-s from the run's measured durations (wall, default) or the handlers' CPU time only",
    )
    cost.add_argument("--json", action="store_true")
    cost.set_defaults(run=show_cost)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _non_negative_decimal(text: str) -> Decimal:
    value = _decimal(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _positive_decimal(text: str) -> Decimal:
    value = _decimal(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def counts_path(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    for candidate in (
        Path.cwd() / RUN_COUNTS,
        ROOT / RUN_COUNTS,
        Path.cwd() / SHIPPED_COUNTS,
        ROOT / SHIPPED_COUNTS,
    ):
        if candidate.exists():
            return candidate
    raise CliError("no counts file: run `.venv/bin/python -m bench.cost_counts` (or pass --counts)")


def show_cost(args: argparse.Namespace) -> str:
    path = counts_path(args.counts)
    try:
        counts = cost_model.load_counts(path, args.lambda_duration)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read counts from {path}: {exc}") from exc
    assumptions = cost_model.Assumptions(
        chargers=args.chargers,
        sessions_per_day=args.sessions_per_day,
        meter_interval_s=args.meter_interval_s,
        heartbeat_s=args.heartbeat_s,
        session_minutes=args.session_minutes,
        heartbeat_at_shim=args.heartbeat_at_shim,
        kept_data_months=args.kept_data_months,
    )
    try:
        estimate = cost_model.monthly_cost(counts, assumptions)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    report = cost_model.as_json(estimate)
    report["counts_file"] = str(path)
    report["lambda_duration"] = args.lambda_duration
    if args.json:
        return as_json(report)
    return render(estimate, path, args.lambda_duration)


def render(estimate: cost_model.Estimate, path: Path, lambda_duration: str = "wall") -> str:
    a = estimate.assumptions
    total = estimate.per_charger_month
    rows = [
        (
            label,
            f"{cost_model.cents(estimate.by_service[name], '0.000001')}",
            f"{(estimate.by_service[name] / total * 100 if total else 0):.1f}%",
        )
        for name, label in cost_model.LINE_ITEMS.items()
    ]
    heartbeat = "answered at the shim" if a.heartbeat_at_shim else f"every {a.heartbeat_s} s"
    per_session = estimate.per_session
    sample = cost_model.SAMPLE_ESTIMATE
    sample_per_charger = sample["usd_per_month"] / sample["chargers"]
    timed = ", ".join(
        f"{name} {cost_model.cents(n, '1')}" for name, n in estimate.timed_writes_per_month.items()
    )
    lines = [
        f"{a.chargers} chargers, {a.sessions_per_day} sessions/day of {a.session_minutes} min each, "
        f"MeterValues every {a.meter_interval_s} s, Heartbeat {heartbeat}; "
        f"{cost_model.MONTH_DAYS}-day month, us-east-1 list prices, no free tier",
        f"operation counts: {path} (Lambda GB-s from {lambda_duration} time)",
        f"per charger-month: time-based writes at the real cadence ({timed or 'none'}); "
        f"{cost_model.cents(estimate.stored_gb * 1024, '0.01')} MB stored (data without a TTL "
        f"{a.kept_data_months} months old); {cost_model.cents(estimate.xray_traces_per_month, '1')} X-Ray traces",
        "",
        table(["ITEM", "USD PER CHARGER-MONTH", "SHARE"], rows),
        "",
        f"per charger-month: ${cost_model.cents(total)}",
        f"per session:       ${cost_model.cents(per_session)}"
        if per_session is not None
        else "per session: -",
        f"fleet per month:   ${cost_model.cents(estimate.fleet_month, '0.01')}",
        "",
        f"AWS OCPP gateway sample (published): ${sample['usd_per_month']}/month for {sample['chargers']} "
        f"chargers = ${sample_per_charger:.2f} per charger-month (Fargate, NAT, load balancer included); "
        f"this estimate is {cost_model.cents(total / sample_per_charger * 100, '0.1')}% of it",
    ]
    return "\n".join(lines)
