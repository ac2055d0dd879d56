"""What the network costs on AWS: operation counts from a local-stack run, priced at list prices.

Operator tooling, so it lives beside the CLI and not in the Lambda layer: no function needs
it, and the layer ships to every function. Pure arithmetic in Decimal, no I/O except
`load_counts`.

The counts file (`bench/cost_counts.py` writes it from a real run of the local stack) holds
*unit profiles*: the AWS operations one event caused, averaged over the run. Events are the
frames a charger publishes (per OCPP action), the presence events, the work a finished
session causes downstream (billing off the sessions table's stream) and one invocation of
each scheduled function. `monthly_cost` multiplies each profile by how often the event
happens in a month under the operator's assumptions and prices the sum, one line per item.

Three kinds of count are not taken per event, because the run compresses charger time 600x
and these follow real time:

* time-based writes (the registry's `last_seen_at`, at most one per `every_s` of IoT's receive
  time): the run measures one write's units, their number comes from the real cadence;
* storage: the run measures bytes per growth unit (a reading, a status, a session, a charger),
  the month holds what the retention keeps at steady state;
* fleet-wide items (metrics, alarms, dashboards, keys, secrets, KMS requests, X-Ray sampling):
  counted once for the deployment and shared by its chargers.
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
GB = Decimal(1024**3)
# Lambda's own lines per invocation (START, END and REPORT with its durations and memory), bytes.
LAMBDA_PLATFORM_LOG_BYTES = 270
# DynamoDB asks KMS for a table's key at most this often per principal and table while in use.
KMS_TABLE_KEY_CACHE_S = 300
# X-Ray's default sampling rule: the first request each second, then this share of the rest.
XRAY_RESERVOIR_PER_S = Decimal(1)
XRAY_FIXED_RATE = Decimal("0.05")

# The AWS OCPP gateway sample's published estimate: 500 charge points, 24/7, about $175 a month
# (ECS Fargate ~55, IoT Core ~30, NAT gateway ~25, load balancer ~20, Lambda ~4, other ~41).
SAMPLE_ESTIMATE = {"chargers": 500, "usd_per_month": Decimal("175"), "iot_core_usd_per_month": Decimal("30")}


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices, no free tier, as published on the AWS pricing pages (aws.amazon.com/
    <service>/pricing) and read 2026-12 (SPEC.md section 7 for IoT Core, Lambda and DynamoDB)."""

    iot_message_per_million: Decimal = Decimal("1.00")  # per 5 KB unit
    iot_connection_minutes_per_million: Decimal = Decimal("0.08")
    iot_rule_triggered_per_million: Decimal = Decimal("0.15")
    iot_rule_action_per_million: Decimal = Decimal("0.15")
    lambda_request_per_million: Decimal = Decimal("0.20")
    lambda_gb_second_arm64: Decimal = Decimal("0.0000133334")
    dynamodb_write_unit_per_million: Decimal = Decimal("0.625")
    dynamodb_read_unit_per_million: Decimal = Decimal("0.125")
    dynamodb_storage_gb_month: Decimal = Decimal("0.25")
    dynamodb_pitr_gb_month: Decimal = Decimal("0.20")  # continuous backups, on every table
    sns_publish_per_million: Decimal = Decimal("0.50")
    cloudwatch_metric_month: Decimal = Decimal("0.30")
    cloudwatch_alarm_month: Decimal = Decimal("0.10")
    cloudwatch_dashboard_month: Decimal = Decimal("3.00")
    logs_ingested_gb: Decimal = Decimal("0.50")
    logs_stored_gb_month: Decimal = Decimal("0.03")
    xray_traces_per_million: Decimal = Decimal("5.00")
    kms_key_month: Decimal = Decimal("1.00")
    kms_requests_per_10k: Decimal = Decimal("0.03")
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
    dynamodb_write_units: Decimal = Decimal(0)  # the tables' own, failed conditional writes included
    dynamodb_index_write_units: Decimal = Decimal(0)  # each global secondary index's copy
    dynamodb_read_units: Decimal = Decimal(0)  # Query and Scan on the items evaluated, not returned
    log_bytes: Decimal = Decimal(0)  # the functions' own lines and EMF (Lambda's START/END/REPORT apart)
    log_lines: Decimal = Decimal(0)
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
class TimedWrite:
    """A write that happens at most once per `every_s` of real time while frames arrive."""

    every_s: int
    write_units: Decimal  # one write's, measured
    index_write_units: Decimal = Decimal(0)


