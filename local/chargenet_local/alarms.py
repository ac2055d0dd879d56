"""CloudWatch alarm evaluation for the local stack: the template's alarms over the metrics in moto.

moto stores alarms (PutMetricAlarm, DescribeAlarms, SetAlarmState) and metrics, but never
evaluates an alarm: its alarms sit in OK (CloudWatch starts them in INSUFFICIENT_DATA) and
SetAlarmState changes the state without running any action. So the stack creates the
template's alarms and dashboards in moto, and `AlarmEvaluator` does what CloudWatch does
every minute: fetch each alarm's statistic per period, decide the state, write it back with
SetAlarmState, and on a change publish CloudWatch's notification to the alarm's SNS actions.

`evaluate` is the pure core: CloudWatch's documented rules for the evaluation range,
M out of N datapoints and missing data (alarms-and-missing-data in the CloudWatch guide).
"""

from __future__ import annotations

import json
import logging
import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from chargenet_local.metrics import canonical_dimensions
from chargenet_local.template import Template

log = logging.getLogger("chargenet.local.alarms")

# CloudWatch retrieves more periods than it evaluates, to look past missing ones; its
# documented examples retrieve 5 for 3 evaluation periods.
EXTRA_PERIODS = 2
_INITIAL_REASON = "Unchecked: Initial alarm creation"


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class MissingData(StrEnum):
    MISSING = "missing"
    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"
    IGNORE = "ignore"


_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}


@dataclass(frozen=True)
class Rule:
    """What decides an alarm's state, from its configuration."""

    comparison: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing: MissingData

    @classmethod
    def of(cls, alarm: dict[str, Any]) -> Rule:
        """From a DescribeAlarms MetricAlarm."""
        periods = int(alarm["EvaluationPeriods"])
        return cls(
            comparison=alarm["ComparisonOperator"],
            threshold=float(alarm["Threshold"]),
            evaluation_periods=periods,
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or periods),
            treat_missing=MissingData(alarm.get("TreatMissingData") or MissingData.MISSING),
        )

    @property
    def range_periods(self) -> int:
        return self.evaluation_periods + EXTRA_PERIODS

    def breaches(self, value: float) -> bool:
        return _COMPARISONS[self.comparison][0](value, self.threshold)

    @property
    def verb(self) -> str:
        return _COMPARISONS[self.comparison][1]


@dataclass(frozen=True)
class Datapoint:
    """One period of the evaluation range: its start and its statistic, None when it had no data."""

    start: datetime
    value: float | None


@dataclass(frozen=True)
class Evaluation:
    state: AlarmState
    reason: str
    evaluated: tuple[Datapoint, ...]  # the real datapoints the decision used


def evaluate(rule: Rule, datapoints: Sequence[Datapoint], current: AlarmState) -> Evaluation:
    """The alarm's state from its evaluation range (oldest first), as CloudWatch decides it."""
    real = [d for d in datapoints if d.value is not None]
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    if len(real) >= n:
        # Enough real datapoints (looking past missing ones): how missing data is treated does not matter.
        return _crossed(rule, real[-n:], filled=0)
    filled = n - len(real)
    breaching = sum(rule.breaches(d.value) for d in real if d.value is not None)
    if rule.treat_missing is MissingData.BREACHING:
        return _crossed(rule, real, filled=filled, filled_breach=True)
    if rule.treat_missing is MissingData.NOT_BREACHING:
        return _crossed(rule, real, filled=filled, filled_breach=False)
    # missing / ignore: a missing period is unknown, it counts neither way.
    if breaching >= m or breaching < len(real):
        return _crossed(rule, real, filled=0)
    if rule.treat_missing is MissingData.MISSING and _breached_long_enough(rule, datapoints):
        return _crossed(rule, real, filled=0, alarm=True)
    if rule.treat_missing is MissingData.IGNORE:
        return Evaluation(current, "missing data ignored: state kept", tuple(real))
    return Evaluation(
        AlarmState.INSUFFICIENT_DATA,
        f"Insufficient Data: {filled} of the last {n} datapoints were missing.",
        tuple(real),
    )


def _breached_long_enough(rule: Rule, datapoints: Sequence[Datapoint]) -> bool:
    """CloudWatch's guard against premature alarms, seen from the other side: with only breaching
    or missing data, it alarms once the oldest breaching datapoint among the last N periods is at
    least M periods old (so `- - X - -` alarms a 3-of-3 alarm, `- - - - X` does not yet)."""
    recent = list(datapoints)[-rule.evaluation_periods :]
    for index, point in enumerate(recent):
        if point.value is not None and rule.breaches(point.value):
            return len(recent) - index >= rule.datapoints_to_alarm
    return False


