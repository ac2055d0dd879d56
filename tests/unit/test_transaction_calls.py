import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from chargenet.domain.models import TagAuthorization, TagStatus
from chargenet.services.fault_tracking import FaultTracker
from chargenet.services.ingest import IngestEvent, IngestSettings, OcppIngest
from tests.fakes import (
    DictDeduplicator,
    InMemoryFaultStore,
    InMemoryPendingCalls,
    InMemoryRegistry,
    InMemorySessionStore,
    InMemoryTags,
    InMemoryTariffs,
    RecordingChannel,
    RecordingPublisher,
)

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


class Network:
    def __init__(self, tags=None):
        self.registry = InMemoryRegistry()
        for charger_id in ("CP-1", "CP-2"):
            self.registry.add(charger_id, T0 - timedelta(days=1))
        self.sessions = InMemorySessionStore()
        self.tags = InMemoryTags(
            tags
            or {
                "TAG-OK": TagAuthorization(status=TagStatus.ACCEPTED),
                "TAG-FLEET": TagAuthorization(status=TagStatus.ACCEPTED, max_concurrent_sessions=2),
                "TAG-BLOCKED": TagAuthorization(status=TagStatus.BLOCKED),
            }
        )
        self.channel = RecordingChannel()
        self.ingest = OcppIngest(
            registry=self.registry,
            sessions=self.sessions,
            tags=self.tags,
            tariffs=InMemoryTariffs(("T1", '{"id": "T1"}')),
            faults=FaultTracker(InMemoryFaultStore(), RecordingPublisher(), lambda: T0),
            pending=InMemoryPendingCalls(),
            channel=self.channel,
            dedupe=DictDeduplicator(),
            settings=IngestSettings(heartbeat_interval_s=300, max_frame_bytes=65536),
            clock=lambda: T0,
        )
        self._n = 0

    def call(self, action, payload, charger_id="CP-1"):
        self._n += 1
        frame = json.dumps([2, f"m{self._n}", action, payload]).encode()
        self.ingest.handle(
            IngestEvent(
                charger_id=charger_id,
                client_id=charger_id,
                payload=base64.b64encode(frame).decode(),
                received_at=int(T0.timestamp() * 1000),
            )
        )
        return json.loads(self.channel.sent[-1][1])

    def start(self, tag="TAG-OK", connector=1, meter=1000, minutes=0, charger_id="CP-1"):
        return self.call(
            "StartTransaction",
            {"connectorId": connector, "idTag": tag, "meterStart": meter, "timestamp": ts(minutes)},
            charger_id,
        )[2]

    def meter(self, tx, wh, minutes, connector=1):
        return self.call(
            "MeterValues",
            {
                "connectorId": connector,
                "transactionId": tx,
                "meterValue": [{"timestamp": ts(minutes), "sampledValue": [{"value": str(wh)}]}],
            },
        )

    def stop(self, tx, wh, minutes, charger_id="CP-1"):
        return self.call(
            "StopTransaction",
            {"transactionId": tx, "meterStop": wh, "timestamp": ts(minutes), "idTag": "TAG-OK"},
            charger_id,
        )[2]

    def status(self, name, minutes, connector=1):
        return self.call(
            "StatusNotification",
            {"connectorId": connector, "errorCode": "NoError", "status": name, "timestamp": ts(minutes)},
        )


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