@dataclass(frozen=True)
class TableGrowth:
    """What one unit of `driver` leaves stored in a table (its indexes included), and for how long."""

    bytes_per_unit: Decimal
    driver: str  # an OCPP action (per frame), "session", or "charger" (a fixed size per charger)
    retention: str  # "session_data": SessionDataRetentionDays by TTL; "kept": never deleted


@dataclass(frozen=True)
class Deployment:
    """Fleet-wide facts from the template, shared by every charger of the deployment."""

    alarms: int = 0
    dashboards: int = 0
    secrets: int = 0
    kms_customer_keys: int = 0
    kms_requests_per_month: Decimal = Decimal(0)  # DynamoDB's table-key requests, whole fleet
    tracing_active: bool = False
    log_retention_days: int = 0
    session_data_retention_days: int = 0


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
    deployment: Deployment
    timed_writes: dict[str, TimedWrite] = field(default_factory=dict)
    storage: dict[str, TableGrowth] = field(default_factory=dict)
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
            deployment=_deployment(profile),
            timed_writes={
                k: TimedWrite(**{n: _number(n, x) for n, x in v.items()})
                for k, v in profile.get("timed_writes", {}).items()
            },
            storage={
                k: TableGrowth(Decimal(str(v["bytes_per_unit"])), v["driver"], v["retention"])
                for k, v in profile.get("storage", {}).items()
            },
            source=source,
        )


def _number(name: str, value: Any) -> Any:
    return int(value) if name == "every_s" else Decimal(str(value))


