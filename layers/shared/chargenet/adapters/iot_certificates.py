"""Charger certificates in IoT Core's registry (locally: moto, signing with the local CA, see
chargenet_local.moto_iot)."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.certificates import CertificateStatus, ChargerCertificate
from chargenet.ports.certificates import CertificateAuthority

# IoT Core's MQTT over TLS with client certificates.
IOT_MQTT_PORT = 8883


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


@raises_store_unavailable
class IotChargerIdentities(IotCertificateAuthority):
    """What operators change in IoT's registry besides signing: things, revocations, the endpoint."""

    def __init__(self, charger_policy: str, ingest_rule: str) -> None:
        super().__init__(charger_policy)
        self._ingest_rule = ingest_rule

    def create_thing(self, charger_id: str, site_id: str) -> None:
        # Thing attributes cannot be empty.
        self._iot.create_thing(
            thingName=charger_id, attributePayload={"attributes": {"site": site_id or "none"}}
        )

    def revoke(self, charger_id: str, certificate_id: str) -> None:
        """REVOKED, its policies detached (reactivated by mistake, it would grant nothing), then
        detached from the thing: the charger's identity no longer includes it. Each step may be
        repeated: an interrupted revocation is finished by asking again."""
        self._iot.update_certificate(certificateId=certificate_id, newStatus=CertificateStatus.REVOKED.value)
        arn = self._iot.describe_certificate(certificateId=certificate_id)["certificateDescription"][
            "certificateArn"
        ]
        for policy in self._iot.list_attached_policies(target=arn)["policies"]:
            self._iot.detach_policy(policyName=policy["policyName"], target=arn)
        self._iot.detach_thing_principal(thingName=charger_id, principal=arn)

    def broker(self) -> dict[str, Any]:
        endpoint = self._iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        return {"mqtt_host": endpoint, "mqtt_port": IOT_MQTT_PORT, "ingest_rule": self._ingest_rule}


def thing_principals(iot: Any, thing_name: str) -> list[str]:
    """Every principal attached to the thing, all pages: ListThingPrincipals answers in pages, and
    a certificate on a later page (a retired or an unconfirmed one) must count like the first."""
    pages = iot.get_paginator("list_thing_principals").paginate(thingName=thing_name)
    return [arn for page in pages for arn in page["principals"]]
