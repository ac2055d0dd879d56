"""The hot path of MeterValues: running aggregates instead of a fold per frame, with the fold's result.

Pure rules first (domain.running_meter), then the ingest path over the in-memory stores: the
fallbacks to the full fold, replay-safe routing, and the work per reading staying constant.
"""

import base64
import dataclasses
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargenet.domain.meter_values import MeterReading
from chargenet.domain.running_meter import FoldNeeded, RunningMeter, fold_needed, latest_register
from chargenet.domain.sessions import fold
from chargenet.services.ingest import IngestEvent
from tests.ingest_network import T0, Network, ts

RATED_W = Decimal(11000)
BEFORE = RunningMeter(register_at=T0, register_wh=Decimal(1000), rated_power_w=RATED_W)


def reading(minutes: float, wh: int | str | None, power_w: int | None = None) -> MeterReading:
    return MeterReading(
        at=T0 + timedelta(minutes=minutes),
        energy_wh=Decimal(wh) if wh is not None else None,
        power_w=Decimal(power_w) if power_w is not None else None,
    )


# ----------------------------------------------------------------------------- the pure rules
def test_a_register_moving_on_within_the_rating_needs_no_fold():
    # 11 kW for a minute is 183 Wh: 150 Wh is within it.
    assert fold_needed(BEFORE, [reading(1, 1150, power_w=9000), reading(2, 1300)]) is None


@pytest.mark.parametrize(
    ("readings", "why"),
    [
        ([reading(1, 999)], FoldNeeded.REGISTER_BACKWARDS),
        ([reading(1, 1100), reading(2, 1050)], FoldNeeded.REGISTER_BACKWARDS),
        ([reading(1, 1400)], FoldNeeded.IMPOSSIBLE_JUMP),  # 400 Wh in a minute is 24 kW
        ([reading(1, 1100, power_w=12500)], FoldNeeded.POWER_ABOVE_RATING),
        ([reading(1, None, power_w=12500)], FoldNeeded.POWER_ABOVE_RATING),
        ([reading(1, 1000, power_w=7000)], FoldNeeded.FLAT_WHILE_DRAWING),
        ([reading(1, 1100), reading(1, 1120)], FoldNeeded.SAME_INSTANT),
    ],
)
def test_readings_the_fold_would_find_more_in_need_it(readings, why):
    assert fold_needed(BEFORE, readings) is why


def test_a_flat_register_without_power_drawn_is_a_pause_not_a_stuck_meter():
    assert fold_needed(BEFORE, [reading(1, 1000, power_w=0), reading(2, 1000)]) is None


def test_without_a_rating_only_the_register_direction_counts():
    unrated = dataclasses.replace(BEFORE, rated_power_w=None)
    assert fold_needed(unrated, [reading(1, 90_000, power_w=10**6)]) is None
    assert fold_needed(unrated, [reading(1, 900)]) is FoldNeeded.REGISTER_BACKWARDS


def test_latest_register_is_the_last_by_the_chargers_clock_among_energy_readings():
    readings = [reading(3, None, power_w=100), reading(2, 1200), reading(1, 1100)]
    assert latest_register(readings) == (T0 + timedelta(minutes=2), Decimal(1200))
    assert latest_register([reading(1, None)]) is None


# ------------------------------------------------------------------------ through the ingest path
class Counting:
    """A store whose calls are counted by method name."""

    def __init__(self, store: object, calls: Counter[str]) -> None:
        self._store, self._calls = store, calls

    def __getattr__(self, name: str):
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def counted(*args, **kwargs):
            self._calls[f"{type(self._store).__name__}.{name}"] += 1
            return attribute(*args, **kwargs)

        return counted


def counting(net: Network) -> Counter[str]:
    calls: Counter[str] = Counter()
    faults = dataclasses.replace(net.faults, store=Counting(net.faults.store, calls))
    stores = {
        name: Counting(getattr(net.ingest, name), calls)
        for name in ("registry", "sessions", "tags", "tariffs", "pending", "dedupe")
    }
    net.ingest = dataclasses.replace(net.ingest, faults=faults, **stores)
    return calls


def rated_network() -> Network:
    net = Network()
    charger = net.registry.chargers["CP-1"]
    net.registry.chargers["CP-1"] = charger.model_copy(update={"rated_power_w": int(RATED_W)})
    return net


def send_twice(net: Network, action: str, payload: dict) -> list:
    """The same frame delivered twice (an MQTT redelivery): both replies."""
    frame = base64.b64encode(json.dumps([2, "dup-1", action, payload]).encode()).decode()
    at = int(T0.timestamp() * 1000)
    for _ in range(2):
        net.ingest.handle(IngestEvent(charger_id="CP-1", client_id="CP-1", payload=frame, received_at=at))
    return [json.loads(sent) for _, sent in net.channel.sent[-2:]]


def stored_as_folded(net: Network, tx: int) -> None:
    session = net.sessions.get(str(tx))
    facts = fold(net.sessions.events(str(tx)), rated_power_w=RATED_W)
    assert session.energy_wh == int(facts.energy_wh)
    assert session.last_reading_at == facts.last_reading_at
    assert session.review_reasons == facts.review_reasons
    assert session.state == facts.state.value
    assert session.event_count == len(net.sessions.events(str(tx)))


