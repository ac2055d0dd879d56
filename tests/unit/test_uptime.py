from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from chargenet.domain.faults import (
    ExclusionReason,
    FaultKind,
    FaultSignal,
    Severity,
    exclude,
    observe,
    resolve,
)
from chargenet.domain.uptime import (
    StatusPoint,
    connector_uptime,
    month_period,
    nevi_uptime,
    previous_12_months,
    uptime_report,
)

NOV = month_period(2026, 11)  # 30 days: 43200 minutes


def t(day, hour=0, minute=0, month=11, year=2026):
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def point(at, status, connector=1, charger="CP-1"):
    return StatusPoint(charger_id=charger, connector_id=connector, status=status, at=at)


def fault(start, end, kind=FaultKind.OFFLINE, connector=0, reason=None, charger="CP-1"):
    raised = FaultSignal(
        charger_id=charger,
        site_id="S-1",
        connector_id=connector,
        kind=kind,
        code=str(kind),
        severity=Severity.MAJOR,
        at=start,
        evidence="test",
    )
    opened = observe(None, raised, start)
    closed = resolve(opened, end) if end else opened
    return exclude(closed, reason) if reason else closed


def row(statuses=(), faults=(), period=NOV, connector=1, as_of=None):
    return connector_uptime("CP-1", connector, period, list(statuses), list(faults), as_of)


def test_periods():
    assert (NOV.label, NOV.start, NOV.end, NOV.basis_min) == ("2026-11", t(1), t(1, month=12), Decimal(43200))
    assert month_period(2028, 2).basis_min == Decimal(41760)
    assert month_period(2026, 12).end == datetime(2027, 1, 1, tzinfo=UTC)
    year = previous_12_months(2026, 11)
    assert (year.label, year.start, year.end, year.basis_min) == (
        "2025-12..2026-11",
        t(1, month=12, year=2025),
        t(1, month=12),
        Decimal(525600),
    )
    assert previous_12_months(2026, 12).label == "2026-01..2026-12"


def test_a_month_with_no_data_is_fully_up():
    report = row()
    assert (report.outage_min, report.excluded_min, report.uptime_percent, report.meets_97) == (
        Decimal("0.000"),
        Decimal("0.000"),
        Decimal("100.000"),
        True,
    )


def test_worked_example_month():
    # Faulted 10:00-22:00 on the 10th: 720 min; (43200 - 720) / 43200 x 100 = 98.3333...
    report = row([point(t(10, 10), "Faulted"), point(t(10, 22), "Available")])
    assert (report.charger_id, report.connector_id, report.period) == ("CP-1", 1, "2026-11")
    assert (report.outage_min, report.uptime_percent, report.meets_97) == (
        Decimal("720.000"),
        Decimal("98.333"),
        True,
    )


def test_worked_example_twelve_months():
    # Same 720 min over the year: (525600 - 720) / 525600 x 100 = 99.86301...
    report = row(
        [point(t(10, 10), "Faulted"), point(t(10, 22), "Available")], period=previous_12_months(2026, 11)
    )
    assert (report.period, report.uptime_percent) == ("2025-12..2026-11", Decimal("99.863"))


def test_worked_example_twelve_months_with_an_exclusion():
    # Faulted 14 days (20160 min), 3.5 days of it scheduled maintenance (5040 min):
    # (525600 - (20160 - 5040)) / 525600 x 100 = 97.12328...
    statuses = [point(t(1, month=3), "Faulted"), point(t(15, month=3), "Available")]
    maintenance = fault(
        t(1, month=3),
        t(4, 12, month=3),
        kind=FaultKind.CHARGER_UNAVAILABLE,
        connector=1,
        reason=ExclusionReason.SCHEDULED_MAINTENANCE,
    )
    report = row(statuses, [maintenance], period=previous_12_months(2026, 11))
    assert (report.outage_min, report.excluded_min) == (Decimal("20160.000"), Decimal("5040.000"))
    assert (report.uptime_percent, report.meets_97) == (Decimal("97.123"), True)


def test_only_faulted_and_unavailable_are_outage():
    up = ["Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"]
    statuses = [point(t(day + 1), status) for day, status in enumerate(up)]
    statuses += [point(t(10), "Unavailable"), point(t(10, 1), "Available")]
    assert row(statuses).outage_min == Decimal("60.000")


def test_offline_faults_are_outage_for_every_connector():
    offline = fault(t(5), t(5, 10))
    assert row(faults=[offline], connector=1).outage_min == Decimal("600.000")
    assert row(faults=[offline], connector=2).outage_min == Decimal("600.000")


def test_other_fault_kinds_are_not_outage_by_themselves():
    assert row(faults=[fault(t(5), t(5, 10), kind=FaultKind.METERING, connector=1)]).outage_min == 0


def test_overlapping_outages_count_once():
    # Connector Faulted 10-12, charger Unavailable 11-13, offline 12:30-14: 10:00-14:00 = 240 min.
    statuses = [
        point(t(10, 10), "Faulted"),
        point(t(10, 12), "Available"),
        point(t(10, 11), "Unavailable", connector=0),
        point(t(10, 13), "Available", connector=0),
    ]
    report = row(statuses, [fault(t(10, 12, 30), t(10, 14))])
    assert (report.outage_min, report.uptime_percent) == (Decimal("240.000"), Decimal("99.444"))


