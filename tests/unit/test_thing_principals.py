"""Every place that lists a thing's principals reads all pages (ListThingPrincipals is paginated)."""

from datetime import UTC, datetime

import boto3
from botocore.stub import Stubber

from chargenet.adapters.iot_certificates import IotCertificateAuthority, thing_principals
from chargenet.domain.certificates import CertificateStatus

ARN = "arn:aws:iot:us-east-1:123456789012:cert/"
FIRST, SECOND = "a" * 64, "b" * 64


def paged_iot() -> tuple[object, Stubber]:
    iot = boto3.client("iot", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(iot)
    stubber.add_response(
        "list_thing_principals", {"principals": [ARN + FIRST], "nextToken": "page-2"}, {"thingName": "CP-1"}
    )
    stubber.add_response(
        "list_thing_principals", {"principals": [ARN + SECOND]}, {"thingName": "CP-1", "nextToken": "page-2"}
    )
    return iot, stubber


def test_thing_principals_reads_every_page():
    iot, stubber = paged_iot()
    with stubber:
        assert thing_principals(iot, "CP-1") == [ARN + FIRST, ARN + SECOND]
    stubber.assert_no_pending_responses()


def test_the_certificate_authority_sees_a_certificate_on_the_second_page():
    iot, stubber = paged_iot()
    created = datetime(2026, 11, 26, tzinfo=UTC)
    for certificate_id, status in ((FIRST, "INACTIVE"), (SECOND, "ACTIVE")):
        description = {
            "certificateId": certificate_id,
            "certificatePem": "pem",
            "status": status,
            "creationDate": created,
        }
        stubber.add_response(
            "describe_certificate", {"certificateDescription": description}, {"certificateId": certificate_id}
        )
    authority = IotCertificateAuthority("ChargerPolicy")
    authority.__dict__["_iot"] = iot  # the cached client property, stubbed
    with stubber:
        found = authority.certificates_of("CP-1")
    assert [(c.certificate_id, c.status, c.created_at) for c in found] == [
        (FIRST, CertificateStatus.INACTIVE, created),
        (SECOND, CertificateStatus.ACTIVE, created),
    ]
