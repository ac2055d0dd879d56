from datetime import timedelta

import pytest

from chargenet.ports.errors import StoreUnavailable
from tests.ingest_network import T0, Network, ts


@pytest.mark.parametrize(
    ("tag", "status"), [("TAG-OK", "Accepted"), ("TAG-BLOCKED", "Blocked"), ("NOBODY", "Invalid")]
)
def test_authorize(tag, status):
    assert Network().call("Authorize", {"idTag": tag})[2] == {"idTagInfo": {"status": status}}


def test_start_returns_a_new_transaction_id_and_opens_a_session_with_the_tariff_snapshot():
    net = Network()
    first, second = net.start(connector=1), net.start(connector=2, tag="TAG-FLEET")
    assert first["idTagInfo"] == {"status": "Accepted"} and first["transactionId"] != second["transactionId"]
    session = net.sessions.get(str(first["transactionId"]))
    assert (session.charger_id, session.connector_id, session.tariff_id, session.state) == (
        "CP-1",
        1,
        "T1",
        "active",
    )
    assert session.masked_tag == "TAG-**"


def test_repeated_start_returns_the_same_id_and_opens_nothing_new():
    net = Network()
    assert net.start() == net.start()
    assert len(net.sessions.records) == 1


def test_a_start_that_failed_before_its_one_write_left_nothing_and_its_retry_is_the_first():
    net = Network()
    written = net.sessions.start

    def unavailable(start):
        net.sessions.start = written
        raise StoreUnavailable("throttled")

    net.sessions.start = unavailable
    with pytest.raises(StoreUnavailable):
        net.start()
    assert net.sessions.records == {} and not net.tags.active.get("TAG-OK")  # its id is lost, nothing else
    retried = net.start()  # Lambda's retry: a new id, and the tag is not held by the lost one
    assert retried["idTagInfo"] == {"status": "Accepted"}
    assert list(net.sessions.records) == [str(retried["transactionId"])]
    assert net.tags.active["TAG-OK"] == {str(retried["transactionId"])}


def test_second_concurrent_session_for_one_tag_is_refused_unless_its_plan_allows():
    net = Network()
    net.start(connector=1)
    refused = net.start(connector=2, minutes=1)
    assert refused["idTagInfo"]["status"] == "ConcurrentTx"
    fleet = Network()
    fleet.start(tag="TAG-FLEET", connector=1)
    assert fleet.start(tag="TAG-FLEET", connector=2, minutes=1)["idTagInfo"]["status"] == "Accepted"


def test_tag_is_free_again_after_stop():
    net = Network()
    tx = net.start()["transactionId"]
    net.stop(tx, 2000, 10)
    assert net.start(connector=2, minutes=20)["idTagInfo"]["status"] == "Accepted"


def test_metering_stop_and_unplug_complete_the_session():
    net = Network()
    tx = net.start(meter=1000)["transactionId"]
    for minute, wh in ((1, 1200), (2, 1400), (3, 1600)):
        net.meter(tx, wh, minute)
    assert net.sessions.get(str(tx)).energy_wh == 600
    net.stop(tx, 1700, 4)
    assert net.sessions.get(str(tx)).state == "stopped"
    net.status("Available", 10)
    session = net.sessions.get(str(tx))
    assert (session.state, session.energy_wh) == ("completed", 700)
    assert net.registry.last_register("CP-1", 1) == 1700


def test_the_next_start_on_a_connector_completes_the_stopped_session_before_it():
    # The chaos run's lost session: the Available's invocation crashed on every attempt and went to
    # the dead-letter queue, so only the next driver's StartTransaction tells the car had left.
    net = Network()
    first = net.start(meter=1000)["transactionId"]
    net.meter(first, 1500, 2)
    net.stop(first, 1700, 4)
    elsewhere = net.start(tag="TAG-FLEET", connector=2, meter=0, minutes=5)["transactionId"]
    assert net.sessions.get(str(first)).state == "stopped"  # another connector frees nothing
    following = net.start(meter=1700, minutes=20)["transactionId"]
    session = net.sessions.get(str(first))
    assert (session.state, session.energy_wh, session.freed_at) == (
        "completed",
        700,
        T0 + timedelta(minutes=20),
    )
    assert net.sessions.get(str(following)).state == "active"
    assert net.sessions.get(str(elsewhere)).state == "active"


