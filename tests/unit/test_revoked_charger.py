"""Revocation is absolute at the ingest: whatever path a revoked charger's frame took (its own link
or a gateway), every CALL is refused SecurityError, nothing is applied and no certificate signed."""

import base64
import json
from datetime import timedelta

from chargenet.services.ingest import IngestEvent, Outcome
from tests.ingest_network import T0, Network
from tests.unit.test_certificate_rotation import csr, provisioned


def revoke(net: Network, charger_id: str = "CP-1") -> None:
    charger = net.registry.get(charger_id)
    net.registry.chargers[charger_id] = charger.model_copy(
        update={"revoked_at": T0 - timedelta(minutes=1), "revocation_reason": "key stolen"}
    )


def handle(net: Network, frame: list) -> Outcome:
    return net.ingest.handle(
        IngestEvent(
            charger_id="CP-1",
            client_id="CP-1",
            principal=net.principals.get("CP-1"),
            payload=base64.b64encode(json.dumps(frame).encode()).decode(),
            received_at=int(T0.timestamp() * 1000),
        )
    )


def last_frame(net: Network) -> list:
    return json.loads(net.channel.sent[-1][1])


def test_a_revoked_chargers_calls_are_refused_and_sign_nothing():
    net = Network()
    current = provisioned(net)
    revoke(net)
    assert handle(net, [2, "s1", "SignCertificate", {"csr": csr()}]) is Outcome.REVOKED
    assert last_frame(net)[:3] == [4, "s1", "SecurityError"]
    assert handle(net, [2, "h1", "Heartbeat", {}]) is Outcome.REVOKED
    assert last_frame(net)[:3] == [4, "h1", "SecurityError"]
    assert net.certificates.certificates_of("CP-1") == [current]
    assert net.pending.of_charger("CP-1") == []
    assert net.registry.get("CP-1").last_seen_at is None


def test_an_answer_stored_before_the_revocation_is_not_replayed():
    net = Network()
    provisioned(net)
    boot = [2, "b1", "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "AC22"}]
    handle(net, boot)
    assert last_frame(net)[0] == 3
    revoke(net)
    assert handle(net, boot) is Outcome.REVOKED
    assert last_frame(net)[:3] == [4, "b1", "SecurityError"]


def test_a_revoked_chargers_answer_to_a_pending_call_is_dropped_unrecorded():
    net = Network()
    net.pending.add("CP-1", "r1", "Reset", {"type": "Soft"}, T0)
    revoke(net)
    sent = len(net.channel.sent)
    assert handle(net, [3, "r1", {"status": "Accepted"}]) is Outcome.REVOKED
    assert len(net.channel.sent) == sent  # a CALLRESULT cannot be refused in OCPP: no answer at all
    assert net.pending.get("CP-1", "r1").outcome is None
