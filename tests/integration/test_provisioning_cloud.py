"""`chargenet provisioning claim-certificate` and `revoke-claim-certificate` through the operator API
on the real local stack, signed in as the admin: the key made here, the certificate signed by IoT's
CreateCertificateFromCsr (moto, with the local CA) with the claim policy, revoked by
UpdateCertificate(REVOKED) onto the broker's CRL; a wrong role's call is 403 and changes nothing.
That a bundle claims a charger's identity, and cannot once revoked: test_fleet_provisioning_e2e.py."""

from __future__ import annotations

import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from chargenet.domain.provisioning import CLAIM_COMMON_NAME
from chargenet_cli.main import main as chargenet
from chargenet_local.pki import LocalCA
from chargenet_shim.claim import ClaimBundle
from chargenet_shim.keystore import FileKeyStore
from tests.integration.test_operator_journey import _call, _operator

# Locally the claim policy is named by its logical id (chargenet_local.template.ref).
CLAIM_POLICY = "ProvisioningClaimPolicy"
ISSUE = "/provisioning/claim-certificates"


def provisioning(stack, *args: str) -> int:
    return chargenet(["--home", stack.home, "provisioning", *args])


def describe(certificate_id: str) -> tuple[str, list[str]]:
    iot = boto3.client("iot")
    description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    policies = iot.list_attached_policies(target=description["certificateArn"])["policies"]
    return description["status"], [p["policyName"] for p in policies]


def certificate_count() -> int:
    return len(boto3.client("iot").list_certificates(pageSize=250)["certificates"])


def test_a_claim_bundle_is_issued_through_the_api_then_revoked_onto_the_crl(stack, tmp_path: Path, capsys):
    out = tmp_path / "bundle"
    assert provisioning(stack, "claim-certificate", "--out", str(out)) == 0

    bundle = ClaimBundle.load(out)
    assert describe(bundle.certificate_id) == ("ACTIVE", [CLAIM_POLICY])
    description = boto3.client("iot").describe_certificate(certificateId=bundle.certificate_id)
    certificate = x509.load_pem_x509_certificate((out / "claim.pem").read_bytes())
    assert certificate == x509.load_pem_x509_certificate(
        description["certificateDescription"]["certificatePem"].encode()
    )
    # The local broker's claim user: the CN the CLI asked for, signed by the local CA as asked.
    [common_name] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert common_name.value == CLAIM_COMMON_NAME
    key = serialization.load_pem_private_key((out / "claim.key").read_bytes(), password=None)
    assert key.public_key() == certificate.public_key()
    assert stat.S_IMODE((out / "claim.key").stat().st_mode) == 0o600
    assert (out / "ca.pem").read_text() == Path(stack.ca_path).read_text()
    assert (bundle.mqtt_host, bundle.mqtt_port) == (stack.mqtt_host, stack.mqtt_port)
    assert bundle.template_name == stack.provisioning_template

    assert provisioning(stack, "revoke-claim-certificate", bundle.certificate_id) == 0
    assert describe(bundle.certificate_id) == ("REVOKED", [])
    crl = x509.load_pem_x509_crl(LocalCA(Path(stack.home) / "ca").crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
    assert provisioning(stack, "revoke-claim-certificate", bundle.certificate_id) == 0  # changes nothing
    assert describe(bundle.certificate_id) == ("REVOKED", [])

    capsys.readouterr()
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert chargenet(["--home", stack.home, "audit", "list", "--day", day, "--json"]) == 0
    trail = capsys.readouterr().out
    assert trail.count(bundle.certificate_id) == 3  # issued, revoked, revoked again
    assert "BEGIN" not in trail  # neither the CSR nor the certificate


def test_a_charger_certificate_is_not_revoked_as_a_claim_certificate(stack, new_charger, capsys):
    credentials = new_charger()
    [principal] = boto3.client("iot").list_thing_principals(thingName=credentials.charger_id)["principals"]
    certificate_id = principal.rsplit("/", 1)[-1]

    assert provisioning(stack, "revoke-claim-certificate", certificate_id) == 1
    assert "is not a claim certificate" in capsys.readouterr().err
    assert describe(certificate_id) == ("ACTIVE", [stack.charger_policy])

    assert provisioning(stack, "revoke-claim-certificate", "ef" * 32) == 1
    assert f"there is no certificate {'ef' * 32}" in capsys.readouterr().err


@pytest.mark.parametrize("role", ["viewer", "finance"])
def test_a_wrong_roles_claim_certificate_calls_are_403_and_change_nothing(
    stack, tmp_path: Path, role: str
) -> None:
    out = tmp_path / "bundle"
    assert provisioning(stack, "claim-certificate", "--out", str(out)) == 0
    batch = ClaimBundle.load(out).certificate_id
    token = _operator(stack, f"{role}-{uuid.uuid4().hex[:6]}", role)
    before = certificate_count()

    csr = FileKeyStore(tmp_path / "keys").create_csr(CLAIM_COMMON_NAME)
    for path, body in ((ISSUE, {"csr": csr}), (f"{ISSUE}/{batch}/revoke", {})):
        status, answer = _call(f"{stack.operator_api_url}{path}", token, "POST", body)
        assert (status, answer["error"]) == (403, "forbidden"), path
    assert certificate_count() == before
    assert describe(batch) == ("ACTIVE", [CLAIM_POLICY])