def test_a_late_available_or_a_repeated_start_after_that_changes_nothing():
    net = Network()
    first = net.start(meter=1000)["transactionId"]
    net.stop(first, 1700, 4)
    net.start(meter=1700, minutes=20)
    completed = dict(net.sessions.event_log[str(first)])
    net.status("Available", 10)  # redelivered after the next start: the session is billed once
    net.start(meter=1700, minutes=20)
    assert net.sessions.event_log[str(first)] == completed
    assert net.sessions.get(str(first)).freed_at == T0 + timedelta(minutes=20)


def test_a_session_whose_stop_comes_after_the_next_start_completes_with_it():
    net = Network()
    first = net.start(meter=1000)["transactionId"]
    net.start(meter=1700, minutes=20)
    assert net.sessions.get(str(first)).state == "active"
    net.stop(first, 1700, 4)  # queued offline, delivered late
    assert net.sessions.get(str(first)).state == "completed"


def test_a_session_its_available_completed_gets_nothing_from_the_next_start():
    net = Network()
    first = net.start(meter=1000)["transactionId"]
    net.stop(first, 1700, 4)
    net.status("Available", 10)
    completed = dict(net.sessions.event_log[str(first)])
    net.start(meter=1700, minutes=20)
    assert net.sessions.event_log[str(first)] == completed
    assert net.sessions.get(str(first)).freed_at == T0 + timedelta(minutes=10)


def test_an_available_redelivered_after_the_next_start_of_a_session_still_active_goes_to_it():
    net = Network()
    first = net.start(meter=1000)["transactionId"]
    following = net.start(meter=1700, minutes=20)["transactionId"]
    net.status("Available", 10)  # before the first session's stop arrived: it cannot complete it
    net.stop(first, 1700, 4)
    assert net.sessions.get(str(first)).freed_at == T0 + timedelta(minutes=10)
    assert net.sessions.get(str(following)).state == "active"


def test_a_late_status_from_before_any_unfinished_session_changes_nothing():
    net = Network()
    first = net.start(meter=1000)["transactionId"]
    net.stop(first, 1700, 4)
    net.status("Available", 10)
    events_before = dict(net.sessions.event_log[str(first)])
    following = net.start(meter=1700, minutes=20)["transactionId"]
    net.status("Preparing", 15)
    assert net.sessions.event_log[str(first)] == events_before
    assert net.sessions.get(str(following)).state == "active"


def test_meter_values_without_transaction_id_go_to_the_connectors_session():
    net = Network()
    tx = net.start(meter=1000)["transactionId"]
    net.call(
        "MeterValues",
        {"connectorId": 1, "meterValue": [{"timestamp": ts(1), "sampledValue": [{"value": "1500"}]}]},
    )
    assert net.sessions.get(str(tx)).energy_wh == 500


def test_stop_for_unknown_transaction_changes_nothing_and_is_kept_for_review():
    net = Network()
    tx = net.start()["transactionId"]
    assert net.stop(tx + 100, 5000, 5) == {}
    assert net.sessions.get(str(tx)).state == "active"
    assert net.sessions.orphans[0][:2] == ("CP-1", tx + 100)


def test_stop_for_another_chargers_transaction_is_refused():
    net = Network()
    tx = net.start(charger_id="CP-1")["transactionId"]
    net.stop(tx, 9000, 5, charger_id="CP-2")
    assert net.sessions.get(str(tx)).state == "active"
    assert net.sessions.orphans[0][:2] == ("CP-2", tx)


def test_meter_reset_after_offline_goes_to_review():
    net = Network()
    tx = net.start(meter=910_000)["transactionId"]
    net.stop(tx, 911_000, 30)
    net.status("Available", 31)
    reset = net.start(meter=0, minutes=60)["transactionId"]
    net.meter(reset, 900, 61)
    net.stop(reset, 1000, 62)
    net.status("Available", 63)
    session = net.sessions.get(str(reset))
    assert session.state == "needs_review" and "meter reset" in session.review_reasons[0]


def test_a_reading_too_large_to_convert_is_refused_and_changes_nothing():
    net = Network()
    tx = net.start(meter=0)["transactionId"]
    before = dict(net.sessions.event_log[str(tx)])
    huge = {"value": "1e999999", "measurand": "Power.Active.Import", "unit": "kW"}  # x1000 overflows
    reply = net.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [{"timestamp": ts(10), "sampledValue": [huge]}],
        },
    )
    assert reply[:3] == [4, reply[1], "PropertyConstraintViolation"] and "1e999999" not in reply[3]
    assert net.sessions.event_log[str(tx)] == before
