"""An in-memory network behind the real ingest service: OCPP calls in, replies and stored state out."""

import base64
import json
from datetime import UTC, datetime, timedelta

from chargenet.domain.models import TagAuthorization, TagStatus
from chargenet.services.fault_tracking import FaultTracker
from chargenet.services.ingest import IngestEvent, IngestSettings, OcppIngest
from tests.fakes import (
    DictDeduplicator,
    FakeCertificateAuthority,
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
    def __init__(self, tags=None, max_frame_bytes=65536, now=T0):
        self.registry = InMemoryRegistry()
        for charger_id in ("CP-1", "CP-2"):
            self.registry.add(charger_id, T0 - timedelta(days=1), site_id="S1")
        self.tags = InMemoryTags(
            tags
            or {
                "TAG-OK": TagAuthorization(status=TagStatus.ACCEPTED),
                "TAG-FLEET": TagAuthorization(status=TagStatus.ACCEPTED, max_concurrent_sessions=2),
                "TAG-BLOCKED": TagAuthorization(status=TagStatus.BLOCKED),
            }
        )
        self.sessions = InMemorySessionStore(self.tags, self.registry)
        self.channel = RecordingChannel()
        self.pending = InMemoryPendingCalls()
        self.dedupe = DictDeduplicator()
        self.now = now
        self.certificates = FakeCertificateAuthority(clock=lambda: self.now)
        # The certificate each charger's connection was made with (the rule's principal()).
        self.principals: dict[str, str | None] = {}
        self.faults = FaultTracker(InMemoryFaultStore(), RecordingPublisher(), lambda: self.now)
        self.ingest = OcppIngest(
            registry=self.registry,
            sessions=self.sessions,
            tags=self.tags,
            tariffs=InMemoryTariffs(("T1", '{"id": "T1"}')),
            faults=self.faults,
            pending=self.pending,
            channel=self.channel,
            dedupe=self.dedupe,
            settings=IngestSettings(heartbeat_interval_s=300, max_frame_bytes=max_frame_bytes),
            clock=lambda: self.now,
            certificates=self.certificates,
        )
        self._n = 0

    def call(self, action, payload, charger_id="CP-1", received_minutes=0):
        self._n += 1
        frame = json.dumps([2, f"m{self._n}", action, payload]).encode()
        self.ingest.handle(
            IngestEvent(
                charger_id=charger_id,
                client_id=charger_id,
                principal=self.principals.get(charger_id),
                payload=base64.b64encode(frame).decode(),
                received_at=int((T0 + timedelta(minutes=received_minutes)).timestamp() * 1000),
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
