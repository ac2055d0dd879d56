"""Charger certificates in IoT Core's registry (locally: moto, signing with the local CA, see
chargenet_local.moto_iot)."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.certificates import CertificateStatus, ChargerCertificate
from chargenet.ports.certificates import CertificateAuthority


@raises_store_unavailable
class IotCertificateAuthority(CertificateAuthority):
    def __init__(self, charger_policy: str | None = None) -> None:
        # The template's ChargerPolicy: what lets a certificate connect as its thing, and only that.
        self._charger_policy = charger_policy or os.environ["CHARGER_POLICY_NAME"]

    @cached_property
    def _iot(self) -> Any:
        import boto3  # only when a certificate message arrives: keeps the ingest's cold start lean

        return boto3.client("iot")

    def issue(self, charger_id: str, csr_pem: str) -> ChargerCertificate:
        created = self._iot.create_certificate_from_csr(certificateSigningRequest=csr_pem, setAsActive=True)
        arn = created["certificateArn"]
        self._iot.attach_policy(policyName=self._charger_policy, target=arn)
        self._iot.attach_thing_principal(thingName=charger_id, principal=arn)
        return ChargerCertificate(
            created["certificateId"], created["certificatePem"], CertificateStatus.ACTIVE
        )

    def certificates_of(self, charger_id: str) -> list[ChargerCertificate]:
        found = []
        for arn in thing_principals(self._iot, charger_id):
            if ":cert/" not in arn:
                continue  # a thing's principals can also be Cognito identities
            described = self._iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])
            description = described["certificateDescription"]
            found.append(
                ChargerCertificate(
                    description["certificateId"],
                    description["certificatePem"],
                    CertificateStatus(description["status"]),
                    description.get("creationDate"),
                )
            )
        return found

    def retire(self, certificate_id: str) -> None:
        self._iot.update_certificate(certificateId=certificate_id, newStatus=CertificateStatus.INACTIVE.value)


def thing_principals(iot: Any, thing_name: str) -> list[str]:
    """Every principal attached to the thing, all pages: ListThingPrincipals answers in pages, and
    a certificate on a later page (a retired or an unconfirmed one) must count like the first."""
    pages = iot.get_paginator("list_thing_principals").paginate(thingName=thing_name)
    return [arn for page in pages for arn in page["principals"]]