def test_in_order_readings_take_the_hot_path_and_store_what_the_fold_would():
    net = rated_network()
    tx = net.start(meter=1000)["transactionId"]
    calls = counting(net)
    for minute in range(1, 6):
        net.meter(tx, 1000 + 100 * minute, minute)
    assert calls["InMemorySessionStore.events"] == 0
    assert calls["InMemorySessionStore.advance_meter"] == 5
    stored_as_folded(net, tx)
    assert net.sessions.get(str(tx)).energy_wh == 500


@pytest.mark.parametrize(
    ("late", "review"),
    [
        ((2.5, 1250), []),  # out of order: between readings already counted
        ((6, 1200), ["energy register went back"]),  # the register went back
        ((6, 2500), ["exceeds the rated power"]),  # faster than the charger can deliver
    ],
)
def test_readings_the_hot_path_cannot_judge_are_folded(late, review):
    net = rated_network()
    tx = net.start(meter=1000)["transactionId"]
    for minute in range(1, 6):
        net.meter(tx, 1000 + 100 * minute, minute)
    calls = counting(net)
    net.meter(tx, late[1], late[0])
    assert calls["InMemorySessionStore.events"] >= 1
    stored_as_folded(net, tx)
    reasons = net.sessions.get(str(tx)).review_reasons
    assert [any(text in reason for reason in reasons) for text in review] == [True] * len(review)
    assert bool(reasons) == bool(review)


def test_a_reading_delivered_after_the_stop_is_folded_and_the_stop_register_stands():
    net = rated_network()
    tx = net.start(meter=1000)["transactionId"]
    net.meter(tx, 1100, 1)
    net.stop(tx, 1300, 3)
    net.meter(tx, 1200, 2)  # queued offline, delivered after the stop
    session = net.sessions.get(str(tx))
    assert (session.state, session.energy_wh) == ("stopped", 300)
    stored_as_folded(net, tx)


def test_a_duplicated_meter_values_changes_nothing_and_answers_the_same():
    net = rated_network()
    tx = net.start(meter=1000)["transactionId"]
    payload = {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [{"timestamp": ts(1), "sampledValue": [{"value": "1100"}]}],
    }
    first, second = send_twice(net, "MeterValues", payload)
    assert first == second == [3, "dup-1", {}]
    assert net.dedupe.computed == 0  # replay safe: no reply cache
    stored_as_folded(net, tx)
    assert net.sessions.get(str(tx)).event_count == 2  # the start and the one reading


def test_a_duplicated_start_after_the_stop_answers_the_same_and_claims_the_tag_no_more():
    net = rated_network()
    payload = {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 1000, "timestamp": ts(0)}
    first, second = send_twice(net, "StartTransaction", payload)
    assert first == second
    tx = first[2]["transactionId"]
    net.stop(tx, 1500, 10)
    records = dict(net.sessions.records)
    _, late_copy = send_twice(net, "StartTransaction", payload)
    assert late_copy[2] == first[2]
    assert net.tags.active.get("TAG-OK", set()) == set()
    assert net.sessions.records == records


def test_a_duplicated_stop_answers_the_same_and_changes_nothing():
    net = rated_network()
    tx = net.start(meter=1000)["transactionId"]
    payload = {"transactionId": tx, "meterStop": 1500, "timestamp": ts(10), "idTag": "TAG-OK"}
    first, second = send_twice(net, "StopTransaction", payload)
    assert first == second
    assert net.sessions.get(str(tx)).energy_wh == 500
    assert len(net.sessions.events(str(tx))) == 2


def test_the_work_per_reading_is_the_same_at_the_first_and_the_six_hundredth():
    net = rated_network()
    tx = net.start(meter=0)["transactionId"]
    calls, per_reading = counting(net), []
    for minute in range(1, 601):
        before = calls.copy()
        net.meter(tx, 100 * minute, minute)
        if minute in (1, 600):
            per_reading.append(calls - before)
    assert per_reading[0] == per_reading[1]
    assert "InMemorySessionStore.events" not in per_reading[1]


@st.composite
def readings_of_a_session(draw):
    """Minutes and registers of a session's readings: mostly climbing, sometimes not."""
    count = draw(st.integers(1, 12))
    registers, wh = [], 1000
    for _ in range(count):
        wh += draw(st.sampled_from([0, 50, 120, 150, 400, -30]))
        registers.append(wh)
    return list(enumerate(registers, start=1))


@settings(max_examples=40, deadline=None)
@given(readings_of_a_session(), st.randoms(use_true_random=False), st.booleans())
def test_aggregates_equal_the_fold_in_order_and_shuffled(readings, rng: random.Random, shuffled):
    net = rated_network()
    tx = net.start(meter=1000)["transactionId"]
    if shuffled:
        rng.shuffle(readings)
    for minute, wh in readings:
        net.meter(tx, wh, minute)
    stored_as_folded(net, tx)


def test_fold_facts_carry_the_last_register_the_hot_path_goes_on_from():
    net = rated_network()
    tx = net.start(meter=1000)["transactionId"]
    net.meter(tx, 1100, 1)
    facts = fold(net.sessions.events(str(tx)))
    assert facts.last_register == (datetime(2026, 11, 26, 8, 1, tzinfo=UTC), Decimal(1100))
