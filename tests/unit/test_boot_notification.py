"""A BootNotification records what it reports and keeps what it leaves out."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from chargenet.services.ingest import IngestEvent, Outcome
from tests.ingest_network import Network

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def boot(message_id: str, at: datetime, **optional: str) -> IngestEvent:
    payload = {"chargePointVendor": "Acme", "chargePointModel": "AC22", **optional}
    frame = json.dumps([2, message_id, "BootNotification", payload]).encode()
    return IngestEvent(
        charger_id="CP-1",
        client_id="CP-1",
        payload=base64.b64encode(frame).decode(),
        received_at=int(at.timestamp() * 1000),
    )


def test_a_boot_without_serial_or_firmware_keeps_the_known_ones() -> None:
    net = Network(max_frame_bytes=4096, now=T0)
    first = boot("b1", T0, chargePointSerialNumber="SN-1", firmwareVersion="1.2.3")
    assert net.ingest.handle(first) is Outcome.ANSWERED
    assert net.ingest.handle(boot("b2", T0 + timedelta(minutes=1))) is Outcome.ANSWERED
    charger = net.registry.get("CP-1")
    assert (charger.serial_number, charger.firmware_version) == ("SN-1", "1.2.3")
    assert charger.last_boot_at == T0 + timedelta(minutes=1)


def test_a_boot_that_reports_new_values_replaces_them() -> None:
    net = Network(max_frame_bytes=4096, now=T0)
    net.ingest.handle(boot("b1", T0, chargePointSerialNumber="SN-1", firmwareVersion="1.2.3"))
    net.ingest.handle(
        boot("b2", T0 + timedelta(minutes=1), chargeBoxSerialNumber="BOX-9", firmwareVersion="2.0")
    )
    charger = net.registry.get("CP-1")
    assert (charger.serial_number, charger.firmware_version) == ("BOX-9", "2.0")
