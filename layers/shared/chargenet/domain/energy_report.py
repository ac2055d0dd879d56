"""Energy (kWh), revenue and sessions per day and per site, from CDRs; and the reports' date ranges.

A CDR counts on the day its session ended, on the wall clock it was priced on (the site's zone,
`BillingRecord.time_zone`: UTC for CDRs priced before sites had zones). Revenue is the CDR's
total including VAT; a credit CDR (negative totals, the same end as the CDR it corrects) lands on
the same day and subtracts its amount, but neither its energy nor a session: the energy flowed.
Currencies are never added together: a site that bills in two currencies has a row for each.
Decimal throughout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from chargenet.domain.billing import BillingRecord

MAX_REPORT_DAYS = 92
# The widest gap between a wall clock and UTC (UTC+14, UTC-12), so a UTC window read from the
# table holds every CDR of the requested local days.
_ZONE_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class DayRange:
    first: date
    last: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Midnight UTC after the last day (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)

    def utc_window(self) -> tuple[datetime, datetime]:
        """A UTC window that holds every instant of these days on any wall clock."""
        return self.start - _ZONE_SLACK, self.end + _ZONE_SLACK

    def __contains__(self, day: date) -> bool:
        return self.first <= day <= self.last


def day_range(first: str | None, last: str | None, today: date) -> DayRange:
    """`from` and `to` (YYYY-MM-DD, both days included, at most MAX_REPORT_DAYS, not after today);
    ValueError says what is wrong."""
    start, end = _day("from", first), _day("to", last)
    if end < start:
        raise ValueError("to is before from")
    if (end - start).days + 1 > MAX_REPORT_DAYS:
        raise ValueError(f"the range is at most {MAX_REPORT_DAYS} days")
    if start > today:
        raise ValueError("from is in the future")
    return DayRange(start, end)


def _day(name: str, value: str | None) -> date:
    if not value or len(value) != len("YYYY-MM-DD"):
        raise ValueError(f"{name} is a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is a date, YYYY-MM-DD") from None


@dataclass
class _Totals:
    energy_wh: int = 0
    revenue: Decimal = field(default_factory=lambda: Decimal(0))
    sessions: int = 0


def energy_rows(
    records: Iterable[BillingRecord], sites: dict[str, str], days: DayRange, site: str | None
) -> list[dict[str, Any]]:
    """The page's rows by day, site and currency: `sites` maps charger ids to site ids (a charger
    no longer in the registry has site "")."""
    totals: dict[tuple[date, str, str], _Totals] = {}
    for record in records:
        day = record.end_date_time.astimezone(ZoneInfo(record.time_zone)).date()
        site_id = sites.get(record.charger_id, "")
        if day not in days or (site is not None and site_id != site):
            continue
        row = totals.setdefault((day, site_id, record.currency), _Totals())
        row.revenue += record.total_incl_vat
        if record.credit_reference_id is None:
            row.energy_wh += record.energy_wh
            row.sessions += 1
    return [
        {
            "day": day.isoformat(),
            "site_id": site_id,
            "energy_kwh": str(Decimal(row.energy_wh) / 1000),
            "revenue": {"amount": str(row.revenue), "currency": currency},
            "sessions": row.sessions,
        }
        for (day, site_id, currency), row in sorted(totals.items())
    ]
