"""The console's routes on the operator API: a charger's timeline, the energy and utilisation reports.

Routes x roles, bad input (400), cursors, and the arithmetic: the timeline's merge and paging,
energy and revenue per day and site (credits, currencies, day boundaries on the site's clock),
utilisation per connector. The handler runs on the same events and fakes as test_operator_api.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chargenet.adapters.tables import TableNames, bind_tables, bound_tables
from chargenet.domain.billing import BillingRecord
from chargenet.domain.charger_timeline import TimelineCursor, fault_events, status_events, timeline_page
from chargenet.domain.energy_report import DayRange, energy_rows
from chargenet.domain.faults import Fault, observe, resolve
from chargenet.domain.models import ConnectorStatus, PendingCall
from chargenet.domain.uptime import StatusPoint
from chargenet.ports.audit import Key, Page
from chargenet.services.operator_access import OperatorAccess
from chargenet.services.operator_reports import OperatorReports
from tests.fakes import InMemoryFaultStore, InMemoryRegistry
from tests.unit.fault_builders import at, opened, signal
from tests.unit.handler_modules import imported_handler
from tests.unit.operator_sign_outs import checked_in_memory
from tests.unit.test_operator_api import (
    NOW,
    SECRET,
    FakeHistory,
    FakeViews,
    MemoryAuditLog,
    call,
    claims_of,
)


def _at(hour: int, minute: int = 0, day: int = 26) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


class FakeEvents:
    """The charger's event sources, read newest first and bounded as DynamoChargerEvents reads them."""

    def __init__(self) -> None:
        self.statuses: dict[tuple[str, int], list[StatusPoint]] = {}
        self.archived: dict[str, list[Fault]] = {}
        self.calls: list[PendingCall] = []

    def statuses_until(
        self, charger_id: str, connector_id: int, until: datetime | None, limit: int
    ) -> list[StatusPoint]:
        points = self.statuses.get((charger_id, connector_id), [])
        kept = [p for p in points if until is None or p.at <= until]
        return sorted(kept, key=lambda p: p.at, reverse=True)[:limit]

    def episodes_below(self, charger_id: str, fault_id: str, below: int | None, limit: int) -> list[Fault]:
        episodes = [f for f in self.archived.get(fault_id, []) if below is None or f.episode < below]
        return sorted(episodes, key=lambda f: f.episode, reverse=True)[:limit]

    def commands(self, charger_id: str, limit: int) -> list[PendingCall]:
        return [c for c in self.calls if c.charger_id == charger_id][:limit]


class FakeEnergy:
    """CDRs paged in id order (a Scan's pages), the window applied as the Scan's filter."""

    def __init__(self, registry: InMemoryRegistry) -> None:
        self.registry = registry
        self.records: list[BillingRecord] = []
        self.site_reads: list[set[str]] = []

    def cdrs_ended_between(
        self, start: datetime, end: datetime, limit: int, from_key: Key | None
    ) -> Page[BillingRecord]:
        after = from_key["cdr_id"] if from_key else ""
        rest = sorted((r for r in self.records if r.cdr_id > after), key=lambda r: r.cdr_id)
        page = rest[:limit]
        kept = [r for r in page if start <= r.end_date_time < end]
        return Page(kept, {"cdr_id": page[-1].cdr_id} if len(rest) > limit else None)

    def sites_of(self, charger_ids: set[str]) -> dict[str, str]:
        self.site_reads.append(charger_ids)
        chargers = (self.registry.get(charger_id) for charger_id in charger_ids)
        return {c.charger_id: c.site_id for c in chargers if c is not None}


class World:
    def __init__(self) -> None:
        self.registry = InMemoryRegistry()
        self.registry.add("CP-1", NOW - timedelta(days=30), site_id="S-1")
        self.registry.add("CP-2", NOW - timedelta(days=30), site_id="S-2")
        self.registry.add("CP-3", NOW - timedelta(days=30), site_id="S-1")
        self.faults = InMemoryFaultStore()
        self.history = FakeHistory()
        self.events = FakeEvents()
        self.energy = FakeEnergy(self.registry)
        self.reports = OperatorReports(
            OperatorAccess(MemoryAuditLog(), lambda: SECRET),
            FakeViews(self.registry, self.faults),
            self.history,
            self.events,
            self.energy,
            lambda: NOW,
        )

    def connector(self, charger_id: str, connector_id: int, status: str = "Available") -> None:
        self.registry.statuses[(charger_id, connector_id)] = ConnectorStatus(
            charger_id=charger_id,
            connector_id=connector_id,
            status=status,
            error_code="NoError",
            status_at=NOW,
            received_at=NOW,
        )


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    yield from imported_handler("operator_api")


