"""Batch claim certificates for factory provisioning, in IoT Core's registry (locally: moto).

What makes a certificate a claim certificate is the claim policy attached to it (the template's
ProvisioningClaimPolicy: the two provisioning MQTT APIs, nothing else). In the cloud IoT makes the
key pair and the certificate (CreateKeysAndCertificate); locally the stack's CA signs one and it
is registered here. Operator tooling (`chargenet provisioning`), not called by any function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from chargenet.domain.certificates import CertificateStatus


class UnknownCertificate(LookupError):
    """No certificate with that id in the registry."""


class NotAClaimCertificate(ValueError):
    """The certificate exists but does not carry the claim policy (a charger's, or another's)."""


@dataclass(frozen=True)
class ClaimCertificate:
    certificate_id: str
    certificate_pem: str
    # Kept out of repr: a logged or printed ClaimCertificate must not carry the batch's key.
    private_key_pem: str = field(repr=False)


class IotClaimCertificates:
    def __init__(self, claim_policy: str, iot: Any | None = None) -> None:
        self._claim_policy = claim_policy
        self._client = iot

    @cached_property
    def _iot(self) -> Any:
        if self._client is not None:
            return self._client
        import boto3

        return boto3.client("iot")

    def create(self) -> ClaimCertificate:
        """A new active claim certificate and its key, both made by IoT (the key is returned once)."""
        created = self._iot.create_keys_and_certificate(setAsActive=True)
        self._attach_claim_policy(created["certificateId"], created["certificateArn"])
        return ClaimCertificate(
            created["certificateId"], created["certificatePem"], created["keyPair"]["PrivateKey"]
        )

    def register(self, certificate_pem: str) -> str:
        """A certificate signed elsewhere (the local stack's CA), active as a claim certificate."""
        registered = self._iot.register_certificate_without_ca(
            certificatePem=certificate_pem, status=CertificateStatus.ACTIVE.value
        )
        self._attach_claim_policy(registered["certificateId"], registered["certificateArn"])
        return str(registered["certificateId"])

    def revoke(self, certificate_id: str) -> str:
        """REVOKED (IoT refuses it from then on) and the claim policy detached, so a certificate
        reactivated by mistake still grants nothing; returns its PEM (for a local CRL).

        Running it again for a claim certificate it already revoked changes nothing.
        """
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
        return str(description["certificatePem"])

    def data_endpoint(self) -> str:
        """The account's ATS data endpoint: the host a claiming charger connects to."""
        return str(self._iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"])

    def _attach_claim_policy(self, certificate_id: str, arn: str) -> None:
        try:
            self._iot.attach_policy(policyName=self._claim_policy, target=arn)
        except Exception:
            # An active certificate without its policy can do nothing, but it should not linger active.
            self._iot.update_certificate(
                certificateId=certificate_id, newStatus=CertificateStatus.INACTIVE.value
            )
            raise
