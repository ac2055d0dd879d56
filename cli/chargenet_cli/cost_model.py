"""What the network costs on AWS: operation counts from a local-stack run, priced at list prices.

Operator tooling, so it lives beside the CLI and not in the Lambda layer: no function needs
it, and the layer ships to every function. Pure arithmetic in Decimal, no I/O except
`load_counts`.

The counts file (`bench/cost_counts.py` writes it from a real run of the local stack) holds
*unit profiles*: the AWS operations one event caused, averaged over the run. Events are the
frames a charger publishes (per OCPP action), the presence events, the work a finished
session causes downstream (billing off the sessions table's stream) and one invocation of
each scheduled function. `monthly_cost` multiplies each profile by how often the event
happens in a month under the operator's assumptions and prices the sum per service.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

MONTH_DAYS = 30
MONTH_S = MONTH_DAYS * 86400
MONTH_MINUTES = MONTH_DAYS * 1440
MILLION = Decimal(1_000_000)

# The AWS OCPP gateway sample's published estimate: 500 charge points, 24/7, about $175 a month
# (ECS Fargate ~55, IoT Core ~30, NAT gateway ~25, load balancer ~20, Lambda ~4, other ~41).
SAMPLE_ESTIMATE = {"chargers": 500, "usd_per_month": Decimal("175"), "iot_core_usd_per_month": Decimal("30")}


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices, no free tier (SPEC.md section 7; Secrets Manager and HTTP API
    from the AWS pricing pages, as they are not in the SPEC)."""

    iot_message_per_million: Decimal = Decimal("1.00")  # per 5 KB unit
    iot_connection_minutes_per_million: Decimal = Decimal("0.08")
    iot_rule_triggered_per_million: Decimal = Decimal("0.15")
    iot_rule_action_per_million: Decimal = Decimal("0.15")
    lambda_request_per_million: Decimal = Decimal("0.20")
    lambda_gb_second_arm64: Decimal = Decimal("0.0000133334")
    dynamodb_write_unit_per_million: Decimal = Decimal("0.625")
    dynamodb_read_unit_per_million: Decimal = Decimal("0.125")
    sns_publish_per_million: Decimal = Decimal("0.50")
    cloudwatch_metric_month: Decimal = Decimal("0.30")
    cloudwatch_alarm_month: Decimal = Decimal("0.10")
    secret_month: Decimal = Decimal("0.40")
    secrets_api_per_10k: Decimal = Decimal("0.05")
    http_api_request_per_million: Decimal = Decimal("1.00")


@dataclass(frozen=True)
class Ops:
    """AWS operations (one event's average, or a month's total)."""

    iot_messages: Decimal = Decimal(0)  # billable 5 KB units (Basic Ingest publishes are not billable)
    rules_triggered: Decimal = Decimal(0)
    rule_actions: Decimal = Decimal(0)
    lambda_requests: Decimal = Decimal(0)
    lambda_gb_seconds: Decimal = Decimal(0)
    dynamodb_write_units: Decimal = Decimal(0)
    dynamodb_read_units: Decimal = Decimal(0)
    sns_publishes: Decimal = Decimal(0)
    secrets_calls: Decimal = Decimal(0)
    http_api_requests: Decimal = Decimal(0)

    def __add__(self, other: Ops) -> Ops:
        return Ops(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Ops)})

    def times(self, factor: Decimal) -> Ops:
        return Ops(**{f.name: getattr(self, f.name) * factor for f in fields(Ops)})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ops:
        known = {f.name for f in fields(Ops)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown operation fields {sorted(unknown)}")
        return Ops(**{k: Decimal(str(v)) for k, v in data.items()})


@dataclass(frozen=True)
class Counts:
    """Unit profiles measured on the local stack (see bench/cost_counts.py)."""

    per_frame: dict[str, Ops]  # OCPP action -> what one frame of it costs, reply included
    session_frames: dict[str, Decimal]  # per session: frames other than MeterValues (Authorize, Start, ...)
    per_session: Ops  # downstream of a finished session (stream -> billing)
    per_presence_event: Ops
    # function -> (runs per month, ops of one run: Lambda requests and GB-s for the whole run,
    # shared by the fleet; DynamoDB and the rest per charger, as sweeps scale with the fleet)
    scheduled: dict[str, tuple[Decimal, Ops]]
    custom_metrics: int  # distinct metric + dimension combinations the functions emitted
    alarms: int
    secrets: int
    source: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "", profile_key: str = "profile") -> Counts:
        profile = data[profile_key]
        return Counts(
            per_frame={k: Ops.from_json(v) for k, v in profile["per_frame"].items()},
            session_frames={k: Decimal(str(v)) for k, v in profile["session_frames"].items()},
            per_session=Ops.from_json(profile["per_session"]),
            per_presence_event=Ops.from_json(profile["per_presence_event"]),
            scheduled={
                k: (Decimal(str(v["runs_per_month"])), Ops.from_json(v["per_run"]))
                for k, v in profile["scheduled"].items()
            },
            custom_metrics=int(profile["custom_metrics"]),
            alarms=int(profile["alarms"]),
            secrets=int(profile["secrets"]),
            source=source,
        )