@pytest.fixture
def world(api: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(api, "operator_reports", lambda: world.reports)
    checked_in_memory(api, monkeypatch)
    return world


# ---------------------------------------------------------------- routes x roles

TIMELINE = "/ops/v1/chargers/CP-1/timeline"
ENERGY = "/ops/v1/reports/energy"
UTILISATION = "/ops/v1/reports/utilisation"
RANGE = "from=2026-11-01&to=2026-11-26"


@pytest.mark.parametrize(
    ("path", "query", "allowed"),
    [
        (TIMELINE, "", {"admin", "technician", "viewer"}),
        (ENERGY, RANGE, {"admin", "finance", "viewer"}),
        (UTILISATION, RANGE, {"admin", "finance", "viewer"}),
    ],
)
@pytest.mark.parametrize("role", ["admin", "technician", "finance", "viewer"])
def test_each_route_is_for_the_roles_with_its_permission(
    api: Any, world: World, path: str, query: str, allowed: set[str], role: str
) -> None:
    status, body = call(api, "GET", path, claims_of(role), query)
    if role in allowed:
        assert status == 200, body
    else:
        assert (status, body["error"]) == (403, "forbidden")


@pytest.mark.parametrize("path", [TIMELINE, ENERGY, UTILISATION])
def test_no_token_is_401(api: Any, world: World, path: str) -> None:
    assert call(api, "GET", path, None, RANGE)[0] == 401


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "from is a date"),
        ("from=2026-11-01", "to is a date"),
        ("from=2026-11-1&to=2026-11-26", "from is a date"),
        ("from=2026-02-30&to=2026-03-02", "from is a date"),
        ("from=2026-11-26&to=2026-11-01", "to is before from"),
        ("from=2026-08-26&to=2026-11-26", "at most 92 days"),
        ("from=2026-11-27&to=2026-11-30", "from is in the future"),
        (f"{RANGE}&site=S%201", "site is not a site id"),
    ],
)
@pytest.mark.parametrize("path", [ENERGY, UTILISATION])
def test_bad_ranges_and_sites_are_400(api: Any, world: World, path: str, query: str, message: str) -> None:
    status, body = call(api, "GET", path, claims_of("viewer"), query.replace("%20", " "))
    assert (status, body["error"]) == (400, "bad_request") and message in body["message"]


def test_ninety_two_days_is_the_longest_range(api: Any, world: World) -> None:
    assert call(api, "GET", ENERGY, claims_of("viewer"), "from=2026-08-27&to=2026-11-26")[0] == 200


def test_a_timeline_of_no_charger_is_404_and_of_no_charger_id_400(api: Any, world: World) -> None:
    assert call(api, "GET", "/ops/v1/chargers/CP-9/timeline", claims_of("viewer"))[0] == 404
    status, body = call(api, "GET", "/ops/v1/chargers/CP%231/timeline", claims_of("viewer"))
    assert (status, body["error"]) == (400, "bad_request")


@pytest.mark.parametrize("limit", ["0", "201", "x"])
def test_a_bad_timeline_limit_is_400(api: Any, world: World, limit: str) -> None:
    assert call(api, "GET", TIMELINE, claims_of("viewer"), f"limit={limit}")[0] == 400


# ---------------------------------------------------------------- the timeline


def _episodes() -> tuple[Fault, Fault]:
    """GroundFailure on connector 1: opened 08:00, resolved 08:10; opened again 08:30 (episode 2)."""
    first = resolve(opened(0), at(10))
    assert first is not None
    return first, observe(first, signal(30), at(30))


