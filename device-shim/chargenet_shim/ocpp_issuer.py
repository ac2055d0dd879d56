"""Certificate rotation over the charger's own OCPP link: a charger in the field has no AWS credentials.

    shim (rotation.rotate)                          backend (chargenet.services.ocpp.certificate_calls)
    new key + CSR in the key store
    SignCertificate{csr} ─────────────────────────▶ CSR checked: CN = this charger, P-256/RSA>=2048
                         ◀───────────────────────── Accepted (Rejected: refused, nothing signed)
                         ◀───────────────────────── CertificateSigned{certificateChain}
    Accepted if it is for the pending key ─────────▶
    reconnect with the new pair (the old one still works if this fails)
    DataTransfer chargenet/CertificateInstalled ───▶ every other certificate INACTIVE, expiry recorded
      or, the new certificate refused, CertificateAbandoned from the old connection: it is retired

`OcppIssuer` is rotation's CertificateIssuer on top of one function that sends an OCPP CALL and
returns its answer, plus `certificate_signed`, which the charger's CertificateSigned handler calls.
It speaks the charger's OCPP version, since its CALLs reach the backend on that version's ingest
topic: 1.6's security extension (SignCertificate{csr}) or 2.0.1 (SignCertificate{csr,
certificateType: ChargingStationCertificate}, the certificate a station connects to its CSMS
with); the backend's CertificateSigned and the vendor DataTransfer read the same in both.

- Simulator (`CertificateRenewal`): the calls are ocpp's ChargePoint.call, the handler an `@on`;
  `renew_before_expiry` starts once the boot is accepted.
- Gateway (`RelayedCalls`): the MQTT link belongs to a real charger whose frames are relayed
  verbatim, so the shim's own CALLs carry ids of their own and the relay hands the cloud's
  answers to them, and a CertificateSigned for the shim's pending key, here instead of to the
  charger. The real charger's own SignCertificate is refused by the gateway (gateway.py
  refuse_shim_messages): the certificate the backend signs is a cloud one, the link's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from ocpp.charge_point import camel_to_snake_case
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, CertificateSignedStatus, DataTransferStatus, GenericStatus
from ocpp.v201.enums import CertificateSigningUseEnumType

from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.link import ChargerLink
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.own_calls import OwnCalls
from chargenet_shim.rotation import (
    DEFAULT_CHECK_EVERY_S,
    DEFAULT_RENEW_BEFORE,
    SignedCertificate,
    renew_before_expiry,
)

LOG = logging.getLogger(__name__)

VENDOR_ID = "chargenet"
CERTIFICATE_INSTALLED = "CertificateInstalled"
CERTIFICATE_ABANDONED = "CertificateAbandoned"
# How long the backend may take from accepting the CSR to sending the certificate.
SIGNED_TIMEOUT_S = 60.0
# The confirmation retires the old certificate: worth a few tries before the next check.
REPORT_ATTEMPTS = 3
REPORT_RETRY_S = 2.0

SendCall = Callable[[Any], Awaitable[Any]]


class CertificateRefused(RuntimeError):
    """The backend refused a step of the rotation, or did not finish it in time."""


class OcppIssuer:
    """chargenet_shim.rotation.CertificateIssuer over OCPP certificate messages, in the charger's version."""

    def __init__(
        self,
        keystore: FileKeyStore,
        send_call: SendCall,
        *,
        ocpp_version: OcppVersion = OcppVersion.V16,
        signed_timeout_s: float = SIGNED_TIMEOUT_S,
        report_retry_s: float = REPORT_RETRY_S,
    ) -> None:
        self._keystore = keystore
        self._send_call = send_call
        self._version = ocpp_version
        self._signed_timeout_s = signed_timeout_s
        self._report_retry_s = report_retry_s
        self._awaiting: asyncio.Future[str] | None = None
        self._delivered: str | None = None

    async def sign(self, charger_id: str, csr_pem: str) -> SignedCertificate:
        self._awaiting = asyncio.get_running_loop().create_future()  # before the CALL: it may be quick
        self._delivered = None
        try:
            reply = await self._send_call(self._sign_certificate(csr_pem))
            if reply.status != GenericStatus.accepted:
                raise CertificateRefused(f"{charger_id}: SignCertificate answered {reply.status}")
            try:
                certificate_pem = await asyncio.wait_for(
                    asyncio.shield(self._awaiting), self._signed_timeout_s
                )
            except TimeoutError as exc:
                raise CertificateRefused(
                    f"{charger_id}: no CertificateSigned within {self._signed_timeout_s:g}s"
                ) from exc
        finally:
            self._awaiting = None
        # The CA the link verifies the broker with stays what it was: the cloud signs client
        # certificates only, and the broker's server certificate does not change with them.
        return SignedCertificate(certificate_pem, self._keystore.ca_path.read_text())

    def _sign_certificate(self, csr_pem: str) -> Any:
        if self._version is OcppVersion.V201:
            return self._version.calls.SignCertificate(
                csr=csr_pem, certificate_type=CertificateSigningUseEnumType.charging_station_certificate
            )
        return self._version.calls.SignCertificate(csr=csr_pem)

    async def confirm(self, charger_id: str, new_certificate_pem: str, old_certificate_pem: str) -> None:
        await self._report(charger_id, CERTIFICATE_INSTALLED, new_certificate_pem)

    async def abandon(self, charger_id: str, certificate_pem: str) -> None:
        await self._report(charger_id, CERTIFICATE_ABANDONED, certificate_pem)

    def expects(self, certificate_chain: str) -> bool:
        """Whether this is the certificate a rotation waits for: one for the pending key."""
        certificate_pem = _leaf(certificate_chain)
        if certificate_pem is None or certificate_pem == self._delivered:
            return certificate_pem is not None
        key_path = self._keystore.pending_key_path
        if self._awaiting is None or not key_path.exists():
            return False
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        pending_key = load_pem_private_key(key_path.read_bytes(), password=None)
        return _public_der(certificate.public_key()) == _public_der(pending_key.public_key())

    def certificate_signed(self, certificate_chain: str) -> CertificateSignedStatus:
        """The backend's CertificateSigned: accepted only for the key a rotation is waiting with."""
        certificate_pem = _leaf(certificate_chain)
        if certificate_pem is not None and certificate_pem == self._delivered:
            return CertificateSignedStatus.accepted  # the backend sent it again: same answer
        awaiting = self._awaiting
        if certificate_pem is None or awaiting is None or awaiting.done():
            return CertificateSignedStatus.rejected
        try:
            self._keystore.install_pending_certificate(certificate_pem, self._keystore.ca_path.read_text())
        except ValueError as exc:
            LOG.warning("CertificateSigned refused: %s", exc)
            return CertificateSignedStatus.rejected
        self._delivered = certificate_pem
        awaiting.set_result(certificate_pem)
        return CertificateSignedStatus.accepted

    async def _report(self, charger_id: str, message_id: str, certificate_pem: str) -> None:
        serial = x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number
        request = self._version.calls.DataTransfer(
            vendor_id=VENDOR_ID, message_id=message_id, data=json.dumps({"serialNumber": format(serial, "x")})
        )
        for attempt in range(1, REPORT_ATTEMPTS + 1):
            try:
                reply = await self._send_call(request)
            except Exception as exc:
                if attempt == REPORT_ATTEMPTS:
                    raise
                LOG.warning("%s: %s not delivered, retrying: %s", charger_id, message_id, exc)
                await asyncio.sleep(self._report_retry_s)
                continue
            if reply.status != DataTransferStatus.accepted:
                raise CertificateRefused(f"{charger_id}: {message_id} answered {reply.status}")
            return


