"""Certificate rotation requested by the charger over its own link (OCPP 1.6 security extension).

    charger                                   backend
    SignCertificate{csr} ───────────────────▶ CSR checked (certificates.check_csr), signed, registered
                         ◀─────────────────── {status: Accepted}   (Rejected + security fault if refused)
                         ◀─────────────────── CertificateSigned{certificateChain}   (sent after the reply)
    reconnects with the new certificate
    DataTransfer chargenet/CertificateInstalled{serialNumber} ─▶ every other certificate INACTIVE,
                         ◀─────────────────── {status: Accepted}   the new expiry on the registry

The confirmation is a DataTransfer (vendor "chargenet"), not a SecurityEventNotification:
its reply has a status, so the charger knows whether the old certificate was retired and
retries until it was; a security event is answered `{}` whatever became of it. It must arrive
over a connection made with the certificate it names: the ingest rule passes that connection's
certificate id (principal()), and a confirmation naming any other certificate, or arriving
without a principal, is answered CALLERROR SecurityError and raised as a security fault. So
confirming proves the new certificate connects, and a stolen old key cannot retire the
legitimate certificate by naming one it had signed for itself.

A stolen key must not become lasting control, so signing is bounded: SignCertificate must come
over a connection with one of the charger's active certificates (else SecurityError); a new
request retires every other active certificate first (certificates.replaced_by_new_request),
so at most one unconfirmed certificate exists per charger; and past
certificates.MAX_CERTIFICATES_PER_WINDOW certificates a day the request is Rejected and a
security fault names the charger.

A rotation that fails on the charger's side (the new certificate is refused) is reported with
CertificateAbandoned and that certificate is retired at once. Nothing retires a signed but
unconfirmed certificate on a timer: the backend cannot tell a lost confirmation from an
abandoned rotation, and retiring a certificate the charger already switched to would leave it
with no working identity. Such a leftover stays active (its key never left the charger) until
the next request replaces it or the next confirmed rotation retires every certificate but the
installed one, and the certificate-expiry fault names a charger that never completes one.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chargenet.domain import certificates
from chargenet.domain.certificates import ChargerCertificate, CsrRefused
from chargenet.domain.fault_rules import certificate_abuse, security_event
from chargenet.ocpp.actions import Action
from chargenet.ocpp.router import CallRefused, Payload, on
from chargenet.services.ocpp.context import Ctx

VENDOR_ID = "chargenet"
CERTIFICATE_INSTALLED = "CertificateInstalled"
CERTIFICATE_ABANDONED = "CertificateAbandoned"
# The security whitepaper's event for a certificate that must not be used: a major fault.
REFUSED_CSR_EVENT = "InvalidChargePointCertificate"
# The backend's own security findings (fault codes, not OCPP security event types).
TOO_MANY_SIGNINGS = "CertificateSigningLimit"
UNPROVEN_CONFIRMATION = "CertificateNotProven"
_MESSAGE_IDS = uuid.UUID("5f0c1d1e-8a43-4c1b-9a55-0b7f4c2a9e61")


class CertificateReport(BaseModel):
    """DataTransfer data of CertificateInstalled / CertificateAbandoned (a JSON string)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    serial_number: str = Field(alias="serialNumber", pattern=r"^(0x)?[0-9a-fA-F]{1,40}$")


def certificate_signed_message_id(charger_id: str, sign_message_id: str) -> str:
    """The id of the CertificateSigned CALL that answers one SignCertificate: the same for every
    copy of it, so a repeated request finds the certificate already issued (36 characters, as
    OCPP-J message ids may be at most)."""
    return str(uuid.uuid5(_MESSAGE_IDS, f"{charger_id}#{sign_message_id}"))


@on(Action.sign_certificate)
def sign_certificate(ctx: Ctx, payload: Payload) -> Payload:
    return {"status": sign_requested(ctx, payload["csr"], {})}