def _timeline_world(world: World) -> None:
    world.connector("CP-1", 1)
    charger = world.registry.chargers["CP-1"]
    world.registry.chargers["CP-1"] = charger.model_copy(update={"recent_boots": [_at(7), at(20)]})
    first, second = _episodes()
    world.events.archived[first.fault_id] = [first, second]
    world.faults.faults[second.fault_id] = (second, [])
    world.events.statuses[("CP-1", 1)] = [
        StatusPoint(charger_id="CP-1", connector_id=1, status="Faulted", at=at(0)),
        StatusPoint(charger_id="CP-1", connector_id=1, status="Available", at=at(45)),
    ]
    world.events.calls = [
        PendingCall(
            charger_id="CP-1",
            message_id="m-1",
            action="Reset",
            payload={"type": "Soft"},
            sent_at=at(40),
            answered_at=at(40) + timedelta(seconds=2),
            outcome={"result": {"status": "Accepted"}},
        )
    ]


EXPECTED = [
    ("08:45", "status"),
    ("08:40", "command"),
    ("08:30", "fault_opened"),
    ("08:20", "boot"),
    ("08:10", "fault_resolved"),
    ("08:00", "status"),
    ("08:00", "fault_opened"),
    ("07:00", "boot"),
]


def _summary(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["at"][11:16], item["kind"]) for item in items]


def test_the_timeline_merges_every_source_newest_first(api: Any, world: World) -> None:
    _timeline_world(world)
    status, body = call(api, "GET", TIMELINE, claims_of("technician"))
    assert status == 200 and body["next"] is None
    assert _summary(body["items"]) == EXPECTED
    command = body["items"][1]
    assert command["action"] == "Reset" and command["outcome"] == {"result": {"status": "Accepted"}}
    assert command["summary"] == "Reset: Accepted"
    assert body["items"][0]["summary"] == "connector 1: Available"
    assert body["items"][2]["summary"] == "safety critical fault GroundFailure on connector 1 opened"
    assert "payload" not in command
    opened_again = body["items"][2]
    assert (opened_again["episode"], opened_again["code"], opened_again["connector_id"]) == (
        2,
        "GroundFailure",
        1,
    )


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_timeline_pages_give_each_event_once_in_order(api: Any, world: World, limit: int) -> None:
    _timeline_world(world)
    seen: list[dict[str, Any]] = []
    query = f"limit={limit}"
    for _ in range(20):
        status, body = call(api, "GET", TIMELINE, claims_of("viewer"), query)
        assert status == 200 and len(body["items"]) <= limit
        seen += body["items"]
        if body["next"] is None:
            break
        query = f"limit={limit}&next={body['next']}"
    assert _summary(seen) == EXPECTED


def test_a_timeline_cursor_is_for_its_charger_only(api: Any, world: World) -> None:
    _timeline_world(world)
    first = call(api, "GET", TIMELINE, claims_of("viewer"), "limit=1")[1]
    query = f"limit=1&next={first['next']}"
    status, body = call(api, "GET", "/ops/v1/chargers/CP-2/timeline", claims_of("viewer"), query)
    assert (status, body["error"]) == (400, "bad_cursor")


def test_many_newer_episodes_do_not_hide_older_ones() -> None:
    """A fault that opened and closed more often than a page holds: the cursor's episode bound
    reads on below the episodes already given."""
    episodes = []
    fault = None
    for n in range(6):
        fault = observe(fault, signal(10 * n), at(10 * n))
        fault = resolve(fault, at(10 * n + 5))
        assert fault is not None
        episodes.append(fault)
    events = FakeEvents()
    events.archived[episodes[0].fault_id] = episodes
    cursor, seen = TimelineCursor(None, {}), []
    for _ in range(20):
        read = events.episodes_below(
            "CP-1", episodes[0].fault_id, cursor.episode_bound(episodes[0].fault_id), 2
        )
        page = timeline_page(fault_events(read), cursor, 2, {episodes[0].fault_id: read}, len(read) >= 2)
        seen += [(e.kind, e.detail["episode"]) for e in page.events]
        if page.cursor is None:
            break
        cursor = TimelineCursor.from_key(page.cursor.to_key())
    expected = [(kind, n) for n in range(6, 0, -1) for kind in ("fault_resolved", "fault_opened")]
    assert seen == expected


def test_statuses_at_the_same_instant_on_two_connectors_both_appear() -> None:
    points = [StatusPoint(charger_id="CP-1", connector_id=c, status="Charging", at=at(0)) for c in (1, 2)]
    first = timeline_page(status_events(points), TimelineCursor(None, {}), 1, {}, truncated=False)
    assert first.cursor is not None
    rest = timeline_page(status_events(points), first.cursor, 1, {}, truncated=False)
    assert [e.connector_id for e in first.events + rest.events] == [2, 1] and rest.cursor is None