def _crossed(
    rule: Rule,
    real: Sequence[Datapoint],
    *,
    filled: int,
    filled_breach: bool = False,
    alarm: bool | None = None,
) -> Evaluation:
    real_breaching = sum(rule.breaches(d.value) for d in real if d.value is not None)
    if alarm is None:
        alarm = real_breaching + (filled if filled_breach else 0) >= rule.datapoints_to_alarm
    if real:
        matching = real_breaching if alarm else len(real) - real_breaching
        shown = ", ".join(f"{d.value} ({d.start:%d/%m/%y %H:%M:%S})" for d in real)
        reason = (
            f"Threshold Crossed: {matching} out of the last {len(real)} datapoints [{shown}] "
            f"{'was' if matching == 1 else 'were'} {'' if alarm else 'not '}{rule.verb} "
            f"the threshold ({rule.threshold})"
        )
    else:
        reason = "Threshold Crossed: no datapoints were received"
    if filled:
        treated = "Breaching" if filled_breach else "NonBreaching"
        reason += f" and {filled} missing datapoint(s) were treated as [{treated}]"
    if alarm:
        reason += f" (minimum {rule.datapoints_to_alarm} datapoint(s) for OK -> ALARM transition)"
    return Evaluation(AlarmState.ALARM if alarm else AlarmState.OK, reason + ".", tuple(real))


# ------------------------------------------------------------------ creating them in moto
def create_alarms_and_dashboards(template: Template, cloudwatch: Any) -> list[str]:
    """PutMetricAlarm/PutDashboard for the template's alarms and dashboards; the alarm names."""
    names = []
    for logical_id, resource in template.of_type("AWS::CloudWatch::Alarm").items():
        props = template.resolve(resource["Properties"])
        parameters = {key: _ALARM_NUMBERS.get(key, _same)(value) for key, value in props.items()}
        parameters.setdefault("AlarmName", logical_id)
        cloudwatch.put_metric_alarm(**parameters)
        # CloudWatch starts every alarm in INSUFFICIENT_DATA, moto in OK.
        cloudwatch.set_alarm_state(
            AlarmName=parameters["AlarmName"],
            StateValue=AlarmState.INSUFFICIENT_DATA,
            StateReason=_INITIAL_REASON,
        )
        names.append(parameters["AlarmName"])
    for logical_id, resource in template.of_type("AWS::CloudWatch::Dashboard").items():
        props = template.resolve(resource["Properties"])
        try:
            json.loads(props["DashboardBody"])  # CloudWatch refuses an invalid body; moto would store it
        except json.JSONDecodeError as invalid:
            raise ValueError(f"{logical_id}: DashboardBody is not valid JSON: {invalid}") from None
        cloudwatch.put_dashboard(
            DashboardName=props.get("DashboardName", logical_id), DashboardBody=props["DashboardBody"]
        )
    return names


def _same(value: Any) -> Any:
    return value


# Template parameters resolve to strings; the API wants numbers.
_ALARM_NUMBERS: dict[str, Callable[[Any], Any]] = {
    "Threshold": float,
    "Period": int,
    "EvaluationPeriods": int,
    "DatapointsToAlarm": int,
}