def sign_requested(ctx: Ctx, csr: str, signed_fields: Payload) -> str:
    """Check and sign a SignCertificate's CSR (either version): "Accepted" with the
    CertificateSigned CALL (its `certificateChain` and `signed_fields`) recorded for the ingest to
    send after the reply, or "Rejected" (a security fault says why)."""
    signed_id = certificate_signed_message_id(ctx.charger_id, ctx.message_id)
    if ctx.deps.pending.get(ctx.charger_id, signed_id) is not None:
        return "Accepted"  # issued by an earlier attempt; the ingest delivers it
    try:
        certificates.check_csr(csr, ctx.charger_id)
    except CsrRefused as refused:
        signal = security_event(
            ctx.charger_id,
            _site(ctx),
            REFUSED_CSR_EVENT,
            f"SignCertificate refused: {refused}",
            ctx.received_at,
        )
        if signal is not None:
            ctx.deps.faults.apply([signal])
        return "Rejected"
    authority = ctx.deps.certificates
    registered = authority.certificates_of(ctx.charger_id)
    current = _connection_certificate(ctx, registered, "SignCertificate")
    if certificates.over_issue_limit(registered, ctx.deps.clock()):
        hours = certificates.CERTIFICATE_WINDOW.total_seconds() / 3600
        limit = f"{certificates.MAX_CERTIFICATES_PER_WINDOW} certificates within {hours:.0f} h"
        _raise_fault(ctx, TOO_MANY_SIGNINGS, f"SignCertificate refused: already {limit}")
        return "Rejected"
    for unconfirmed in certificates.replaced_by_new_request(registered, current):
        authority.retire(unconfirmed.certificate_id)
    issued = authority.issue(ctx.charger_id, csr)
    ctx.deps.pending.add(
        ctx.charger_id,
        signed_id,
        Action.certificate_signed.value,
        {"certificateChain": issued.pem, **signed_fields},
        ctx.deps.clock(),
    )
    return "Accepted"


@on(Action.data_transfer)
def data_transfer(ctx: Ctx, payload: Payload) -> Payload:
    return {"status": data_transfer_status(ctx, payload)}


def data_transfer_status(ctx: Ctx, payload: Payload) -> str:
    """A DataTransfer of either version: only ours (vendor "chargenet") is known, and of it only
    the certificate rotation's reports. 2.0.1's `data` may be any JSON: the report as a JSON
    string (as 1.6 sends it) or as an object."""
    if payload["vendorId"] != VENDOR_ID:
        return "UnknownVendorId"
    message_id = payload.get("messageId")
    if message_id not in (CERTIFICATE_INSTALLED, CERTIFICATE_ABANDONED):
        return "UnknownMessageId"
    data = payload.get("data")
    try:
        if isinstance(data, dict):
            report = CertificateReport.model_validate(data)
        else:
            report = CertificateReport.model_validate_json(data if isinstance(data, str) else "")
    except ValidationError:
        return "Rejected"
    if message_id == CERTIFICATE_INSTALLED:
        return _installed(ctx, report.serial_number)
    return _abandoned(ctx, report.serial_number)


def _installed(ctx: Ctx, serial_number: str) -> str:
    authority = ctx.deps.certificates
    registered = authority.certificates_of(ctx.charger_id)
    new = certificates.installed(registered, serial_number)
    if new is None:
        return "Rejected"
    if new.certificate_id != ctx.principal:
        # Naming a certificate proves nothing: only connecting with it does.
        _raise_fault(
            ctx, UNPROVEN_CONFIRMATION, "CertificateInstalled over a connection with another certificate"
        )
        raise CallRefused("SecurityError", "CertificateInstalled must arrive over the certificate it names")
    for old in certificates.to_retire_after_install(registered, new):
        authority.retire(old.certificate_id)
    ctx.deps.registry.record_certificate(ctx.charger_id, certificates.facts(new.pem).not_after)
    return "Accepted"


def _abandoned(ctx: Ctx, serial_number: str) -> str:
    authority = ctx.deps.certificates
    registered = authority.certificates_of(ctx.charger_id)
    abandoned = certificates.installed(registered, serial_number)
    if abandoned is None:
        return "Accepted"  # not active (any more): nothing to do, and a repeat must not fail
    if not certificates.may_abandon(registered, abandoned):
        return "Rejected"
    authority.retire(abandoned.certificate_id)
    return "Accepted"


def _connection_certificate(
    ctx: Ctx, registered: list[ChargerCertificate], action: str
) -> ChargerCertificate:
    """The active certificate of this charger the CALL's connection was made with, or a
    SecurityError: without one nothing proves who asks."""
    current = certificates.connected_with(registered, ctx.principal)
    if current is None:
        raise CallRefused(
            "SecurityError", f"{action} must arrive over one of this charger's active certificates"
        )
    return current


def _site(ctx: Ctx) -> str:
    charger = ctx.deps.registry.get(ctx.charger_id)
    return charger.site_id if charger else ""


def _raise_fault(ctx: Ctx, code: str, detail: str) -> None:
    ctx.deps.faults.apply([certificate_abuse(ctx.charger_id, _site(ctx), code, detail, ctx.received_at)])
