"""Batch claim certificates for factory provisioning, in IoT Core's registry (locally: moto).

What makes a certificate a claim certificate is the claim policy attached to it (the template's
ProvisioningClaimPolicy: the two provisioning MQTT APIs, nothing else). The key pair is made on
the operator's machine: IoT signs its CSR (CreateCertificateFromCsr; locally moto, patched to sign
with the local CA, chargenet_local.moto_iot), and revoking is UpdateCertificate(REVOKED), which
locally also puts it on the broker's CRL. Called by OperatorChargersFunction.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from chargenet.adapters.aws_clients import client_at_first_use
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.certificates import CertificateStatus
from chargenet.ports.provisioning import (
    ClaimCertificates,
    IssuedClaimCertificate,
    NotAClaimCertificate,
    UnknownCertificate,
)


@raises_store_unavailable
class IotClaimCertificates(ClaimCertificates):
    def __init__(self, claim_policy: str, iot: Any | None = None) -> None:
        self._claim_policy = claim_policy
        self._client = iot

    @cached_property
    def _iot(self) -> Any:
        return client_at_first_use("iot", self._client)

    def issue(self, csr_pem: str) -> IssuedClaimCertificate:
        created = self._iot.create_certificate_from_csr(certificateSigningRequest=csr_pem, setAsActive=True)
        self._attach_claim_policy(created["certificateId"], created["certificateArn"])
        return IssuedClaimCertificate(created["certificateId"], created["certificatePem"])

    def revoke(self, certificate_id: str) -> None:
        """The policy detached too, so a certificate reactivated by mistake still grants nothing."""
        try:
            description = self._iot.describe_certificate(certificateId=certificate_id)[
                "certificateDescription"
            ]
        except self._iot.exceptions.ResourceNotFoundException:
            raise UnknownCertificate(certificate_id) from None
        arn = description["certificateArn"]
        attached = {p["policyName"] for p in self._iot.list_attached_policies(target=arn)["policies"]}
        if self._claim_policy in attached:
            self._iot.update_certificate(
                certificateId=certificate_id, newStatus=CertificateStatus.REVOKED.value
            )
            self._iot.detach_policy(policyName=self._claim_policy, target=arn)
        elif description["status"] != CertificateStatus.REVOKED:
            raise NotAClaimCertificate(certificate_id)

    def _attach_claim_policy(self, certificate_id: str, arn: str) -> None:
        try:
            self._iot.attach_policy(policyName=self._claim_policy, target=arn)
        except Exception:
            # An active certificate without its policy can do nothing, but it should not linger active.
            self._iot.update_certificate(
                certificateId=certificate_id, newStatus=CertificateStatus.INACTIVE.value
            )
            raise
