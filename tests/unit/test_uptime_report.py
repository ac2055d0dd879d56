"""The pure parts of the uptime report and GetDiagnostics uploads: keys, periods, merging, output."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from chargenet.adapters.history_dynamodb import episode_key, status_key
from chargenet.domain.faults import ExclusionReason, Fault, FaultKind, FaultState, Severity, exclude
from chargenet.domain.firmware import diagnostics_key
from chargenet.domain.uptime import (
    UptimeReport,
    latest_episodes,
    month_period,
    previous_12_months,
    report_period,
)
from chargenet_cli.main import parser
from chargenet_cli.report_cmd import as_csv, as_table

NOW = datetime(2026, 11, 26, 7, 56, tzinfo=UTC)


def episode(number: int, state: FaultState = FaultState.RESOLVED, fault_id: str = "f1") -> Fault:
    start = datetime(2026, 10, number, tzinfo=UTC)
    return Fault(
        fault_id=fault_id,
        charger_id="CP-1",
        site_id="S-1",
        connector_id=1,
        kind=FaultKind.CONNECTOR_ERROR,
        code="GroundFailure",
        severity=Severity.SAFETY_CRITICAL,
        state=state,
        first_seen=start,
        last_seen=start,
        resolved_at=start + timedelta(hours=1) if state is FaultState.RESOLVED else None,
        episode=number,
    )


def test_status_keys_sort_in_time_order_per_connector_whatever_the_zone():
    times = [
        datetime(2026, 10, 5, 10, 0, tzinfo=UTC),
        datetime(2026, 10, 5, 10, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 10, 5, 12, 30, tzinfo=timezone(timedelta(hours=2))),  # 10:30 UTC
        datetime(2026, 10, 5, 11, 0, tzinfo=UTC),
    ]
    keys = [status_key(2, at) for at in times]
    assert sorted(keys) == keys
    assert keys[2] == "status#002#2026-10-05T10:30:00.000000Z"
    # Connector 10 must not sort between connector 1's statuses.
    assert status_key(1, times[-1]) < status_key(10, times[0])


def test_episode_keys_sort_by_episode_number():
    assert episode_key("abc", 2) == "episode#abc#000002"
    assert episode_key("abc", 9) < episode_key("abc", 10)


def test_report_period_is_the_month_or_the_twelve_months_ending_with_it():
    assert report_period("2026-10", False, NOW) == month_period(2026, 10)
    assert report_period("2026-10", True, NOW) == previous_12_months(2026, 10)
    assert report_period("2026-11", False, NOW).label == "2026-11"  # in progress


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-10", "2026/10", "october", "0000-01", ""])
def test_a_bad_month_is_refused(month):
    with pytest.raises(ValueError, match="YYYY-MM"):
        report_period(month, False, NOW)


def test_a_month_that_has_not_started_is_refused():
    with pytest.raises(ValueError, match="has not started"):
        report_period("2026-12", True, NOW)


def test_current_fault_records_win_over_their_archived_episode():
    archived = [episode(1), episode(2)]
    excluded_later = exclude(episode(2), ExclusionReason.VANDALISM)
    merged = latest_episodes(archived, [excluded_later, episode(3, FaultState.OPEN)])
    assert sorted((f.episode, f.excluded_reason) for f in merged) == [
        (1, None),
        (2, ExclusionReason.VANDALISM),
        (3, None),
    ]


def test_episodes_of_different_faults_are_kept_apart():
    merged = latest_episodes([episode(1, fault_id="a")], [episode(1, fault_id="b")])
    assert sorted(f.fault_id for f in merged) == ["a", "b"]


ROWS = [
    UptimeReport(
        charger_id="CP-1",
        connector_id=1,
        period="2026-10",
        outage_min=Decimal("75.000"),
        excluded_min=Decimal("30.000"),
        uptime_percent=Decimal("99.899"),
        meets_97=True,
    ),
    UptimeReport(
        charger_id="CP-1",
        connector_id=2,
        period="2026-10",
        outage_min=Decimal("2000.000"),
        excluded_min=Decimal("0.000"),
        uptime_percent=Decimal("95.520"),
        meets_97=False,
    ),
]


def test_csv_has_a_header_and_exact_decimals():
    assert as_csv(ROWS).splitlines() == [
        "charger_id,connector_id,period,outage_min,excluded_min,uptime_percent,meets_97",
        "CP-1,1,2026-10,75.000,30.000,99.899,true",
        "CP-1,2,2026-10,2000.000,0.000,95.520,false",
    ]


def test_table_says_when_the_month_is_still_running():
    finished = as_table(month_period(2026, 10), ROWS, NOW).splitlines()
    assert finished[0] == "NEVI uptime 2026-10"
    assert finished[1].split() == [
        "CHARGER",
        "PORT",
        "OUTAGE",
        "MIN",
        "EXCLUDED",
        "MIN",
        "UPTIME",
        "%",
        "MEETS",
        "97%",
    ]
    assert finished[3].split() == ["CP-1", "1", "75.000", "30.000", "99.899", "yes"]
    assert finished[4].split()[-1] == "no"
    running = as_table(month_period(2026, 11), [], NOW).splitlines()[0]
    assert running == "NEVI uptime 2026-11 (in progress, up to 2026-11-26 07:56 UTC)"


def test_diagnostics_keys_are_per_charger_and_request_time_in_utc():
    at = datetime(2026, 11, 26, 9, 5, 7, tzinfo=timezone(timedelta(hours=1)))
    assert diagnostics_key("CP-001", at) == "diagnostics/CP-001/20261126T080507Z.log"


def test_exclude_takes_a_nevi_reason_or_clear_but_not_both(capsys):
    args = parser().parse_args(["fault", "exclude", "abc", "--reason", "utility_outage"])
    assert (args.reason, args.clear) == ("utility_outage", False)
    for bad in (["--reason", "bad_weather"], ["--reason", "vandalism", "--clear"], []):
        with pytest.raises(SystemExit) as exit_info:
            parser().parse_args(["fault", "exclude", "abc", *bad])
        assert exit_info.value.code == 2
    assert "invalid choice: 'bad_weather'" in capsys.readouterr().err
