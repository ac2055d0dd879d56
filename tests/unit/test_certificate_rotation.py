"""Certificate rotation over the charger's own link: CSR rules and the ingest's SignCertificate /
CertificateSigned / CertificateInstalled handling, on the in-memory network."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from chargenet.domain.certificates import (
    MAX_CERTIFICATES_PER_WINDOW,
    CertificateStatus,
    ChargerCertificate,
    CsrRefused,
    check_csr,
    facts,
)
from chargenet.services.ingest import IngestEvent
from chargenet.services.ocpp.certificate_calls import certificate_signed_message_id
from tests.ingest_network import Network


def csr(
    common_names: tuple[str, ...] = ("CP-1",),
    key: object | None = None,
    alt_names: tuple[str, ...] = (),
) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chargenet")]
    attributes += [x509.NameAttribute(NameOID.COMMON_NAME, name) for name in common_names]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in alt_names]), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_a_p256_or_rsa_2048_csr_for_the_charger_itself_is_accepted():
    check_csr(csr(), "CP-1")
    check_csr(csr(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), "CP-1")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: csr(("CP-2",)), "common name"),
        (lambda: csr(()), "common name"),
        (lambda: csr(("CP-1", "CP-2")), "common name"),
        (lambda: csr(alt_names=("CP-2",)), "subjectAltName"),
        (lambda: csr(key=ec.generate_private_key(ec.SECP384R1())), "P-256"),
        (lambda: csr(key=rsa.generate_private_key(public_exponent=65537, key_size=1024)), "2048"),
        (lambda: "-----BEGIN CERTIFICATE REQUEST-----\nbm9wZQ==\n-----END CERTIFICATE REQUEST-----\n", "PEM"),
    ],
    ids=["other-charger", "no-cn", "two-cns", "alt-names", "p384", "rsa-1024", "garbage"],
)
def test_csrs_the_backend_must_not_sign(make, reason):
    with pytest.raises(CsrRefused, match=reason):
        check_csr(make(), "CP-1")


def test_a_csr_whose_signature_does_not_match_its_key_is_refused():
    good = x509.load_pem_x509_csr(csr().encode())
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # flip a bit of the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(CsrRefused, match="signed"):
        check_csr(tampered, "CP-1")


def provisioned(net: Network, charger_id: str = "CP-1") -> ChargerCertificate:
    """The charger's factory certificate, and its connection made with it."""
    current = net.certificates.issue(charger_id, csr((charger_id,)))
    net.principals[charger_id] = current.certificate_id
    return current


def frames_to(net: Network, charger_id: str = "CP-1") -> list[list]:
    return [json.loads(frame) for cid, frame in net.channel.sent if cid == charger_id]


def sign(net: Network, request: str, charger_id: str = "CP-1") -> list[list]:
    before = len(frames_to(net, charger_id))
    net.call("SignCertificate", {"csr": request}, charger_id)
    return frames_to(net, charger_id)[before:]


def confirm(net: Network, message_id: str, certificate_pem: str, charger_id: str = "CP-1") -> str:
    data = json.dumps({"serialNumber": facts(certificate_pem).serial_number})
    reply = net.call(
        "DataTransfer", {"vendorId": "chargenet", "messageId": message_id, "data": data}, charger_id
    )
    return reply[2]["status"]


def test_sign_certificate_is_answered_accepted_then_the_certificate_signed_call_follows():
    net = Network()
    provisioned(net)
    reply, signed = sign(net, csr())
    assert reply[0] == 3 and reply[2] == {"status": "Accepted"}
    assert signed[:3] == [2, certificate_signed_message_id("CP-1", reply[1]), "CertificateSigned"]
    _, issued = net.certificates.certificates_of("CP-1")
    assert signed[3] == {"certificateChain": issued.pem} and issued.status is CertificateStatus.ACTIVE
    # The CALL is a pending call: the charger's answer is matched to it like any command's.
    assert net.pending.action_of("CP-1", signed[1]) == "CertificateSigned"