# ---------------------------------------------------------------- energy and revenue


def cdr(
    cdr_id: str,
    ended: datetime,
    total: str,
    currency: str = "EUR",
    energy_wh: int = 10_000,
    charger_id: str = "CP-1",
    zone: str = "Europe/Stockholm",
    credit_of: str | None = None,
) -> BillingRecord:
    return BillingRecord(
        cdr_id=cdr_id,
        session_id=credit_of or cdr_id,
        charger_id=charger_id,
        connector_id=1,
        start_date_time=ended - timedelta(hours=1),
        end_date_time=ended,
        currency=currency,
        total_excl_vat=Decimal(total) / Decimal("1.25"),
        total_incl_vat=Decimal(total),
        energy_wh=energy_wh,
        ocpi={"cdr_location": {"time_zone": zone}},
        credit_reference_id=credit_of,
    )


DAYS = DayRange(date(2026, 11, 1), date(2026, 11, 26))
SITES = {"CP-1": "S-1", "CP-2": "S-2"}


def test_revenue_subtracts_credits_but_keeps_their_energy_and_sessions() -> None:
    records = [
        cdr("a", _at(10), "12.34"),
        cdr("b", _at(11), "7.66", energy_wh=5_500),
        cdr("b-CREDIT", _at(11), "-7.66", energy_wh=5_500, credit_of="b"),
    ]
    assert energy_rows(records, SITES, DAYS, None) == [
        {
            "day": "2026-11-26",
            "site_id": "S-1",
            "energy_kwh": "15.5",
            "revenue": {"amount": "12.34", "currency": "EUR"},
            "sessions": 2,
        }
    ]


def test_currencies_and_sites_are_kept_apart() -> None:
    records = [
        cdr("a", _at(10), "10.00"),
        cdr("b", _at(10), "100.00", currency="SEK"),
        cdr("c", _at(10), "1.50", charger_id="CP-2"),
        cdr("d", _at(10), "2.50", charger_id="CP-9"),  # no longer registered
    ]
    rows = energy_rows(records, SITES, DAYS, None)
    assert [(r["site_id"], r["revenue"]["currency"], r["revenue"]["amount"]) for r in rows] == [
        ("", "EUR", "2.50"),
        ("S-1", "EUR", "10.00"),
        ("S-1", "SEK", "100.00"),
        ("S-2", "EUR", "1.50"),
    ]
    only = energy_rows(records, SITES, DAYS, "S-2")
    assert [r["site_id"] for r in only] == ["S-2"]


def test_a_session_counts_on_the_day_it_ended_on_its_sites_clock() -> None:
    """23:30 UTC is 00:30 the next day in Stockholm (UTC+1) but the same day on a UTC site."""
    before_range = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    records = [
        cdr("a", before_range, "1.00"),  # 1 November in Stockholm: in the range
        cdr("b", _at(23, 30), "2.00"),  # 27 November in Stockholm: after it
        cdr("c", before_range, "4.00", zone="UTC"),  # 31 October: before it
        cdr("d", _at(23, 30), "8.00", zone="UTC"),  # 26 November: in it
    ]
    rows = energy_rows(records, SITES, DAYS, None)
    assert [(r["day"], r["revenue"]["amount"]) for r in rows] == [
        ("2026-11-01", "1.00"),
        ("2026-11-26", "8.00"),
    ]


def test_the_energy_route_aggregates_one_page_and_pages_on(api: Any, world: World) -> None:
    world.energy.records = [
        cdr("a", _at(10), "1.10"),
        cdr("b", _at(10, day=25), "2.20", charger_id="CP-2"),
        cdr("c", _at(10), "3.30"),
        cdr("z", _at(10, day=20), "9.99"),
        cdr("old", datetime(2026, 9, 1, tzinfo=UTC), "5.00"),
    ]
    status, first = call(api, "GET", ENERGY, claims_of("finance"), f"{RANGE}&limit=2")
    assert status == 200 and first["next"]
    assert [(d["day"], d["site_id"], d["revenue"]["amount"]) for d in first["days"]] == [
        ("2026-11-25", "S-2", "2.20"),
        ("2026-11-26", "S-1", "1.10"),
    ]
    query = f"{RANGE}&limit=2&next={first['next']}"
    second = call(api, "GET", ENERGY, claims_of("finance"), query)[1]
    assert [d["revenue"]["amount"] for d in second["days"]] == ["3.30"]
    other = call(
        api, "GET", ENERGY, claims_of("finance"), f"from=2026-11-02&to=2026-11-26&next={first['next']}"
    )
    assert (other[0], other[1]["error"]) == (400, "bad_cursor")