def _leaf(certificate_chain: str) -> str | None:
    """The first certificate of a PEM chain (the charger's own), normalised; None if there is none."""
    try:
        certificates = x509.load_pem_x509_certificates(certificate_chain.encode())
    except ValueError:
        return None
    return certificates[0].public_bytes(Encoding.PEM).decode() if certificates else None


def _public_der(key: Any) -> bytes:
    return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


class CertificateRenewal:
    """Mixed into SimulatedCharger (an ocpp ChargePoint with charger_state's background tasks).

    Class-wide settings, like the firmware key: `chargenet-shim simulate --renew-before-days`.
    None switches renewal off.
    """

    renew_before: timedelta | None = DEFAULT_RENEW_BEFORE
    renew_check_every_s: float = DEFAULT_CHECK_EVERY_S
    # A 2.0.1 charger class sets its own: the issuer's CALLs are in the charger's version.
    ocpp_version: OcppVersion = OcppVersion.V16
    _certificate_issuer: OcppIssuer | None = None
    _certificate_renewal: asyncio.Task[None] | None = None

    # Provided by SimulatedCharger.
    call: Callable[..., Awaitable[Any]]
    _spawn: Callable[..., asyncio.Task[Any]]

    def start_certificate_renewal(self, link: ChargerLink) -> None:
        """Check the certificate's expiry beside the running link (once per charger, not per boot)."""
        if self.renew_before is None or self._certificate_renewal is not None:
            return
        keystore = FileKeyStore(link.credentials.cert_path.parent)

        async def send_call(request: Any) -> Any:
            return await self.call(request, suppress=False)

        self._certificate_issuer = OcppIssuer(keystore, send_call, ocpp_version=self.ocpp_version)
        self._certificate_renewal = self._spawn(
            renew_before_expiry(
                link,
                keystore,
                self._certificate_issuer,
                renew_before=self.renew_before,
                check_every_s=self.renew_check_every_s,
            ),
            "certificate renewal",
        )

    @on(Action.certificate_signed)
    def on_certificate_signed(self, certificate_chain: str, **_: Any) -> call_result.CertificateSigned:
        issuer = self._certificate_issuer
        if issuer is None:
            return call_result.CertificateSigned(status=CertificateSignedStatus.rejected)
        return call_result.CertificateSigned(status=issuer.certificate_signed(certificate_chain))