def test_a_repeated_sign_certificate_issues_nothing_new_and_resends_the_certificate_until_answered():
    net = Network()
    provisioned(net)
    request = csr()
    net.call("SignCertificate", {"csr": request})
    message_id = frames_to(net)[0][1]
    frame = [2, message_id, "SignCertificate", {"csr": request}]
    net.ingest.handle(_event(net, frame))
    assert [f[0] for f in frames_to(net)] == [3, 2, 3, 2]
    assert len(net.certificates.certificates_of("CP-1")) == 2
    signed_id = frames_to(net)[1][1]
    net.ingest.handle(_event(net, [3, signed_id, {"status": "Accepted"}]))
    net.ingest.handle(_event(net, frame))
    assert [f[0] for f in frames_to(net)] == [3, 2, 3, 2, 3]


def _event(net: Network, frame: list) -> IngestEvent:
    return IngestEvent(
        charger_id="CP-1",
        client_id="CP-1",
        principal=net.principals.get("CP-1"),
        payload=base64.b64encode(json.dumps(frame).encode()).decode(),
        received_at=int(datetime(2026, 11, 26, 8, tzinfo=UTC).timestamp() * 1000),
    )


def test_a_csr_for_another_charger_is_rejected_recorded_as_a_security_fault_and_signs_nothing():
    net = Network()
    current = provisioned(net)
    (reply,) = sign(net, csr(("CP-2",)))
    assert reply[2] == {"status": "Rejected"}
    assert net.certificates.certificates_of("CP-1") == [current]
    assert net.certificates.certificates_of("CP-2") == []
    ((fault, _),) = net.faults.store.of_charger("CP-1")
    assert fault.code == "InvalidChargePointCertificate" and fault.charger_id == "CP-1"
    assert "BEGIN CERTIFICATE REQUEST" not in fault.evidence


def test_certificate_installed_retires_every_other_active_certificate_and_records_the_expiry():
    net = Network()
    old = provisioned(net)
    abandoned = net.certificates.issue("CP-1", csr())  # signed once, never installed
    sign(net, csr())
    new = net.certificates.certificates_of("CP-1")[-1]
    net.principals["CP-1"] = new.certificate_id  # reconnected with it
    assert confirm(net, "CertificateInstalled", new.pem) == "Accepted"
    assert net.certificates.status("CP-1", old.pem) is CertificateStatus.INACTIVE
    assert net.certificates.status("CP-1", abandoned.pem) is CertificateStatus.INACTIVE
    assert net.certificates.status("CP-1", new.pem) is CertificateStatus.ACTIVE
    assert net.registry.get("CP-1").certificate_not_after == facts(new.pem).not_after
    assert facts(new.pem).not_after - datetime.now(UTC) > timedelta(days=360)
    assert confirm(net, "CertificateInstalled", new.pem) == "Accepted"  # a repeat changes nothing
    assert net.certificates.status("CP-1", new.pem) is CertificateStatus.ACTIVE


def test_a_charger_cannot_confirm_another_chargers_or_a_retired_certificate():
    net = Network()
    provisioned(net, "CP-2")
    sign(net, csr(("CP-2",)), charger_id="CP-2")
    others = net.certificates.certificates_of("CP-2")[-1]
    mine = provisioned(net)
    assert confirm(net, "CertificateInstalled", others.pem) == "Rejected"
    assert net.certificates.status("CP-1", mine.pem) is CertificateStatus.ACTIVE
    assert net.registry.get("CP-1").certificate_not_after is None


def test_an_abandoned_certificate_is_retired_but_never_the_last_active_one():
    net = Network()
    current = provisioned(net)
    sign(net, csr())
    refused = net.certificates.certificates_of("CP-1")[-1]
    assert confirm(net, "CertificateAbandoned", refused.pem) == "Accepted"
    assert net.certificates.status("CP-1", refused.pem) is CertificateStatus.INACTIVE
    assert confirm(net, "CertificateAbandoned", current.pem) == "Rejected"
    assert net.certificates.status("CP-1", current.pem) is CertificateStatus.ACTIVE


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"vendorId": "acme", "messageId": "CertificateInstalled"}, "UnknownVendorId"),
        ({"vendorId": "chargenet", "messageId": "Reboot"}, "UnknownMessageId"),
        ({"vendorId": "chargenet", "messageId": "CertificateInstalled"}, "Rejected"),
        ({"vendorId": "chargenet", "messageId": "CertificateInstalled", "data": "not json"}, "Rejected"),
        (
            {"vendorId": "chargenet", "messageId": "CertificateInstalled", "data": '{"serialNumber": "xyz"}'},
            "Rejected",
        ),
    ],
)
def test_data_transfer_answers_what_it_does_not_know_with_the_ocpp_status(payload, status):
    net = Network()
    assert net.call("DataTransfer", payload)[2] == {"status": status}