def _deployment(profile: dict[str, Any]) -> Deployment:
    facts = profile.get("deployment", {})
    return Deployment(
        alarms=int(profile["alarms"]),
        dashboards=int(facts.get("dashboards", 0)),
        secrets=int(profile["secrets"]),
        kms_customer_keys=int(facts.get("kms_customer_keys", 0)),
        kms_requests_per_month=Decimal(str(facts.get("kms_requests_per_month", 0))),
        tracing_active=facts.get("tracing_mode") == "Active",
        log_retention_days=int(facts.get("log_retention_days", 0)),
        session_data_retention_days=int(facts.get("session_data_retention_days", 0)),
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
    kept_data_months: Decimal = Decimal(12)  # age of the deployment, for the data kept without a TTL

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
        if self.kept_data_months < 0:
            raise ValueError("kept data months must not be negative")


# Line items, in the order a reader meets them, with what each counts.
LINE_ITEMS = {
    "iot_core_messaging": "IoT Core messages (5 KB units; Basic Ingest publishes free)",
    "iot_core_connectivity": "IoT Core connection minutes",
    "iot_core_rules": "IoT rules triggered + actions",
    "lambda_requests": "Lambda requests",
    "lambda_compute": "Lambda GB-s (arm64, template MemorySize)",
    "dynamodb_writes": "DynamoDB write units (tables)",
    "dynamodb_index_writes": "DynamoDB write units (global secondary indexes)",
    "dynamodb_timed_writes": "DynamoDB time-based writes (last_seen, real cadence)",
    "dynamodb_reads": "DynamoDB read units (Query/Scan on items evaluated)",
    "dynamodb_storage": "DynamoDB storage (steady state, indexes included)",
    "dynamodb_backups": "DynamoDB point-in-time recovery (same GB)",
    "logs_ingestion": "CloudWatch Logs ingestion (log lines, EMF, Lambda platform lines)",
    "logs_storage": "CloudWatch Logs storage (LogRetentionDays)",
    "xray": "X-Ray traces (TracingMode)",
    "cloudwatch_metrics": "CloudWatch custom metrics (name x dimensions)",
    "cloudwatch_alarms": "CloudWatch alarms",
    "cloudwatch_dashboards": "CloudWatch dashboards",
    "kms_keys": "KMS customer keys",
    "kms_requests": "KMS requests (DynamoDB table keys)",
    "sns": "SNS publishes",
    "secrets_manager": "Secrets Manager secrets + calls",
    "api_gateway": "API Gateway HTTP API requests",
}


@dataclass(frozen=True)
class Estimate:
    assumptions: Assumptions
    monthly_ops_per_charger: Ops
    by_service: dict[str, Decimal]  # dollars per charger-month, unrounded, one key per LINE_ITEMS
    sessions_per_month: Decimal
    frames_per_month: dict[str, Decimal] = field(default_factory=dict)
    timed_writes_per_month: dict[str, Decimal] = field(default_factory=dict)
    stored_gb: Decimal = Decimal(0)
    xray_traces_per_month: Decimal = Decimal(0)

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


def timed_writes_per_month(every_s: int, a: Assumptions) -> Decimal:
    """Writes of "at most one per `every_s`, when a frame arrives", in a real-time month.

    While charging, frames come every meter interval (or heartbeat, if sooner); otherwise at the
    heartbeat (none when the shim answers them). A write needs a frame and `every_s` since the last.
    """
    charging_s = min(a.sessions_per_day * a.session_minutes * 60, Decimal(86400)) * MONTH_DAYS
    idle_s = Decimal(MONTH_S) - charging_s
    charging = charging_s / max(every_s, min(a.meter_interval_s, a.heartbeat_s))
    idle = Decimal(0) if a.heartbeat_at_shim else idle_s / max(every_s, a.heartbeat_s)
    return charging + idle


def stored_bytes(counts: Counts, a: Assumptions, frames: dict[str, Decimal]) -> Decimal:
    """A charger's bytes in DynamoDB at steady state: what each table's retention keeps."""
    months = {
        "session_data": Decimal(counts.deployment.session_data_retention_days) / MONTH_DAYS,
        "kept": a.kept_data_months,
    }
    sessions = a.sessions_per_day * MONTH_DAYS
    total = Decimal(0)
    for growth in counts.storage.values():
        if growth.driver == "charger":
            total += growth.bytes_per_unit
            continue
        per_month = sessions if growth.driver == "session" else frames.get(growth.driver, Decimal(0))
        total += growth.bytes_per_unit * per_month * months[growth.retention]
    return total


def xray_traces_per_month(fleet_requests: Decimal) -> Decimal:
    """Traces the default sampling rule records for the fleet's invocations in a month."""
    per_s = fleet_requests / MONTH_S
    sampled = min(per_s, XRAY_RESERVOIR_PER_S) + XRAY_FIXED_RATE * max(
        per_s - XRAY_RESERVOIR_PER_S, Decimal(0)
    )
    return sampled * MONTH_S


def monthly_ops(counts: Counts, a: Assumptions, frames: dict[str, Decimal]) -> Ops:
    missing = [action for action, n in frames.items() if n and action not in counts.per_frame]
    if missing:
        raise ValueError(f"the counts file has no profile for {missing}")
    ops = Ops()
    for action, n in frames.items():
        if n:
            ops += counts.per_frame[action].times(n)
    ops += counts.per_session.times(a.sessions_per_day * MONTH_DAYS)
    ops += counts.per_presence_event.times(2 * a.reconnects_per_month)
    for runs, per_run in counts.scheduled.values():
        # Scheduled functions run once per deployment: requests and duration shared by the fleet.
        shared = Ops(
            lambda_requests=per_run.lambda_requests,
            lambda_gb_seconds=per_run.lambda_gb_seconds,
            log_bytes=per_run.log_bytes,
            log_lines=per_run.log_lines,
        )
        per_charger = per_run + shared.times(Decimal(1) / a.chargers - 1)
        ops += per_charger.times(runs)
    return ops


def monthly_cost(counts: Counts, a: Assumptions, prices: Prices | None = None) -> Estimate:
    a.validate()
    p = prices or Prices()
    frames = frames_per_month(counts, a)
    ops = monthly_ops(counts, a, frames)
    n = Decimal(a.chargers)
    d = counts.deployment
    timed = {name: timed_writes_per_month(w.every_s, a) for name, w in counts.timed_writes.items()}
    timed_units = sum(
        (timed[name] * (w.write_units + w.index_write_units) for name, w in counts.timed_writes.items()),
        Decimal(0),
    )
    stored_gb = stored_bytes(counts, a, frames) / GB
    logs_gb = (ops.log_bytes + ops.lambda_requests * LAMBDA_PLATFORM_LOG_BYTES) / GB
    traces = xray_traces_per_month(ops.lambda_requests * n) / n if d.tracing_active else Decimal(0)

    def per_million(count: Decimal, price: Decimal) -> Decimal:
        return count * price / MILLION

    def shared(fleet_dollars: Decimal) -> Decimal:
        return fleet_dollars / n

    by_service = {
        "iot_core_messaging": per_million(ops.iot_messages, p.iot_message_per_million),
        "iot_core_connectivity": per_million(Decimal(MONTH_MINUTES), p.iot_connection_minutes_per_million),
        "iot_core_rules": per_million(ops.rules_triggered, p.iot_rule_triggered_per_million)
        + per_million(ops.rule_actions, p.iot_rule_action_per_million),
        "lambda_requests": per_million(ops.lambda_requests, p.lambda_request_per_million),
        "lambda_compute": ops.lambda_gb_seconds * p.lambda_gb_second_arm64,
        "dynamodb_writes": per_million(ops.dynamodb_write_units, p.dynamodb_write_unit_per_million),
        "dynamodb_index_writes": per_million(
            ops.dynamodb_index_write_units, p.dynamodb_write_unit_per_million
        ),
        "dynamodb_timed_writes": per_million(timed_units, p.dynamodb_write_unit_per_million),
        "dynamodb_reads": per_million(ops.dynamodb_read_units, p.dynamodb_read_unit_per_million),
        "dynamodb_storage": stored_gb * p.dynamodb_storage_gb_month,
        "dynamodb_backups": stored_gb * p.dynamodb_pitr_gb_month,
        "logs_ingestion": logs_gb * p.logs_ingested_gb,
        "logs_storage": logs_gb * Decimal(d.log_retention_days) / MONTH_DAYS * p.logs_stored_gb_month,
        "xray": per_million(traces, p.xray_traces_per_million),
        "cloudwatch_metrics": shared(counts.custom_metrics * p.cloudwatch_metric_month),
        "cloudwatch_alarms": shared(d.alarms * p.cloudwatch_alarm_month),
        "cloudwatch_dashboards": shared(d.dashboards * p.cloudwatch_dashboard_month),
        "kms_keys": shared(d.kms_customer_keys * p.kms_key_month),
        "kms_requests": shared(d.kms_requests_per_month * p.kms_requests_per_10k / 10_000),
        "sns": per_million(ops.sns_publishes, p.sns_publish_per_million),
        "secrets_manager": shared(d.secrets * p.secret_month)
        + ops.secrets_calls * p.secrets_api_per_10k / 10_000,
        "api_gateway": per_million(ops.http_api_requests, p.http_api_request_per_million),
    }
    return Estimate(
        assumptions=a,
        monthly_ops_per_charger=ops,
        by_service=by_service,
        sessions_per_month=a.sessions_per_day * MONTH_DAYS,
        frames_per_month=frames,
        timed_writes_per_month=timed,
        stored_gb=stored_gb,
        xray_traces_per_month=traces,
    )


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
            "kept_data_months": str(a.kept_data_months),
            "month_days": MONTH_DAYS,
        },
        "usd_per_charger_month": str(cents(estimate.per_charger_month)),
        "usd_per_session": str(cents(per_session)) if per_session is not None else None,
        "usd_fleet_month": str(cents(estimate.fleet_month, "0.01")),
        "by_service_usd_per_charger_month": {
            k: str(cents(v, "0.000001")) for k, v in estimate.by_service.items()
        },
        "frames_per_charger_month": {k: str(cents(v, "0.1")) for k, v in estimate.frames_per_month.items()},
        "timed_writes_per_charger_month": {
            k: str(cents(v, "0.1")) for k, v in estimate.timed_writes_per_month.items()
        },
        "stored_gb_per_charger": str(cents(estimate.stored_gb, "0.000001")),
        "xray_traces_per_charger_month": str(cents(estimate.xray_traces_per_month, "0.1")),
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