class RelayedCalls:
    """The shim's own CALLs on a link the gateway relays for a real charger, in the link's OCPP version.

    `send_call` is OcppIssuer's; `take` sees every frame from the cloud first and keeps those
    meant for the shim (the answers to its CALLs, a CertificateSigned for its pending key).
    """

    def __init__(self, link: ChargerLink, *, timeout_s: float = 30.0) -> None:
        self._calls = OwnCalls(link.send, prefix="shim", timeout_s=timeout_s)
        self._answers = link.ocpp_version.call_results
        self.issuer: OcppIssuer | None = None

    async def send_call(self, request: Any) -> Any:
        frame = await self._calls.call(request)
        action = type(request).__name__
        if frame[0] != 3:
            raise CertificateRefused(f"{action} answered {frame[2]}: {frame[3] if len(frame) > 3 else ''}")
        return getattr(self._answers, action)(**camel_to_snake_case(frame[2]))

    def take(self, text: str) -> str | None:
        """None: the frame is the charger's, relay it. Otherwise it was the shim's: "" when there
        is nothing to send, or the CALLRESULT to send back to the cloud."""
        try:
            frame = json.loads(text)
        except ValueError:
            return None
        if not isinstance(frame, list) or len(frame) < 3:
            return None
        if self._calls.take(frame):
            return ""
        if frame[0] == 2 and frame[2] == Action.certificate_signed.value and self.issuer is not None:
            chain = (
                frame[3].get("certificateChain") if len(frame) > 3 and isinstance(frame[3], dict) else None
            )
            if isinstance(chain, str) and self.issuer.expects(chain):
                status = self.issuer.certificate_signed(chain)
                return json.dumps([3, frame[1], {"status": status.value}])
        return None
