"""Any order and duplication of a 2.0.1 transaction's events folds to the same session and bill.

The station numbers its events and sends them late, twice and out of order (offline queues,
at-least-once delivery, the Started lost until a retry): whatever reaches the handlers in
whatever order, the session, its driver, its tariff and its CDR are the in-order ones.
"""

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ocpp201_station import STATION, TARIFF_JSON, Station

Delivery = Callable[[Station], Any]


def _transaction(registers: list[int], suspended_at: int, authorized_late: bool) -> list[Delivery]:
    """Started (the driver's token in it, or authorized in the next event), Updated per register
    (the car suspends at one), Ended with the car still in, and the connector's Available after
    it: each a delivery to make, in any order. The Started is first, the Available last."""
    token = None if authorized_late else "TAG-MEMBER"
    deliveries: list[Delivery] = [
        lambda s: s.event(
            "Started", 0, 0, register_wh=1000, token=token, trigger="Authorized", state="EVConnected"
        )
    ]
    if authorized_late:
        deliveries.append(lambda s: s.event("Updated", 1, 1, token="TAG-MEMBER", trigger="Authorized"))
    minute, register = 0, 1000
    for step in registers:
        seq_no, minute, register = len(deliveries), minute + 5, register + step
        state = "SuspendedEV" if seq_no >= suspended_at else "Charging"
        deliveries.append(
            lambda s, n=seq_no, m=minute, r=register, c=state: s.event(
                "Updated", n, m, register_wh=r, state=c, offline=n % 2 == 0
            )
        )
    ended_seq, end = len(deliveries), minute + 5
    deliveries.append(
        lambda s: s.event(
            "Ended", ended_seq, end, register_wh=register, trigger="StopAuthorized", state="SuspendedEV"
        )
    )
    deliveries.append(lambda s: s.status("Available", end + 15))
    return deliveries


def _outcome(station: Station, billed: bool) -> tuple[object, ...]:
    session = station.session()
    facts = station.facts()
    return (
        session.state,
        session.energy_wh,
        session.stopped_at,
        session.freed_at,
        session.id_tag,
        session.tariff_id,
        facts.charging_seconds,
        facts.parking_seconds,
        station.cdr_total_incl_vat() if billed else None,
        frozenset(station.tags.active.get("TAG-MEMBER", set())),
        station.registry.last_register(STATION, 1),  # what the next session's start is checked against
    )


def _deliver(deliveries: list[Delivery], order: list[int], tariff: bool) -> Station:
    station = Station(tariff=("T201", TARIFF_JSON) if tariff else None)
    if not tariff:
        station.tariffs.members.clear()
    for index in order:
        deliveries[index](station)
    return station


def _status_after_the_started(order: list[int], status: int) -> list[int]:
    """A status joins the connector's session: one reported before the station's Started reaches
    us has none to join (as with 1.6's StartTransaction), so it comes after the Started."""
    if order.index(status) > order.index(0):
        return order
    without = [index for index in order if index != status]
    return [*without[: without.index(0) + 1], status, *without[without.index(0) + 1 :]]


@settings(max_examples=60, deadline=None)
@given(
    registers=st.lists(st.integers(0, 3000), min_size=1, max_size=5),
    suspended_at=st.integers(1, 6),
    authorized_late=st.booleans(),
    tariff=st.booleans(),
    data=st.data(),
)
def test_any_order_and_duplication_gives_the_same_session_and_the_same_bill(
    registers, suspended_at, authorized_late, tariff, data
):
    deliveries = _transaction(registers, suspended_at, authorized_late)
    in_order = _deliver(deliveries, list(range(len(deliveries))), tariff)
    order = data.draw(st.permutations(range(len(deliveries))), label="order")
    order = _status_after_the_started(list(order), status=len(deliveries) - 1)
    copies = data.draw(st.lists(st.sampled_from(range(len(deliveries))), max_size=4), label="copies")
    for copy in copies:  # a copy is delivered again after its first delivery
        first = order.index(copy)
        order.insert(data.draw(st.integers(first + 1, len(order)), label="copy at"), copy)
    expected = _outcome(in_order, billed=tariff)
    assert expected[:2] == ("completed", sum(registers))
    assert _outcome(_deliver(deliveries, order, tariff), billed=tariff) == expected