def test_an_energy_page_reads_its_chargers_sites_once(api: Any, world: World) -> None:
    world.energy.records = [cdr(str(n), _at(10), "1.00") for n in range(5)]
    call(api, "GET", ENERGY, claims_of("viewer"), RANGE)
    assert world.energy.site_reads == [{"CP-1"}]


# ---------------------------------------------------------------- utilisation


def _point(connector_id: int, status: str, hour: int, minute: int = 0, day: int = 26) -> StatusPoint:
    return StatusPoint(charger_id="CP-1", connector_id=connector_id, status=status, at=_at(hour, minute, day))


def test_utilisation_is_charging_time_over_the_period_up_to_now(api: Any, world: World) -> None:
    world.connector("CP-1", 0)
    world.connector("CP-1", 1)
    world.history.statuses[("CP-1", 1)] = [
        _point(1, "Available", 0),
        _point(1, "Preparing", 6),
        _point(1, "Charging", 6, 5),
        _point(1, "SuspendedEV", 7),
        _point(1, "Finishing", 7, 35),
        _point(1, "Available", 7, 40),
    ]
    world.history.statuses[("CP-1", 0)] = [_point(0, "Unavailable", 8)]
    status, body = call(api, "GET", UTILISATION, claims_of("viewer"), "from=2026-11-26&to=2026-11-26")
    assert status == 200, body
    # 00:00 to 09:00 (now): 32400 s; charging 06:05 to 07:35: 5400 s; available 6 h + 80 min.
    assert body["items"] == [
        {
            "charger_id": "CP-1",
            "connector_id": 1,
            "charging_s": 5400,
            "available_s": 6 * 3600 + 80 * 60,
            "period_s": 32400,
            "utilisation": "0.1667",
        }
    ]


def test_utilisation_pages_chargers_and_filters_by_site(api: Any, world: World) -> None:
    for charger_id in ("CP-1", "CP-2", "CP-3"):
        world.connector(charger_id, 1)
        world.history.statuses[(charger_id, 1)] = [
            StatusPoint(charger_id=charger_id, connector_id=1, status="Charging", at=_at(0, day=25))
        ]
    first = call(
        api, "GET", UTILISATION, claims_of("viewer"), "from=2026-11-25&to=2026-11-25&site=S-1&limit=1"
    )[1]
    assert [r["charger_id"] for r in first["items"]] == ["CP-1"] and first["items"][0][
        "utilisation"
    ] == "1.0000"
    query = f"from=2026-11-25&to=2026-11-25&site=S-1&limit=1&next={first['next']}"
    rest = call(api, "GET", UTILISATION, claims_of("viewer"), query)[1]
    assert [r["charger_id"] for r in rest["items"]] == ["CP-3"] and rest["next"] is None


def test_a_connector_that_had_not_reported_has_no_row(api: Any, world: World) -> None:
    world.connector("CP-1", 1)
    body = call(api, "GET", UTILISATION, claims_of("viewer"), "from=2026-11-01&to=2026-11-02&site=S-1")[1]
    assert body["items"] == []


# ---------------------------------------------------------------- the DynamoDB adapters (moto)


def _table(client: Any, name: str, hash_key: str, range_key: str | None = None) -> None:
    keys = [(hash_key, "HASH"), *([(range_key, "RANGE")] if range_key else [])]
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def tables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    previous = bound_tables()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _table(client, "Chargers", "charger_id", "sk")
        _table(client, "History", "charger_id", "sk")
        _table(client, "PendingCalls", "charger_id", "message_id")
        _table(client, "Cdrs", "cdr_id")
        bind_tables(
            TableNames(
                chargers="Chargers",
                history="History",
                pending_calls="PendingCalls",
                cdrs="Cdrs",
                region="us-east-1",
            )
        )
        try:
            yield
        finally:
            if previous is not None:
                bind_tables(previous)


