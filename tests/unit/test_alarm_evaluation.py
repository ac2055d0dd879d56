"""The local alarm evaluator decides states as CloudWatch does.

The tables are CloudWatch's own examples (alarms-and-missing-data in the CloudWatch user
guide): 0 a datapoint within the threshold, X a breaching one, - a period without data,
most recent on the right, an evaluation range of 5 periods for 3 evaluation periods.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargenet_local.alarms import AlarmState, Datapoint, MissingData, Rule, evaluate

OK, ALARM, INSUFFICIENT = AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA
KEEP = "retain"  # IGNORE keeps whatever state the alarm had
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def rule(
    m: int = 3,
    n: int = 3,
    treat: MissingData = MissingData.MISSING,
    comparison: str = "GreaterThanThreshold",
    threshold: float = 0.5,
) -> Rule:
    return Rule(comparison, threshold, evaluation_periods=n, datapoints_to_alarm=m, treat_missing=treat)


def points(pattern: str) -> list[Datapoint]:
    values = {"0": 0.0, "X": 1.0, "-": None}
    return [
        Datapoint(START + timedelta(minutes=i), values[symbol]) for i, symbol in enumerate(pattern.split())
    ]


TREATMENTS = [MissingData.MISSING, MissingData.IGNORE, MissingData.BREACHING, MissingData.NOT_BREACHING]

# Datapoints to alarm 3 of 3 evaluation periods.
THREE_OF_THREE = [
    ("0 - X - X", [OK, OK, OK, OK]),
    ("0 - - - -", [OK, OK, OK, OK]),
    ("- - - - -", [INSUFFICIENT, KEEP, ALARM, OK]),
    ("0 X X - X", [ALARM, ALARM, ALARM, ALARM]),
    ("- - - - X", [INSUFFICIENT, KEEP, ALARM, OK]),
    ("- - X - -", [ALARM, KEEP, ALARM, OK]),  # the oldest breach is 3 periods old: not premature
]
# Datapoints to alarm 2 of 3 evaluation periods.
TWO_OF_THREE = [
    ("0 - X - X", [ALARM, ALARM, ALARM, ALARM]),
    ("0 0 X 0 X", [ALARM, ALARM, ALARM, ALARM]),
    ("0 - X - -", [OK, OK, ALARM, OK]),
    ("- - - - 0", [OK, OK, ALARM, OK]),
    ("- - - - X", [INSUFFICIENT, KEEP, ALARM, OK]),
    ("- - X - -", [ALARM, KEEP, ALARM, OK]),
]


@pytest.mark.parametrize(("m", "cases"), [(3, THREE_OF_THREE), (2, TWO_OF_THREE)], ids=["3of3", "2of3"])
@pytest.mark.parametrize("current", [OK, ALARM, INSUFFICIENT])
def test_cloudwatch_documented_examples(m: int, cases: list, current: AlarmState) -> None:
    for pattern, expected in cases:
        for treat, state in zip(TREATMENTS, expected, strict=True):
            got = evaluate(rule(m=m, treat=treat), points(pattern), current).state
            assert got == (current if state == KEEP else state), (pattern, treat, current)


def test_enough_real_datapoints_means_missing_data_treatment_does_not_matter() -> None:
    # Three real breaching datapoints, then two empty periods: they are still the last three.
    for treat in TREATMENTS:
        assert evaluate(rule(treat=treat), points("X X X - -"), OK).state is ALARM


def test_only_the_most_recent_n_real_datapoints_count() -> None:
    assert evaluate(rule(m=1, n=1), points("X X X X 0"), ALARM).state is OK
    assert evaluate(rule(m=1, n=1), points("0 0 0 0 X"), OK).state is ALARM
    assert evaluate(rule(m=2, n=3), points("X X 0 0 X"), OK).state is OK


@pytest.mark.parametrize(
    ("comparison", "value", "breaches"),
    [
        ("GreaterThanThreshold", 10.0, False),
        ("GreaterThanThreshold", 10.5, True),
        ("GreaterThanOrEqualToThreshold", 10.0, True),
        ("GreaterThanOrEqualToThreshold", 9.9, False),
        ("LessThanThreshold", 10.0, False),
        ("LessThanThreshold", 9.9, True),
        ("LessThanOrEqualToThreshold", 10.0, True),
        ("LessThanOrEqualToThreshold", 10.1, False),
    ],
)
def test_comparison_operators(comparison: str, value: float, breaches: bool) -> None:
    one = rule(m=1, n=1, comparison=comparison, threshold=10.0)
    assert one.breaches(value) is breaches
    expected = ALARM if breaches else OK
    assert evaluate(one, [Datapoint(START, value)], INSUFFICIENT).state is expected


def test_a_single_period_alarm_on_an_event_metric() -> None:
    """The shape of the safety-critical, dead-letter and Lambda-errors alarms: any value above 0
    in one minute alarms; no data at all is fine (notBreaching)."""
    any_above_zero = rule(m=1, n=1, treat=MissingData.NOT_BREACHING, threshold=0)
    assert evaluate(any_above_zero, [Datapoint(START, 2.0)], OK).state is ALARM
    assert evaluate(any_above_zero, [Datapoint(START, 0.0)], ALARM).state is OK
    assert evaluate(any_above_zero, [Datapoint(START, None)] * 3, ALARM).state is OK
    # The last real datapoint is re-evaluated while it is within the evaluation range.
    assert evaluate(any_above_zero, points("- X -"), OK).state is ALARM


def test_offline_share_alarm_needs_3_breaching_minutes_of_5() -> None:
    three_of_five = rule(m=3, n=5, treat=MissingData.MISSING, threshold=10)
    share = [5.0, 12.0, 11.0, 4.0, 15.0, 20.0, 3.0]
    assert evaluate(three_of_five, [Datapoint(START, v) for v in share], OK).state is ALARM
    assert evaluate(three_of_five, [Datapoint(START, v) for v in [12.0, 3.0, 11.0, 2.0, 1.0]], OK).state is OK


def test_datapoints_to_alarm_defaults_to_evaluation_periods() -> None:
    configured = Rule.of(
        {"ComparisonOperator": "GreaterThanThreshold", "Threshold": 0.0, "EvaluationPeriods": 4}
    )
    assert configured.datapoints_to_alarm == 4
    assert configured.treat_missing is MissingData.MISSING
    assert configured.range_periods == 6


def test_reasons_say_what_crossed() -> None:
    alarm = evaluate(rule(m=1, n=1, threshold=0), [Datapoint(START, 3.0)], OK)
    assert alarm.reason == (
        "Threshold Crossed: 1 out of the last 1 datapoints [3.0 (01/03/25 12:00:00)] was greater than "
        "the threshold (0) (minimum 1 datapoint(s) for OK -> ALARM transition)."
    )
    assert alarm.evaluated == (Datapoint(START, 3.0),)
    nothing = evaluate(rule(m=1, n=1, threshold=0, treat=MissingData.NOT_BREACHING), points("- - -"), ALARM)
    assert nothing.reason == (
        "Threshold Crossed: no datapoints were received "
        "and 1 missing datapoint(s) were treated as [NonBreaching]."
    )
    filled = evaluate(rule(m=2, n=3, threshold=0, treat=MissingData.BREACHING), points("- - - 0 X"), OK)
    assert filled.reason == (
        "Threshold Crossed: 1 out of the last 2 datapoints "
        "[0.0 (01/03/25 12:03:00), 1.0 (01/03/25 12:04:00)] was greater than the threshold (0) "
        "and 1 missing datapoint(s) were treated as [Breaching] "
        "(minimum 2 datapoint(s) for OK -> ALARM transition)."
    )
    assert evaluate(rule(), points("- - - - -"), OK).reason.startswith("Insufficient Data: 3 of the last 3")