# ------------------------------------------------------------------ the evaluation loop
class AlarmEvaluator:
    """Evaluates every metric alarm in moto; on a state change, sets it and notifies its SNS actions.

    Locally the newest period is the one in progress, so an alarm reacts within one
    evaluation instead of after the period closes; the semantics over periods are CloudWatch's.
    """

    def __init__(self, cloudwatch: Any, sns: Any, region: str) -> None:
        self._cloudwatch, self._sns = cloudwatch, sns
        self._region = region
        self._skipped: set[str] = set()

    def evaluate_all(self, now: float) -> None:
        # One query per window: moto scans every stored datapoint of the window for each period.
        by_window: dict[tuple[int, int], list[tuple[dict[str, Any], Rule]]] = defaultdict(list)
        for alarm in self._metric_alarms():
            rule = Rule.of(alarm)
            by_window[(int(alarm["Period"]), rule.range_periods)].append((alarm, rule))
        for (period, periods), alarms in by_window.items():
            ranges = self._fetch([alarm for alarm, _ in alarms], period, periods, now)
            for (alarm, rule), datapoints in zip(alarms, ranges, strict=True):
                evaluation = evaluate(rule, datapoints, AlarmState(alarm["StateValue"]))
                if evaluation.state != alarm["StateValue"]:
                    self._change(alarm, evaluation, now)

    def _metric_alarms(self) -> list[dict[str, Any]]:
        alarms = []
        for page in self._cloudwatch.get_paginator("describe_alarms").paginate():
            for alarm in page["MetricAlarms"]:
                if (
                    alarm.get("MetricName")
                    and alarm.get("Statistic")
                    and alarm["ComparisonOperator"] in _COMPARISONS
                ):
                    alarms.append(alarm)
                elif alarm["AlarmName"] not in self._skipped:
                    self._skipped.add(alarm["AlarmName"])
                    log.warning(
                        "alarm %s is not evaluated locally: only single-metric alarms with a plain "
                        "statistic and a static threshold are",
                        alarm["AlarmName"],
                    )
        return alarms

    def _fetch(
        self, alarms: list[dict[str, Any]], period: int, periods: int, now: float
    ) -> list[list[Datapoint]]:
        """One GetMetricData for alarms of one window: each alarm's evaluation range, oldest first."""
        end = (int(now) // period + 1) * period  # the end of the period in progress
        starts = [end - k * period for k in range(periods, 0, -1)]
        queries = [
            {
                "Id": f"m{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": alarm["Namespace"],
                        "MetricName": alarm["MetricName"],
                        "Dimensions": canonical_dimensions(alarm.get("Dimensions", [])),
                    },
                    "Period": period,
                    "Stat": alarm["Statistic"],
                    **({"Unit": alarm["Unit"]} if alarm.get("Unit") else {}),
                },
            }
            for index, alarm in enumerate(alarms)
        ]
        response = self._cloudwatch.get_metric_data(
            MetricDataQueries=queries,
            StartTime=datetime.fromtimestamp(starts[0], UTC),
            EndTime=datetime.fromtimestamp(end, UTC),
        )
        values = {
            result["Id"]: {
                int(at.timestamp()): value
                for at, value in zip(result["Timestamps"], result["Values"], strict=True)
            }
            for result in response["MetricDataResults"]
        }
        return [
            [Datapoint(datetime.fromtimestamp(s, UTC), values.get(f"m{index}", {}).get(s)) for s in starts]
            for index in range(len(alarms))
        ]

    def _change(self, alarm: dict[str, Any], evaluation: Evaluation, now: float) -> None:
        name, old, new = alarm["AlarmName"], alarm["StateValue"], evaluation.state
        log.info("alarm %s: %s -> %s (%s)", name, old, new, evaluation.reason)
        self._cloudwatch.set_alarm_state(
            AlarmName=name,
            StateValue=new,
            StateReason=evaluation.reason[:1023],
            StateReasonData=json.dumps(_reason_data(alarm, evaluation, now)),
        )
        if not alarm.get("ActionsEnabled", True):
            return
        actions = {
            AlarmState.ALARM: alarm.get("AlarmActions", []),
            AlarmState.OK: alarm.get("OKActions", []),
            AlarmState.INSUFFICIENT_DATA: alarm.get("InsufficientDataActions", []),
        }[new]
        message = notification(alarm, evaluation, now, self._region)
        subject = f'{new}: "{name}" in {message["Region"]}'[:100]  # SNS subjects stop at 100 characters
        for action in actions:
            if action.startswith("arn:aws:sns:"):
                self._sns.publish(TopicArn=action, Subject=subject, Message=json.dumps(message))
            else:
                log.warning("alarm %s: action %s is not run locally (only SNS actions are)", name, action)


def _reason_data(alarm: dict[str, Any], evaluation: Evaluation, now: float) -> dict[str, Any]:
    return {
        "version": "1.0",
        "queryDate": _timestamp(now),
        "statistic": alarm["Statistic"],
        "period": alarm["Period"],
        "recentDatapoints": [d.value for d in evaluation.evaluated],
        "threshold": alarm["Threshold"],
        "evaluatedDatapoints": [
            {"timestamp": _timestamp(d.start.timestamp()), "value": d.value} for d in evaluation.evaluated
        ],
    }


def notification(alarm: dict[str, Any], evaluation: Evaluation, now: float, region: str) -> dict[str, Any]:
    """The JSON message CloudWatch publishes to an alarm's SNS topics on a state change."""
    return {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": alarm["AlarmArn"].split(":")[4],
        "AlarmConfigurationUpdatedTimestamp": _timestamp(
            alarm["AlarmConfigurationUpdatedTimestamp"].timestamp()
        ),
        "NewStateValue": str(evaluation.state),
        "NewStateReason": evaluation.reason,
        "StateChangeTime": _timestamp(now),
        "Region": _region_name(region),
        "AlarmArn": alarm["AlarmArn"],
        "OldStateValue": alarm["StateValue"],
        "OKActions": alarm.get("OKActions", []),
        "AlarmActions": alarm.get("AlarmActions", []),
        "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
        "Trigger": {
            "MetricName": alarm["MetricName"],
            "Namespace": alarm["Namespace"],
            "StatisticType": "Statistic",
            "Statistic": alarm["Statistic"].upper(),
            "Unit": alarm.get("Unit"),
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm["Period"],
            "EvaluationPeriods": alarm["EvaluationPeriods"],
            "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]),
            "ComparisonOperator": alarm["ComparisonOperator"],
            "Threshold": alarm["Threshold"],
            "TreatMissingData": alarm.get("TreatMissingData", MissingData.MISSING.value),
            "EvaluateLowSampleCountPercentile": "",
        },
    }


def _timestamp(epoch: float) -> str:
    """CloudWatch's notification timestamps: 2024-02-05T10:01:23.456+0000."""
    at = datetime.fromtimestamp(epoch, UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}+0000"


@cache
def _region_name(region: str) -> str:
    """The region as CloudWatch names it in notifications ("US East (N. Virginia)")."""
    import botocore.session

    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        if region in partition["regions"]:
            return str(partition["regions"][region]["description"])
    return region
