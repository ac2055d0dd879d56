"""Per-connector (NEVI: per-port) availability for a month or the previous 12 months.

NEVI (23 CFR 680.116(b)): uptime = ((525600 - (outage_min - excluded_min)) / 525600) x 100
over the previous 12 months, and must exceed 97%. A month uses the same formula with its
own minutes. Outage is the union of the connector's Faulted/Unavailable time (its own
status and the charger's, connector 0) and the charger's OFFLINE faults, so overlapping
reports count once. Excluded is the part of that outage covered by faults the operator
marked with an exclusion reason. No data means no known outage: 100%.

Utilisation reads the same timelines: a connector's time in Charging, SuspendedEV or
SuspendedEVSE over the period up to now, against the whole of that period.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict

from chargenet.domain.fault_rules import OUTAGE_STATUSES
from chargenet.domain.faults import Fault, FaultKind

MINUTES_PER_YEAR = Decimal(525600)  # the regulation's constant, also for windows with a leap day
NEVI_THRESHOLD = Decimal(97)
_THREE_PLACES = Decimal("0.001")
_MICROS_PER_MINUTE = Decimal(60_000_000)
_MICROS_PER_SECOND = 1_000_000
_FOUR_PLACES = Decimal("0.0001")
# The statuses a connector delivers (or holds) a session in, and the one it waits for a driver in.
CHARGING_STATUSES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})
AVAILABLE_STATUSES = frozenset({"Available"})
_MONTH = re.compile(r"([12]\d{3})-(0[1-9]|1[0-2])")

Interval = tuple[datetime, datetime]


class StatusPoint(BaseModel):
    """A connector's status from `at` until its next StatusPoint."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    connector_id: int  # 0 = the whole charger: its outages count for every connector
    status: str
    at: datetime


