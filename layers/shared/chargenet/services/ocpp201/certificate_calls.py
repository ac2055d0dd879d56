"""Certificate rotation requested by an OCPP 2.0.1 charger: the 1.6 security extension's flow.

    charger                                   backend
    SignCertificate{csr, certificateType} ──▶ the same checks and limits as 1.6
                                               (services/ocpp/certificate_calls.py)
                         ◀─────────────────── {status: Accepted}
                         ◀─────────────────── CertificateSigned{certificateChain,
                                                 certificateType: ChargingStationCertificate}
    DataTransfer chargenet/CertificateInstalled ─▶ the old certificates retired, as in 1.6

A V2GCertificate (ISO 15118 Plug & Charge) is answered Rejected, with a statusInfo that says
why: chargenet signs only the certificate a charger connects with. DataTransfer is 1.6's:
vendor "chargenet" carries the rotation's confirmation, every other vendor is UnknownVendorId.
"""

from __future__ import annotations

from chargenet.ocpp.actions import Action201
from chargenet.ocpp.router import Payload, on
from chargenet.services.ocpp import certificate_calls as ocpp16
from chargenet.services.ocpp.context import Ctx

STATION_CERTIFICATE = "ChargingStationCertificate"
V2G_CERTIFICATE = "V2GCertificate"
# StatusInfo.reasonCode is at most 20 characters.
PLUG_AND_CHARGE_REFUSAL = {
    "reasonCode": "NotSupported",
    "additionalInfo": "V2G certificates (ISO 15118 Plug & Charge) are not supported by this CSMS",
}


@on(Action201.sign_certificate)
def sign_certificate(ctx: Ctx, payload: Payload) -> Payload:
    # certificateType is optional; without it the charger asks for its own certificate.
    if payload.get("certificateType", STATION_CERTIFICATE) == V2G_CERTIFICATE:
        return {"status": "Rejected", "statusInfo": PLUG_AND_CHARGE_REFUSAL}
    status = ocpp16.sign_requested(ctx, payload["csr"], {"certificateType": STATION_CERTIFICATE})
    return {"status": status}


@on(Action201.data_transfer)
def data_transfer(ctx: Ctx, payload: Payload) -> Payload:
    return {"status": ocpp16.data_transfer_status(ctx, payload)}
