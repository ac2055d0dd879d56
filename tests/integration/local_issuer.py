"""A test harness for short-lived certificates: the operator side of a rotation
(chargenet_shim.rotation.CertificateIssuer) signing with the local CA for `days`.

IoT (and the operator API) chooses a certificate's validity itself; tests of expiry and renewal
need certificates a day or ten from their end, so this issuer signs with the local stack's CA and
registers the certificate in moto's IoT as CreateCertificateFromCsr would. Confirm and abandon
deactivate as the operator API does (UpdateCertificate INACTIVE: the moto patch puts it on the CRL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from cryptography import x509

from chargenet.adapters.dynamodb import DynamoChargerRegistry
from chargenet.adapters.iot_certificates import thing_principals
from chargenet_local.pki import CHARGER_CERT_DAYS, LocalCA
from chargenet_local.stack import StackState
from chargenet_shim.rotation import SignedCertificate


def thing_certificates(charger_id: str) -> list[dict[str, Any]]:
    iot = boto3.client("iot")
    return [
        iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])["certificateDescription"]
        for arn in thing_principals(iot, charger_id)
    ]


class LocalIssuer:
    def __init__(self, state: StackState, days: int = CHARGER_CERT_DAYS) -> None:
        self._state = state
        self._days = days
        self._ca = LocalCA(Path(state.home) / "ca")

    def sign(self, charger_id: str, csr_pem: str) -> SignedCertificate:
        issued = self._ca.sign_csr(csr_pem, expected_cn=charger_id, days=self._days)
        iot = boto3.client("iot")
        certificate = iot.register_certificate_without_ca(certificatePem=issued.pem, status="ACTIVE")
        iot.attach_policy(policyName=self._state.charger_policy, target=certificate["certificateArn"])
        iot.attach_thing_principal(thingName=charger_id, principal=certificate["certificateArn"])
        return SignedCertificate(issued.pem, self._ca.cert_path.read_text())

    def confirm(self, charger_id: str, new_certificate_pem: str, old_certificate_pem: str) -> None:
        self._deactivate(charger_id, old_certificate_pem)
        new = x509.load_pem_x509_certificate(new_certificate_pem.encode())
        DynamoChargerRegistry().record_certificate(charger_id, new.not_valid_after_utc)

    def abandon(self, charger_id: str, certificate_pem: str) -> None:
        self._deactivate(charger_id, certificate_pem)

    @staticmethod
    def _deactivate(charger_id: str, certificate_pem: str) -> None:
        for description in thing_certificates(charger_id):
            if description["certificatePem"].strip() == certificate_pem.strip():
                boto3.client("iot").update_certificate(
                    certificateId=description["certificateId"], newStatus="INACTIVE"
                )