def load_counts(path: Path, lambda_duration: str = "wall") -> Counts:
    """`wall`: Lambda GB-s from the measured durations; `cpu`: from the handlers' CPU time only."""
    key = {"wall": "profile", "cpu": "profile_cpu"}[lambda_duration]
    return Counts.from_json(json.loads(path.read_text()), source=str(path), profile_key=key)


@dataclass(frozen=True)
class Assumptions:
    chargers: int
    sessions_per_day: Decimal
    meter_interval_s: int
    heartbeat_s: int
    session_minutes: Decimal = Decimal(60)
    heartbeat_at_shim: bool = False  # the device shim answers Heartbeats itself: none reach the cloud
    boots_per_month: Decimal = Decimal(1)
    reconnects_per_month: Decimal = Decimal(1)  # each a connected and a disconnected presence event

    def validate(self) -> None:
        if self.chargers < 1:
            raise ValueError("chargers must be at least 1")
        if self.sessions_per_day < 0:
            raise ValueError("sessions per day must not be negative")
        if self.meter_interval_s < 1 or self.heartbeat_s < 1:
            raise ValueError("intervals must be at least 1 s")
        if self.session_minutes <= 0:
            raise ValueError("session minutes must be positive")
        if self.sessions_per_day * self.session_minutes > 1440 * 4:
            raise ValueError("more session minutes per day than 4 connectors can charge")


@dataclass(frozen=True)
class Estimate:
    assumptions: Assumptions
    monthly_ops_per_charger: Ops
    by_service: dict[str, Decimal]  # dollars per charger-month, unrounded
    sessions_per_month: Decimal
    frames_per_month: dict[str, Decimal] = field(default_factory=dict)

    @property
    def per_charger_month(self) -> Decimal:
        return sum(self.by_service.values(), Decimal(0))

    @property
    def fleet_month(self) -> Decimal:
        return self.per_charger_month * self.assumptions.chargers

    @property
    def per_session(self) -> Decimal | None:
        return self.per_charger_month / self.sessions_per_month if self.sessions_per_month else None


def frames_per_month(counts: Counts, a: Assumptions) -> dict[str, Decimal]:
    """How many frames of each OCPP action one charger publishes in a month."""
    sessions = a.sessions_per_day * MONTH_DAYS
    meter_per_session = Decimal(math.ceil(a.session_minutes * 60 / a.meter_interval_s))
    frames = {action: per * sessions for action, per in counts.session_frames.items()}
    frames["MeterValues"] = frames.get("MeterValues", Decimal(0)) + meter_per_session * sessions
    frames["Heartbeat"] = Decimal(0) if a.heartbeat_at_shim else Decimal(MONTH_S) / a.heartbeat_s
    frames["BootNotification"] = a.boots_per_month
    return frames