def test_an_excluded_outage_does_not_count():
    report = row(faults=[fault(t(5), t(5, 10), reason=ExclusionReason.UTILITY_OUTAGE)])
    assert (report.outage_min, report.excluded_min, report.uptime_percent) == (
        Decimal("600.000"),
        Decimal("600.000"),
        Decimal("100.000"),
    )


def test_only_the_excluded_part_of_an_outage_is_excluded():
    # Faulted 10:00-22:00, vandalism recorded 08:00-12:00: 120 min excluded;
    # (43200 - 600) / 43200 x 100 = 98.6111...
    vandalism = fault(
        t(10, 8), t(10, 12), kind=FaultKind.CONNECTOR_ERROR, connector=1, reason=ExclusionReason.VANDALISM
    )
    report = row([point(t(10, 10), "Faulted"), point(t(10, 22), "Available")], [vandalism])
    assert (report.excluded_min, report.uptime_percent) == (Decimal("120.000"), Decimal("98.611"))


def test_an_exclusion_without_an_outage_excludes_nothing():
    excluded = fault(t(5), t(6), kind=FaultKind.SECURITY_EVENT, reason=ExclusionReason.NATURAL_DISASTER)
    assert row(faults=[excluded]).excluded_min == 0


def test_intervals_crossing_the_period_edges_are_clipped():
    # Faulted Oct 31 20:00 - Nov 1 02:00 and from Nov 30 23:00 on: 120 + 60 min in November.
    statuses = [
        point(t(31, 20, month=10), "Faulted"),
        point(t(1, 2), "Available"),
        point(t(30, 23), "Faulted"),
    ]
    report = row(statuses)
    assert (report.outage_min, report.uptime_percent) == (Decimal("180.000"), Decimal("99.583"))
    october = row(statuses, period=month_period(2026, 10))  # 31 days: 44640 minutes
    assert (october.outage_min, october.uptime_percent) == (Decimal("240.000"), Decimal("99.462"))


def test_a_status_from_before_the_period_carries_into_it():
    report = row([point(t(15, month=10), "Unavailable")])
    assert (report.outage_min, report.uptime_percent, report.meets_97) == (
        Decimal("43200.000"),
        Decimal("0.000"),
        False,
    )


def test_open_outages_run_until_as_of():
    report = row([point(t(20), "Faulted")], [fault(t(20, 3), None)], as_of=t(20, 6))
    assert report.outage_min == Decimal("360.000")
    assert row(faults=[fault(t(20, 3), None)]).outage_min == Decimal(11 * 24 * 60 - 180)


def test_the_97_percent_line_must_be_exceeded():
    # 3% of 43200 is 1296 min (21:36).
    at_line = row([point(t(1), "Faulted"), point(t(1, 21, 36), "Available")])
    assert (at_line.uptime_percent, at_line.meets_97) == (Decimal("97.000"), False)
    above = row([point(t(1), "Faulted"), point(t(1, 21, 35), "Available")])
    assert (above.uptime_percent, above.meets_97) == (Decimal("97.002"), True)


def test_rounding_is_half_up_to_three_places():
    assert nevi_uptime(Decimal(1_000_000), Decimal(15), Decimal(0)) == Decimal("99.999")  # 99.9985
    assert nevi_uptime(Decimal(1_000_000), Decimal(25), Decimal(0)) == Decimal("99.998")  # 99.9975


def test_a_leap_year_window_fully_down_is_zero_not_negative():
    year = previous_12_months(2028, 12)  # 527040 minutes
    report = row([point(t(31, month=12, year=2027), "Faulted")], period=year)
    assert (report.outage_min, report.uptime_percent) == (Decimal("527040.000"), Decimal("0.000"))


def test_the_report_has_a_row_per_connector_of_each_charger():
    statuses = [
        point(t(10, 10), "Faulted", connector=2),
        point(t(10, 11), "Available", connector=2),
        point(t(10, 10), "Faulted", connector=1, charger="CP-2"),
        point(t(10, 12), "Available", connector=1, charger="CP-2"),
        point(t(10, 10), "Available", connector=0),
        point(t(10, 10), "Available", connector=1),
    ]
    rows = uptime_report(NOV, statuses, [fault(t(5), t(5, 1), charger="CP-2")])
    assert [(r.charger_id, r.connector_id, r.outage_min) for r in rows] == [
        ("CP-1", 1, Decimal("0.000")),
        ("CP-1", 2, Decimal("60.000")),
        ("CP-2", 1, Decimal("180.000")),
    ]


def test_the_report_covers_connectors_without_data_when_asked():
    (report,) = uptime_report(NOV, [], [], connectors=[("CP-9", 3)])
    assert (report.charger_id, report.connector_id, report.uptime_percent) == ("CP-9", 3, Decimal("100.000"))


HISTORY = [
    point(t(3, 4), "Faulted"),
    point(t(3, 9), "Available"),
    point(t(3, 8), "Unavailable", connector=0),
    point(t(3, 12), "Available", connector=0),
    point(t(29, 22), "Faulted"),
]
FAULTS = [
    fault(t(3, 11), t(3, 15)),
    fault(t(3, 14), t(3, 20), reason=ExclusionReason.NETWORK_OUTAGE),
    fault(t(29, 20), None),
]


@settings(max_examples=50, deadline=None)
@given(st.permutations(HISTORY), st.permutations(FAULTS), st.lists(st.sampled_from(FAULTS), max_size=3))
def test_order_and_repeats_do_not_change_the_result(statuses, faults, repeats):
    assert row(statuses, [*faults, *repeats]) == row(HISTORY, FAULTS)
