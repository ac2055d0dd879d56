"""Where a connector status's history entry is written: with its session event (one request) when
the status is only appended to its session, else on its own; every status exactly once a frame."""

from tests.ingest_network import Network
from tests.unit.test_ingest_lean import status


def history_writes(net: Network) -> tuple[list[str], list[str]]:
    """(written on their own, written with a session event): the statuses' names."""
    alone = [s.status for s in net.registry.status_history]
    with_event = [s.status for s in net.sessions.status_history]
    return alone, with_event


def test_a_status_of_a_running_or_stopped_session_rides_with_its_event_the_others_go_alone():
    net = Network()
    status(net, "Available", -5)  # no session on the connector
    tx = net.start(meter=1000)["transactionId"]
    status(net, "Charging", 1)  # the running session's: appended, unread
    net.stop(tx, 1500, 5)
    status(net, "Finishing", 6)  # the stopped session's: appended, read
    status(net, "Available", 8)  # frees it: folded, its history first and alone
    assert history_writes(net) == (["Available", "Available"], ["Charging", "Finishing"])
    assert net.sessions.get(str(tx)).state == "completed"


def test_a_copy_of_a_status_writes_its_history_entry_again_the_same_way():
    net = Network()
    net.start(meter=1000)
    status(net, "Charging", 1)
    status(net, "Charging", 1)  # a redelivery: same keys, nothing new stored
    alone, with_event = history_writes(net)
    assert (alone, with_event) == ([], ["Charging", "Charging"])
    assert len({s.status_at for s in net.sessions.status_history}) == 1


def test_a_late_status_of_the_session_rides_with_its_event_a_charger_wide_one_goes_alone():
    net = Network()
    net.start(meter=1000)
    status(net, "Charging", 3)
    status(net, "SuspendedEV", 2)  # older than the stored status: the session is read, then appended
    net.call("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"})
    assert history_writes(net) == (["Available"], ["Charging", "SuspendedEV"])
