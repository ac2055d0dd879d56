"""The shim's side of a rotation over its own OCPP link (ocpp_issuer.OcppIssuer), against an
in-process backend that signs with a local CA and answers as chargenet's ingest does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from cryptography import x509
from ocpp.v16 import call, call_result
from ocpp.v16.enums import CertificateSignedStatus, DataTransferStatus, GenericStatus

from chargenet_local.pki import LocalCA
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.ocpp_issuer import CertificateRefused, OcppIssuer, RelayedCalls
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.rotation import rotate

CHARGER = "CP-001"


class Backend:
    """Answers SignCertificate, then delivers CertificateSigned the way the ingest does: after the reply."""

    def __init__(self, ca: LocalCA, *, sign_status: str = "Accepted", signer: LocalCA | None = None) -> None:
        self.ca = ca
        self.signer = signer or ca
        self.sign_status = sign_status
        self.issuer: OcppIssuer | None = None
        self.data_transfers: list[call.DataTransfer] = []
        self.data_transfer_answers: list[Any] = []
        self.certificate_signed_answers: list[CertificateSignedStatus] = []

    async def send_call(self, request: Any) -> Any:
        if isinstance(request, call.SignCertificate):
            if self.sign_status == "Accepted":
                issued = self.signer.sign_csr(request.csr, expected_cn=CHARGER)
                asyncio.get_running_loop().call_soon(self._deliver, issued.pem)
            return call_result.SignCertificate(status=GenericStatus(self.sign_status))
        self.data_transfers.append(request)
        answer = self.data_transfer_answers.pop(0) if self.data_transfer_answers else "Accepted"
        if isinstance(answer, Exception):
            raise answer
        return call_result.DataTransfer(status=DataTransferStatus(answer))

    def _deliver(self, certificate_pem: str) -> None:
        assert self.issuer is not None
        self.certificate_signed_answers.append(self.issuer.certificate_signed(certificate_pem))


@pytest.fixture
def installed(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    store = FileKeyStore(tmp_path / CHARGER)
    issued = ca.sign_csr(store.create_csr(CHARGER), expected_cn=CHARGER)
    store.install_certificate(issued.pem, ca.cert_path.read_text())
    return ca, store


def issuer_for(backend: Backend, store: FileKeyStore, **options: float) -> OcppIssuer:
    backend.issuer = OcppIssuer(store, backend.send_call, report_retry_s=0.01, **options)
    return backend.issuer


def test_sign_sends_the_csr_and_returns_the_certificate_signed_for_the_pending_key(installed):
    ca, store = installed
    backend = Backend(ca)
    issuer = issuer_for(backend, store)

    async def run():
        return await issuer.sign(CHARGER, store.create_pending_csr(CHARGER))

    signed = asyncio.run(run())
    assert backend.certificate_signed_answers == [CertificateSignedStatus.accepted]
    assert store.pending_cert_path.read_text() == signed.certificate_pem
    assert signed.ca_pem == ca.cert_path.read_text()  # the broker's trust anchor is unchanged
    # The backend sending it again (a repeated SignCertificate) gets the same answer.
    assert issuer.certificate_signed(signed.certificate_pem) is CertificateSignedStatus.accepted


def test_a_rejected_csr_raises_and_nothing_is_installed(installed):
    ca, store = installed
    issuer = issuer_for(Backend(ca, sign_status="Rejected"), store)

    async def run():
        await issuer.sign(CHARGER, store.create_pending_csr(CHARGER))

    with pytest.raises(CertificateRefused, match="Rejected"):
        asyncio.run(run())
    assert not store.pending_cert_path.exists()


def test_a_certificate_for_another_key_is_rejected_and_the_rotation_times_out(installed, tmp_path):
    ca, store = installed
    other = FileKeyStore(tmp_path / "other")

    class WrongKey(Backend):
        def _deliver(self, certificate_pem: str) -> None:
            wrong = self.ca.sign_csr(other.create_csr(CHARGER), expected_cn=CHARGER).pem
            super()._deliver(wrong)

    backend = WrongKey(ca)
    issuer = issuer_for(backend, store, signed_timeout_s=0.3)

    async def run():
        await issuer.sign(CHARGER, store.create_pending_csr(CHARGER))

    with pytest.raises(CertificateRefused, match="no CertificateSigned"):
        asyncio.run(run())
    assert backend.certificate_signed_answers == [CertificateSignedStatus.rejected]
    assert not store.pending_cert_path.exists()


def test_a_certificate_signed_nobody_asked_for_is_rejected(installed):
    ca, store = installed
    issuer = issuer_for(Backend(ca), store)
    unasked = ca.sign_csr(store.create_pending_csr(CHARGER), expected_cn=CHARGER).pem
    assert issuer.certificate_signed(unasked) is CertificateSignedStatus.rejected
    assert issuer.certificate_signed("not a certificate") is CertificateSignedStatus.rejected


def test_confirm_names_the_new_certificate_by_serial_and_retries_a_lost_message(installed):
    ca, store = installed
    backend = Backend(ca)
    backend.data_transfer_answers = [TimeoutError("no answer"), "Accepted"]
    issuer = issuer_for(backend, store)
    new_pem = store.cert_path.read_text()

    asyncio.run(issuer.confirm(CHARGER, new_pem, "old"))

    serial = x509.load_pem_x509_certificate(new_pem.encode()).serial_number
    assert [(r.vendor_id, r.message_id) for r in backend.data_transfers] == [
        ("chargenet", "CertificateInstalled")
    ] * 2
    assert json.loads(backend.data_transfers[-1].data) == {"serialNumber": format(serial, "x")}


def test_a_refused_confirmation_raises(installed):
    ca, store = installed
    backend = Backend(ca)
    backend.data_transfer_answers = ["Rejected"]
    issuer = issuer_for(backend, store)
    with pytest.raises(CertificateRefused, match="CertificateInstalled answered Rejected"):
        asyncio.run(issuer.confirm(CHARGER, store.cert_path.read_text(), "old"))


class SwitchingLink:
    """What rotate() needs of a ChargerLink; `refuse` makes the new certificate fail to connect."""

    def __init__(self, credentials: ChargerCredentials, refuse: bool = False) -> None:
        self.credentials = credentials
        self.refuse = refuse
        self.switched_to: list[ChargerCredentials] = []

    async def switch_credentials(self, credentials: ChargerCredentials) -> None:
        self.switched_to.append(credentials)
        if self.refuse:
            from chargenet_shim.link import LinkError

            raise LinkError("refused")


def credentials_of(store: FileKeyStore) -> ChargerCredentials:
    return ChargerCredentials(
        charger_id=CHARGER,
        mqtt_host="127.0.0.1",
        mqtt_port=8883,
        ingest_rule="rule",
        ca_path=store.ca_path,
        cert_path=store.cert_path,
        key_path=store.key_path,
    )


@pytest.mark.parametrize("refuse", [False, True], ids=["connects", "refused"])
def test_rotate_over_the_ocpp_issuer_confirms_the_new_or_abandons_the_refused_certificate(installed, refuse):
    ca, store = installed
    before = store.cert_path.read_text()
    backend = Backend(ca)
    issuer = issuer_for(backend, store)
    link = SwitchingLink(credentials_of(store), refuse=refuse)

    async def run() -> None:
        await rotate(link, store, issuer)  # type: ignore[arg-type]

    if refuse:
        with pytest.raises(Exception, match="refused"):
            asyncio.run(run())
        assert store.cert_path.read_text() == before
        reported = backend.data_transfers[-1]
        assert reported.message_id == "CertificateAbandoned"
    else:
        asyncio.run(run())
        assert store.cert_path.read_text() != before
        reported = backend.data_transfers[-1]
        assert reported.message_id == "CertificateInstalled"
        serial = x509.load_pem_x509_certificate(store.cert_path.read_bytes()).serial_number
        assert json.loads(reported.data) == {"serialNumber": format(serial, "x")}


class RecordingLink:
    def __init__(self, ocpp_version: OcppVersion = OcppVersion.V16) -> None:
        self.sent: list[list] = []
        self.ocpp_version = ocpp_version

    async def send(self, frame: str) -> None:
        self.sent.append(json.loads(frame))


def test_the_gateway_keeps_the_answers_to_its_own_calls_and_relays_the_chargers_frames(installed):
    from chargenet_shim.ocpp_issuer import RelayedCalls

    link = RecordingLink()
    calls = RelayedCalls(link)  # type: ignore[arg-type]

    async def run():
        request = call.DataTransfer(vendor_id="chargenet", message_id="CertificateInstalled", data="{}")
        pending = asyncio.create_task(calls.send_call(request))
        await asyncio.sleep(0)
        [[kind, message_id, action, payload]] = link.sent
        assert (kind, action, payload["vendorId"]) == (2, "DataTransfer", "chargenet")
        assert message_id.startswith("shim-") and len(message_id) <= 36
        assert calls.take(json.dumps([3, "charger-1", {}])) is None  # an answer to the charger's call
        assert calls.take(json.dumps([2, "c-2", "Reset", {"type": "Soft"}])) is None
        assert calls.take(json.dumps([3, message_id, {"status": "Accepted"}])) == ""
        return await pending

    assert asyncio.run(run()).status == DataTransferStatus.accepted


def test_the_gateway_takes_a_certificate_signed_for_its_pending_key_and_relays_the_chargers_own(
    installed, tmp_path
):
    from chargenet_shim.ocpp_issuer import RelayedCalls

    ca, store = installed
    link = RecordingLink()
    calls = RelayedCalls(link)  # type: ignore[arg-type]
    charger_keys = FileKeyStore(tmp_path / "real-charger")
    chargers_own = ca.sign_csr(charger_keys.create_csr(CHARGER), expected_cn=CHARGER).pem

    async def run():
        issuer = calls.issuer = OcppIssuer(store, calls.send_call)
        signing = asyncio.create_task(issuer.sign(CHARGER, store.create_pending_csr(CHARGER)))
        await asyncio.sleep(0)
        [[_, message_id, action, payload]] = link.sent
        assert action == "SignCertificate"
        calls.take(json.dumps([3, message_id, {"status": "Accepted"}]))
        await asyncio.sleep(0)
        # The real charger's own certificate (for its profile-3 key) goes on to the charger.
        chargers = json.dumps([2, "cs-1", "CertificateSigned", {"certificateChain": chargers_own}])
        assert calls.take(chargers) is None
        shims = ca.sign_csr(payload["csr"], expected_cn=CHARGER).pem
        answer = calls.take(json.dumps([2, "cs-2", "CertificateSigned", {"certificateChain": shims}]))
        assert json.loads(answer) == [3, "cs-2", {"status": "Accepted"}]
        return await signing

    signed = asyncio.run(run())
    assert store.pending_cert_path.read_text() == signed.certificate_pem


def test_a_201_chargers_link_is_rotated_in_201s_words(installed):
    """SignCertificate with certificateType, the backend's 2.0.1 answers (statusInfo included) read."""
    ca, store = installed
    link = RecordingLink(OcppVersion.V201)
    calls = RelayedCalls(link)  # type: ignore[arg-type]
    calls.issuer = OcppIssuer(store, calls.send_call, ocpp_version=OcppVersion.V201)
    accepted = {"status": "Accepted", "statusInfo": {"reasonCode": "NoError"}}

    async def answer_next(payload: dict) -> None:
        await asyncio.sleep(0)
        assert calls.take(json.dumps([3, link.sent[-1][1], payload])) == ""

    async def run():
        issuer = calls.issuer
        signing = asyncio.create_task(issuer.sign(CHARGER, store.create_pending_csr(CHARGER)))
        await answer_next(accepted)
        [[_, _, action, payload]] = link.sent
        signed = ca.sign_csr(payload["csr"], expected_cn=CHARGER).pem
        delivery = {"certificateChain": signed, "certificateType": "ChargingStationCertificate"}
        answer = calls.take(json.dumps([2, "cs-1", "CertificateSigned", delivery]))
        certificate = await signing
        confirming = asyncio.create_task(issuer.confirm(CHARGER, certificate.certificate_pem, "old"))
        await answer_next(accepted)
        await confirming
        return action, payload, json.loads(answer)

    action, payload, answer = asyncio.run(run())

    assert (action, payload["certificateType"]) == ("SignCertificate", "ChargingStationCertificate")
    assert answer == [3, "cs-1", {"status": "Accepted"}]
    assert [(frame[2], frame[3].get("messageId")) for frame in link.sent[1:]] == [
        ("DataTransfer", "CertificateInstalled")
    ]


@pytest.mark.parametrize(
    ("options", "problem"),
    [(["--renew-before-days", "0"], "--renew-before-days"), (["--renew-check-s", "0"], "--renew-check-s")],
)
def test_simulate_refuses_renewal_settings_that_would_never_or_always_renew(
    installed, capsys, options, problem
):
    from chargenet_shim.cli import main

    _, store = installed
    credentials_of(store).save(store.cert_path.parent)
    assert main(["simulate", "--credentials-dir", str(store.cert_path.parent.parent), *options]) == 2
    assert problem in capsys.readouterr().err


def test_the_gateway_refuses_a_renewal_threshold_below_a_day(tmp_path, capsys):
    from chargenet_shim.cli import main

    assert (
        main(["gateway", "--credentials-dir", str(tmp_path), "--port", "0", "--renew-before-days", "0"]) == 2
    )
    assert "renew_before_days" in capsys.readouterr().err