class ReportPeriod(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    start: datetime
    end: datetime  # exclusive
    basis_min: Decimal  # the formula's denominator


class UptimeReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    charger_id: str
    connector_id: int
    period: str
    outage_min: Decimal
    excluded_min: Decimal
    uptime_percent: Decimal
    meets_97: bool  # judged on the rounded figure, so a row never shows 97.000 as passing


class Utilisation(BaseModel):
    """A connector's time charging and available over a period (up to now), and charging / period."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    connector_id: int
    charging_s: int
    available_s: int
    period_s: int
    utilisation: Decimal  # 0 to 1, four places


def month_period(year: int, month: int) -> ReportPeriod:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = _next_month(start)
    return ReportPeriod(label=f"{start:%Y-%m}", start=start, end=end, basis_min=_minutes(end - start))


def previous_12_months(year: int, month: int) -> ReportPeriod:
    """The twelve calendar months ending with (and including) the given month."""
    last = datetime(year, month, 1, tzinfo=UTC)
    start = _next_month(datetime(year - 1, month, 1, tzinfo=UTC))
    return ReportPeriod(
        label=f"{start:%Y-%m}..{last:%Y-%m}", start=start, end=_next_month(last), basis_min=MINUTES_PER_YEAR
    )


def report_period(month: str, twelve_months: bool, now: datetime) -> ReportPeriod:
    """The month (YYYY-MM), or the twelve months ending with it (NEVI's window); ValueError for a
    month that is malformed or has not started by `now` (its text reads after "month ")."""
    match = _MONTH.fullmatch(month)
    if not match:
        raise ValueError(f"must be YYYY-MM (e.g. 2026-10), not {month[:20]!r}")
    year, number = int(match[1]), int(match[2])
    if month_period(year, number).start > now:
        raise ValueError(f"{month} has not started yet")
    return previous_12_months(year, number) if twelve_months else month_period(year, number)


def latest_episodes(archived: Iterable[Fault], current: Iterable[Fault]) -> list[Fault]:
    """Each episode once; the fault record as it stands now wins over its archived copy (an
    exclusion set after the episode was archived is on the current record)."""
    episodes = {(f.fault_id, f.episode): f for f in archived}
    episodes.update({(f.fault_id, f.episode): f for f in current})
    return list(episodes.values())


def charger_uptime(
    period: ReportPeriod,
    timelines: dict[tuple[str, int], list[StatusPoint]],
    episodes: list[Fault],
    as_of: datetime,
) -> list[UptimeReport]:
    """The rows of one charger's connectors from their timelines over the period (connector 0,
    the charger as a whole, included). A connector that first reported after the period did not
    exist in it: no row."""
    ports = [port for port, timeline in timelines.items() if timeline and port[1] > 0]
    statuses = [point for timeline in timelines.values() for point in timeline]
    return uptime_report(period, statuses, episodes, as_of=as_of, connectors=ports)


def _next_month(first: datetime) -> datetime:
    if first.month == 12:
        return first.replace(year=first.year + 1, month=1)
    return first.replace(month=first.month + 1)


def uptime_report(
    period: ReportPeriod,
    statuses: list[StatusPoint],
    faults: list[Fault],
    as_of: datetime | None = None,
    connectors: Iterable[tuple[str, int]] | None = None,
) -> list[UptimeReport]:
    """One row per connector, by charger and connector.

    `faults` holds every episode that may overlap the period (each episode's record as it
    stood when resolved, plus the open ones). Open outages and the last known status run
    until `as_of` (default: the period's end), so a month in progress is not charged for
    time that has not happened yet. `connectors` defaults to every connector (not 0) in
    the input.
    """
    if connectors is None:
        connectors = {(p.charger_id, p.connector_id) for p in statuses if p.connector_id > 0} | {
            (f.charger_id, f.connector_id) for f in faults if f.connector_id > 0
        }
    return [
        connector_uptime(charger_id, connector_id, period, statuses, faults, as_of)
        for charger_id, connector_id in sorted(connectors)
    ]


def connector_uptime(
    charger_id: str,
    connector_id: int,
    period: ReportPeriod,
    statuses: list[StatusPoint],
    faults: list[Fault],
    as_of: datetime | None = None,
) -> UptimeReport:
    end = min(period.end, as_of) if as_of else period.end
    concerns = {(charger_id, connector_id), (charger_id, 0)}
    own_statuses = [p for p in statuses if (p.charger_id, p.connector_id) in concerns]
    own_faults = [f for f in faults if (f.charger_id, f.connector_id) in concerns]
    outage = _union(
        [
            *_status_stretches(own_statuses, end, OUTAGE_STATUSES),
            *(_episode(f, end) for f in own_faults if f.kind is FaultKind.OFFLINE),
        ],
        period.start,
        end,
    )
    excluded = _union([_episode(f, end) for f in own_faults if f.excluded_reason], period.start, end)
    outage_min = _total_minutes(outage)
    excluded_min = _total_minutes(_intersection(outage, excluded))
    percent = nevi_uptime(period.basis_min, outage_min, excluded_min)
    return UptimeReport(
        charger_id=charger_id,
        connector_id=connector_id,
        period=period.label,
        outage_min=_rounded(outage_min),
        excluded_min=_rounded(excluded_min),
        uptime_percent=percent,
        meets_97=percent > NEVI_THRESHOLD,
    )


def nevi_uptime(basis_min: Decimal, outage_min: Decimal, excluded_min: Decimal) -> Decimal:
    """((basis - (outage - excluded)) / basis) x 100, rounded half-up to 3 places, never below 0.

    The floor matters only for a 12-month window with a leap day, which holds more minutes
    than the regulation's constant.
    """
    percent = (basis_min - (outage_min - excluded_min)) / basis_min * 100
    return _rounded(max(Decimal(0), percent))


def _status_stretches(points: list[StatusPoint], end: datetime, statuses: frozenset[str]) -> list[Interval]:
    """The stretches in one of `statuses`, each timeline (connector, and charger as a whole) on its own."""
    stretches = []
    for _, timeline in itertools.groupby(
        sorted(points, key=lambda p: (p.connector_id, p.at)), lambda p: p.connector_id
    ):
        ordered = list(timeline)
        for point, following in itertools.zip_longest(ordered, ordered[1:]):
            if point.status in statuses:
                stretches.append((point.at, following.at if following else end))
    return stretches


def utilisation_rows(
    period: ReportPeriod, timelines: dict[tuple[str, int], list[StatusPoint]], as_of: datetime
) -> list[Utilisation]:
    """One row per connector (not 0) that had reported by the period's end, by charger and connector."""
    return [
        connector_utilisation(charger_id, connector_id, period, timeline, as_of)
        for (charger_id, connector_id), timeline in sorted(timelines.items())
        if timeline and connector_id > 0
    ]


def connector_utilisation(
    charger_id: str, connector_id: int, period: ReportPeriod, timeline: list[StatusPoint], as_of: datetime
) -> Utilisation:
    """The connector's own statuses only: the charger's (connector 0) outages do not make it charge."""
    end = min(period.end, as_of)
    charging = _union(_status_stretches(timeline, end, CHARGING_STATUSES), period.start, end)
    available = _union(_status_stretches(timeline, end, AVAILABLE_STATUSES), period.start, end)
    period_us = _micros(end - period.start) if end > period.start else 0
    charging_us = sum(_micros(b - a) for a, b in charging)
    share = Decimal(charging_us) / Decimal(period_us) if period_us else Decimal(0)
    return Utilisation(
        charger_id=charger_id,
        connector_id=connector_id,
        charging_s=charging_us // _MICROS_PER_SECOND,
        available_s=sum(_micros(b - a) for a, b in available) // _MICROS_PER_SECOND,
        period_s=period_us // _MICROS_PER_SECOND,
        utilisation=share.quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP),
    )


def _episode(fault: Fault, end: datetime) -> Interval:
    return fault.first_seen, fault.resolved_at or end


def _union(intervals: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The intervals clipped to [start, end) and merged where they overlap or touch."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if min(b, end) > max(a, start))
    merged: list[Interval] = []
    for a, b in clipped:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _intersection(left: list[Interval], right: list[Interval]) -> list[Interval]:
    """Overlap of two merged interval lists."""
    return [(max(a, c), min(b, d)) for a, b in left for c, d in right if min(b, d) > max(a, c)]


def _total_minutes(intervals: list[Interval]) -> Decimal:
    return sum((_minutes(b - a) for a, b in intervals), Decimal(0))


def _minutes(delta: timedelta) -> Decimal:
    # Integer microseconds keep the arithmetic exact; timedelta.total_seconds() is a float.
    return Decimal(_micros(delta)) / _MICROS_PER_MINUTE


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(_THREE_PLACES, rounding=ROUND_HALF_UP)