def test_dynamodb_charger_events_read_newest_first_up_to_the_cursor(tables: None) -> None:
    from chargenet.adapters.console_reads_dynamodb import DynamoChargerEvents
    from chargenet.adapters.dynamodb import DynamoPendingCalls
    from chargenet.adapters.faults_dynamodb import episode_item
    from chargenet.adapters.history_dynamodb import DynamoHistory

    history = DynamoHistory()
    for minute, status in ((0, "Available"), (10, "Charging"), (20, "Finishing")):
        history.record_status(
            ConnectorStatus(
                charger_id="CP-1",
                connector_id=1,
                status=status,
                error_code="NoError",
                status_at=at(minute),
                received_at=at(minute),
            )
        )
    first, second = _episodes()
    for episode in (first, second):
        episode_item(episode).save()
    DynamoPendingCalls().add("CP-1", "m-1", "Reset", {"type": "Soft"}, at(5))
    events = DynamoChargerEvents()

    assert [p.status for p in events.statuses_until("CP-1", 1, None, 2)] == ["Finishing", "Charging"]
    assert [p.status for p in events.statuses_until("CP-1", 1, at(10), 5)] == ["Charging", "Available"]
    assert events.statuses_until("CP-1", 2, None, 5) == []
    assert [f.episode for f in events.episodes_below("CP-1", first.fault_id, None, 5)] == [2, 1]
    assert [f.episode for f in events.episodes_below("CP-1", first.fault_id, 2, 5)] == [1]
    assert [c.action for c in events.commands("CP-1", 10)] == ["Reset"]


def test_dynamodb_energy_sources_filter_the_window_and_read_sites(tables: None) -> None:
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
    from chargenet.adapters.console_reads_dynamodb import DynamoEnergySources
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    store = DynamoCdrStore()
    for record in (cdr("a", _at(10), "1.00"), cdr("b", _at(10, day=2), "2.00"), cdr("c", _at(10), "-1.00")):
        store.create(record)
    registry = DynamoChargerRegistry()
    registry.register("CP-1", "S-1", NOW)
    sources = DynamoEnergySources()

    page = sources.cdrs_ended_between(_at(0, day=20), _at(0, day=27), 10, None)
    assert sorted(r.cdr_id for r in page.items) == ["a", "c"] and page.next_key is None
    first = sources.cdrs_ended_between(_at(0, day=20), _at(0, day=27), 1, None)
    assert first.next_key is not None
    assert sources.sites_of({"CP-1", "CP-9"}) == {"CP-1": "S-1"}


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 50])
def test_dynamodb_chargers_come_with_all_their_connectors_whatever_the_page_size(
    tables: None, limit: int
) -> None:
    from chargenet.adapters.audit_dynamodb import DynamoOperatorViews
    from chargenet.adapters.dynamodb import DynamoChargerRegistry
    from chargenet.domain.models import ConnectorStatus

    registry = DynamoChargerRegistry()
    expected: dict[str, list[int]] = {}
    for number, connectors in enumerate([3, 0, 2, 1, 4]):
        charger_id = f"CP-{number}"
        registry.register(charger_id, "S-A" if number % 2 else "S-B", NOW)
        for connector_id in range(1, connectors + 1):
            registry.record_connector_status(
                ConnectorStatus(
                    charger_id=charger_id,
                    connector_id=connector_id,
                    status="Available",
                    error_code="NoError",
                    status_at=NOW,
                    received_at=NOW,
                )
            )
        expected[charger_id] = list(range(1, connectors + 1))
    registry.set_site_time_zone("S-A", "Europe/Stockholm")  # a site item: neither kind is listed
    # A corrupt record (as tests/integration/test_registry_dynamodb.py leaves one) is skipped, not fatal.
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName="Chargers",
        Item={"charger_id": {"S": "CP-corrupt"}, "sk": {"S": "charger"}, "registered_at": {"S": "garbage"}},
    )

    def read_all(site: str | None) -> dict[str, list[int]]:
        views, seen, start = DynamoOperatorViews(), {}, None
        while True:
            page = views.chargers_with_connectors(site, limit, start)
            for charger, connectors in page.items:
                assert charger.charger_id not in seen, "each charger once"
                seen[charger.charger_id] = [c.connector_id for c in connectors]
            if page.next_key is None:
                return seen
            start = page.next_key

    assert read_all(None) == expected
    assert read_all("S-A") == {k: v for k, v in expected.items() if k in ("CP-1", "CP-3")}
