"""What the operator console reads beyond the CLI's listings: a charger's recent events, energy and
revenue per day and site, and utilisation per connector. Each request reads a bounded amount:
one charger's keys, one Scan page of CDRs, or one page of chargers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chargenet.domain.charger_timeline import (
    TimelineCursor,
    TimelineEvent,
    boot_events,
    command_events,
    fault_events,
    status_events,
    timeline_page,
)
from chargenet.domain.energy_report import DayRange, day_range, energy_rows
from chargenet.domain.faults import Fault
from chargenet.domain.models import Charger
from chargenet.domain.operators import Operator, Permission
from chargenet.domain.uptime import ReportPeriod, latest_episodes, utilisation_rows
from chargenet.ports.audit import AvailabilityHistory, OperatorViews, Page
from chargenet.ports.console_reads import ChargerEvents, EnergySources
from chargenet.services.operator_access import (
    BadRequest,
    NotFound,
    OperatorAccess,
    checked_charger_id,
    require,
)
from chargenet.services.operator_api import SITE_ID, connector_timelines

# The charger's pending calls read for its timeline: one Query page (they are kept two days).
TIMELINE_COMMANDS_READ = 100
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class ReportRequest:
    """A report's query as the client sent it: `from`, `to` (YYYY-MM-DD), `site`, and the page."""

    first: str | None
    last: str | None
    site: str | None
    limit: int
    cursor: str | None


@dataclass(frozen=True)
class OperatorReports:
    access: OperatorAccess
    views: OperatorViews
    history: AvailabilityHistory
    events: ChargerEvents
    energy_sources: EnergySources
    clock: Callable[[], datetime]

    def timeline(self, operator: Operator, charger_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """The charger's events newest first; each source read by the charger's key, at most
        `limit` (+1) per connector and per fault, and one page of its commands."""
        require(operator, Permission.CHARGERS_READ)
        charger = self.views.charger(checked_charger_id(charger_id))
        if charger is None:
            raise NotFound(f"there is no charger {charger_id}")
        scope = f"chargers/{charger_id}/timeline"
        position = TimelineCursor.from_key(self.access.start(cursor, scope))
        statuses, statuses_cut = self._status_events(charger, position, limit)
        episodes, episodes_cut = self._episodes(charger_id, position, limit)
        events = [
            *boot_events(charger.recent_boots),
            *statuses,
            *(event for faults in episodes.values() for event in fault_events(faults)),
            *command_events(self.events.commands(charger_id, TIMELINE_COMMANDS_READ)),
        ]
        page = timeline_page(events, position, limit, episodes, statuses_cut or episodes_cut)
        listed: Page[TimelineEvent] = Page(page.events, page.cursor.to_key() if page.cursor else None)
        return self.access.listing([event.record() for event in page.events], listed, scope)

    def energy(self, operator: Operator, request: ReportRequest) -> dict[str, Any]:
        """One Scan page of CDRs aggregated by day, site and currency: the client adds the pages up."""
        require(operator, Permission.REPORTS_READ)
        days, site, scope = self._filters("reports/energy", request)
        start, end = days.utc_window()
        from_key = self.access.start(request.cursor, scope)
        page = self.energy_sources.cdrs_ended_between(start, end, request.limit, from_key)
        sites = self.energy_sources.sites_of({r.charger_id for r in page.items}) if page.items else {}
        listing = self.access.listing(energy_rows(page.items, sites, days, site), page, scope)
        return {"days": listing["items"], "next": listing["next"]}

    def utilisation(self, operator: Operator, request: ReportRequest) -> dict[str, Any]:
        """Per connector of one page of chargers: time charging and available up to now."""
        require(operator, Permission.REPORTS_READ)
        days, site, scope = self._filters("reports/utilisation", request)
        period, now = _period(days), self.clock()
        page = self.views.chargers(site, request.limit, self.access.start(request.cursor, scope))
        rows = [
            row.model_dump(mode="json")
            for charger in page.items
            for row in utilisation_rows(
                period, connector_timelines(self.history, self.views, charger.charger_id, period), now
            )
        ]
        return self.access.listing(rows, page, scope)

    # ------------------------------------------------------------------ helpers
    def _filters(self, report: str, request: ReportRequest) -> tuple[DayRange, str | None, str]:
        """The checked days and site, and the cursor scope they make with the report's name."""
        try:
            days = day_range(request.first, request.last, self.clock().date())
        except ValueError as error:
            raise BadRequest(str(error)) from None
        site = _site(request.site)
        return days, site, f"{report}?from={days.first}&to={days.last}&site={site or ''}"

    def _status_events(
        self, charger: Charger, position: TimelineCursor, limit: int
    ) -> tuple[list[TimelineEvent], bool]:
        """Each connector's statuses up to the cursor; whether a connector may hold older ones."""
        until = datetime.fromisoformat(position.last[0]) if position.last else None
        events: list[TimelineEvent] = []
        cut = False
        for connector in self.views.connectors(charger.charger_id):
            points = self.events.statuses_until(charger.charger_id, connector.connector_id, until, limit + 1)
            cut = cut or len(points) > limit
            events += status_events(points)
        return events, cut

    def _episodes(
        self, charger_id: str, position: TimelineCursor, limit: int
    ) -> tuple[dict[str, list[Fault]], bool]:
        """Each fault's episodes below the cursor's bound, the record as it stands now winning over
        its archived copy; whether a fault may hold older ones."""
        read: dict[str, list[Fault]] = {}
        cut = False
        for fault in self.views.faults_of_charger(charger_id):
            below = position.episode_bound(fault.fault_id)
            archived = self.events.episodes_below(charger_id, fault.fault_id, below, limit)
            cut = cut or len(archived) >= limit
            current = [fault] if below is None or fault.episode < below else []
            read[fault.fault_id] = latest_episodes(archived, current)
        return read, cut


def _site(site: str | None) -> str | None:
    """The site filter; absent or empty: every site."""
    if site and not SITE_ID.fullmatch(site):
        raise BadRequest("site is not a site id")
    return site or None


def _period(days: DayRange) -> ReportPeriod:
    """The days as a report period (UTC midnights; its minutes are the uptime formula's basis)."""
    minutes = Decimal((days.last - days.first).days + 1) * MINUTES_PER_DAY
    return ReportPeriod(label=f"{days.first}..{days.last}", start=days.start, end=days.end, basis_min=minutes)