def security_faults(net: Network, charger_id: str = "CP-1") -> list[str]:
    return [fault.code for fault, _ in net.faults.store.of_charger(charger_id)]


def test_certificate_installed_over_the_old_certificate_is_refused_and_retires_nothing():
    net = Network()
    old = provisioned(net)
    sign(net, csr())
    new = net.certificates.certificates_of("CP-1")[-1]
    # Still connected with the old certificate: naming the new one proves nothing.
    refusal = net.call(
        "DataTransfer",
        {
            "vendorId": "chargenet",
            "messageId": "CertificateInstalled",
            "data": json.dumps({"serialNumber": facts(new.pem).serial_number}),
        },
    )
    assert refusal[0] == 4 and refusal[2] == "SecurityError"
    assert net.certificates.status("CP-1", old.pem) is CertificateStatus.ACTIVE
    assert net.certificates.status("CP-1", new.pem) is CertificateStatus.ACTIVE
    assert security_faults(net) == ["CertificateNotProven"]
    assert net.registry.get("CP-1").certificate_not_after is None
    net.principals["CP-1"] = new.certificate_id  # the proof: a connection made with it
    assert confirm(net, "CertificateInstalled", new.pem) == "Accepted"
    assert net.certificates.status("CP-1", old.pem) is CertificateStatus.INACTIVE


def test_without_a_principal_nothing_is_signed_or_confirmed():
    net = Network()
    current = provisioned(net)
    net.principals["CP-1"] = None  # an event from before the rule selected principal()
    reply = net.call("SignCertificate", {"csr": csr()})
    assert reply[0] == 4 and reply[2] == "SecurityError"
    data = json.dumps({"serialNumber": facts(current.pem).serial_number})
    reply = net.call(
        "DataTransfer", {"vendorId": "chargenet", "messageId": "CertificateInstalled", "data": data}
    )
    assert reply[0] == 4 and reply[2] == "SecurityError"
    assert net.certificates.certificates_of("CP-1") == [current]


def test_sign_certificate_over_a_certificate_that_is_not_the_chargers_active_one_is_refused():
    net = Network()
    provisioned(net)
    others = provisioned(net, "CP-2")
    net.principals["CP-1"] = others.certificate_id
    reply = net.call("SignCertificate", {"csr": csr()})
    assert reply[0] == 4 and reply[2] == "SecurityError"
    assert len(net.certificates.certificates_of("CP-1")) == 1


def test_a_new_sign_certificate_replaces_the_unconfirmed_one_so_at_most_one_exists():
    net = Network()
    current = provisioned(net)
    sign(net, csr())
    first = net.certificates.certificates_of("CP-1")[-1]
    sign(net, csr())
    second = net.certificates.certificates_of("CP-1")[-1]
    assert net.certificates.status("CP-1", first.pem) is CertificateStatus.INACTIVE
    active = [c for c in net.certificates.certificates_of("CP-1") if c.status is CertificateStatus.ACTIVE]
    assert active == [current, second]


def test_signing_past_the_daily_limit_is_rejected_with_a_security_fault_until_the_window_passes():
    net = Network()
    provisioned(net)
    replies = [sign(net, csr())[0][2]["status"] for _ in range(50)]
    assert replies.count("Accepted") == MAX_CERTIFICATES_PER_WINDOW - 1  # the factory one counts too
    assert len(net.certificates.certificates_of("CP-1")) == MAX_CERTIFICATES_PER_WINDOW
    active = [c for c in net.certificates.certificates_of("CP-1") if c.status is CertificateStatus.ACTIVE]
    assert len(active) == 2  # the connection's and one unconfirmed: not 51
    assert "CertificateSigningLimit" in security_faults(net)
    net.now += timedelta(days=1)
    assert sign(net, csr())[0][2] == {"status": "Accepted"}
