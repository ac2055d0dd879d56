"""What a frame reads and writes on the normal path: the charger once, faults only when they can change.

Counts of store calls through the in-memory stores (tests/fakes.py); the DynamoDB calls and
units per frame are measured by bench/ingest_calls.py.
"""

from tests.ingest_network import Network, ts
from tests.unit.test_running_meter import counting


def status(net: Network, name: str, minutes: float, error: str = "NoError") -> None:
    net.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": error, "status": name, "timestamp": ts(minutes)},
    )


def test_clean_statuses_look_faults_up_only_while_one_may_be_open():
    net = Network()
    calls = counting(net)
    status(net, "Available", 0)  # nothing known about the connector yet: looked up, then known clean
    before = calls.copy()
    status(net, "Preparing", 1)
    assert "InMemoryFaultStore.of_charger" not in calls - before
    status(net, "Faulted", 2, error="GroundFailure")
    assert [f.code for f in net.faults.open_faults()] == ["GroundFailure"]
    status(net, "Available", 3)  # resolves it
    assert net.faults.open_faults() == []
    before = calls.copy()
    status(net, "Preparing", 4)
    assert "InMemoryFaultStore.of_charger" not in calls - before


def test_a_late_clean_status_leaves_the_connector_marked_while_a_newer_error_stands():
    net = Network()
    status(net, "Faulted", 5, error="GroundFailure")
    status(net, "Available", 3)  # older than the stored status: says nothing about faults now
    assert [f.code for f in net.faults.open_faults()] == ["GroundFailure"]
    status(net, "Available", 6)
    assert net.faults.open_faults() == []


def test_statuses_of_a_running_or_stopped_session_are_stored_without_a_fold_until_it_is_freed():
    net = Network()
    tx = net.start(meter=1000)["transactionId"]
    calls = counting(net)
    status(net, "Charging", 1)
    net.stop(tx, 1500, 5)
    before = calls.copy()
    status(net, "Finishing", 6)
    assert "InMemorySessionStore.events" not in calls - before
    assert net.sessions.get(str(tx)).state == "stopped"
    status(net, "Available", 8)
    session = net.sessions.get(str(tx))
    assert session.state == "completed"
    assert session.event_count == len(net.sessions.events(str(tx))) == 5


def test_a_new_session_is_opened_without_reading_its_log_back():
    net = Network()
    calls = counting(net)
    tx = net.start(meter=1000)["transactionId"]
    assert "InMemorySessionStore.events" not in calls
    assert "InMemorySessionStore.get" not in calls
    assert net.sessions.get(str(tx)).event_count == 1


def test_a_newer_busy_status_of_the_current_session_is_stored_without_reading_the_session():
    net = Network()
    tx = net.start(meter=1000, minutes=0)["transactionId"]
    calls = counting(net)
    status(net, "Charging", 1)
    status(net, "SuspendedEV", 2)
    assert "InMemorySessionStore.get" not in calls
    assert [e.status for e in net.sessions.events(str(tx)) if e.status] == ["Charging", "SuspendedEV"]


def test_statuses_the_shortcut_cannot_place_still_read_the_session():
    net = Network()
    net.start(meter=1000, minutes=10)
    calls = counting(net)
    status(net, "Charging", 11)
    before = calls.copy()
    status(net, "Preparing", 9)  # older than the stored status
    assert (calls - before)["InMemorySessionStore.get"] == 1
    before = calls.copy()
    status(net, "Available", 12)  # a free status may complete it
    assert (calls - before)["InMemorySessionStore.get"] == 1


def test_a_late_busy_status_from_before_the_current_session_is_not_stored_on_it():
    net = Network()
    first = net.start(meter=1000, minutes=0)["transactionId"]
    status(net, "Charging", 1)
    net.stop(first, 1500, 5)
    second = net.start(meter=1500, minutes=20)["transactionId"]
    calls = counting(net)
    status(net, "Finishing", 21)
    status(net, "SuspendedEV", 6)  # the charger's offline queue, after the next start: not the second's
    assert (calls["InMemorySessionStore.get"], calls["InMemorySessionStore.unfinished_on_connector"]) == (
        1,
        1,
    )
    assert [e.status for e in net.sessions.events(str(second)) if e.status] == ["Finishing"]
    assert [e.status for e in net.sessions.events(str(first)) if e.status] == ["Charging"]


def test_a_stop_answers_the_tags_status_from_its_release_and_releases_it_once():
    net = Network()
    tx = net.start(meter=1000)["transactionId"]
    calls = counting(net)
    assert net.stop(tx, 1500, 5) == {"idTagInfo": {"status": "Accepted"}}
    assert net.stop(tx, 1500, 5) == {"idTagInfo": {"status": "Accepted"}}  # a copy answers the same
    assert "InMemoryTags.authorize" not in calls
    assert net.tags.active["TAG-OK"] == set()
    assert net.start(meter=1500, minutes=10)["idTagInfo"] == {"status": "Accepted"}  # room again