def monthly_cost(counts: Counts, a: Assumptions, prices: Prices | None = None) -> Estimate:
    a.validate()
    p = prices or Prices()
    frames = frames_per_month(counts, a)
    missing = [action for action, n in frames.items() if n and action not in counts.per_frame]
    if missing:
        raise ValueError(f"the counts file has no profile for {missing}")
    ops = Ops()
    for action, n in frames.items():
        if n:
            ops += counts.per_frame[action].times(n)
    sessions = a.sessions_per_day * MONTH_DAYS
    ops += counts.per_session.times(sessions)
    ops += counts.per_presence_event.times(2 * a.reconnects_per_month)
    for runs, per_run in counts.scheduled.values():
        # Scheduled functions run once per deployment: requests and duration shared by the fleet.
        shared = Ops(lambda_requests=per_run.lambda_requests, lambda_gb_seconds=per_run.lambda_gb_seconds)
        per_charger = per_run + shared.times(Decimal(1) / a.chargers - 1)
        ops += per_charger.times(runs)
    n = Decimal(a.chargers)
    by_service = {
        "iot_core_messaging": ops.iot_messages * p.iot_message_per_million / MILLION,
        "iot_core_connectivity": Decimal(MONTH_MINUTES) * p.iot_connection_minutes_per_million / MILLION,
        "iot_core_rules": (
            ops.rules_triggered * p.iot_rule_triggered_per_million
            + ops.rule_actions * p.iot_rule_action_per_million
        )
        / MILLION,
        "lambda": ops.lambda_requests * p.lambda_request_per_million / MILLION
        + ops.lambda_gb_seconds * p.lambda_gb_second_arm64,
        "dynamodb": (
            ops.dynamodb_write_units * p.dynamodb_write_unit_per_million
            + ops.dynamodb_read_units * p.dynamodb_read_unit_per_million
        )
        / MILLION,
        "sns": ops.sns_publishes * p.sns_publish_per_million / MILLION,
        "cloudwatch": (
            counts.custom_metrics * p.cloudwatch_metric_month + counts.alarms * p.cloudwatch_alarm_month
        )
        / n,
        "secrets_manager": counts.secrets * p.secret_month / n
        + ops.secrets_calls * p.secrets_api_per_10k / 10_000,
        "api_gateway": ops.http_api_requests * p.http_api_request_per_million / MILLION,
    }
    return Estimate(a, ops, by_service, sessions, frames)


def cents(value: Decimal, places: str = "0.0001") -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def as_json(estimate: Estimate) -> dict[str, Any]:
    a = estimate.assumptions
    per_session = estimate.per_session
    return {
        "assumptions": {
            "chargers": a.chargers,
            "sessions_per_day": str(a.sessions_per_day),
            "meter_interval_s": a.meter_interval_s,
            "heartbeat_s": a.heartbeat_s,
            "session_minutes": str(a.session_minutes),
            "heartbeat_at_shim": a.heartbeat_at_shim,
            "month_days": MONTH_DAYS,
        },
        "usd_per_charger_month": str(cents(estimate.per_charger_month)),
        "usd_per_session": str(cents(per_session)) if per_session is not None else None,
        "usd_fleet_month": str(cents(estimate.fleet_month, "0.01")),
        "by_service_usd_per_charger_month": {
            k: str(cents(v, "0.000001")) for k, v in estimate.by_service.items()
        },
        "frames_per_charger_month": {k: str(cents(v, "0.1")) for k, v in estimate.frames_per_month.items()},
        "ops_per_charger_month": {
            f.name: str(cents(getattr(estimate.monthly_ops_per_charger, f.name), "0.001"))
            for f in fields(Ops)
        },
        "aws_ocpp_gateway_sample": {
            "chargers": SAMPLE_ESTIMATE["chargers"],
            "usd_per_month": str(SAMPLE_ESTIMATE["usd_per_month"]),
            "usd_per_charger_month": str(SAMPLE_ESTIMATE["usd_per_month"] / SAMPLE_ESTIMATE["chargers"]),
        },
    }
