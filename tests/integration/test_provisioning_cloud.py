"""`chargenet provisioning claim-certificate --cloud` and `revoke-claim-certificate --cloud`: the cloud
path, its IoT calls answered by the local stack's moto server (the account the environment points at)."""

from __future__ import annotations

import stat
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chargenet_cli.main import main as chargenet
from chargenet_local.pki import LocalCA
from chargenet_shim.claim import ClaimBundle

# Locally the claim policy is named by its logical id (chargenet_local.template.ref).
CLAIM_POLICY = "ProvisioningClaimPolicy"


def cloud(stack, *args: str) -> int:
    return chargenet(["--home", stack.home, "provisioning", *args, "--cloud", "--claim-policy", CLAIM_POLICY])


def describe(certificate_id: str) -> tuple[str, list[str]]:
    iot = boto3.client("iot")
    description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    policies = iot.list_attached_policies(target=description["certificateArn"])["policies"]
    return description["status"], [p["policyName"] for p in policies]


def test_a_cloud_claim_certificate_is_made_by_iot_with_the_claim_policy_then_revoked(stack, tmp_path: Path):
    out = tmp_path / "bundle"
    template = stack.provisioning_template
    assert (
        cloud(
            stack,
            "claim-certificate",
            "--out",
            str(out),
            "--template-name",
            template,
            "--root-ca",
            stack.ca_path,
        )
        == 0
    )

    bundle = ClaimBundle.load(out)
    assert describe(bundle.certificate_id) == ("ACTIVE", [CLAIM_POLICY])
    iot = boto3.client("iot")
    description = iot.describe_certificate(certificateId=bundle.certificate_id)["certificateDescription"]
    assert x509.load_pem_x509_certificate((out / "claim.pem").read_bytes()) == x509.load_pem_x509_certificate(
        description["certificatePem"].encode()
    )
    key = serialization.load_pem_private_key((out / "claim.key").read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate((out / "claim.pem").read_bytes())
    assert key.public_key() == certificate.public_key()
    assert stat.S_IMODE((out / "claim.key").stat().st_mode) == 0o600
    assert (out / "ca.pem").read_text() == Path(stack.ca_path).read_text()
    # The account's ATS data endpoint (moto makes up a new name at each DescribeEndpoint).
    assert bundle.mqtt_host.endswith(f"-ats.iot.{stack.region}.amazonaws.com")
    assert (bundle.mqtt_port, bundle.template_name) == (8883, template)

    assert cloud(stack, "revoke-claim-certificate", bundle.certificate_id) == 0
    assert describe(bundle.certificate_id) == ("REVOKED", [])
    assert cloud(stack, "revoke-claim-certificate", bundle.certificate_id) == 0  # a repeat changes nothing
    assert describe(bundle.certificate_id) == ("REVOKED", [])


def test_a_charger_certificate_is_not_revoked_as_a_claim_certificate(stack, new_charger, capsys):
    credentials = new_charger()
    [principal] = boto3.client("iot").list_thing_principals(thingName=credentials.charger_id)["principals"]
    certificate_id = principal.rsplit("/", 1)[-1]

    assert cloud(stack, "revoke-claim-certificate", certificate_id) == 1
    assert "is not a claim certificate" in capsys.readouterr().err
    assert describe(certificate_id) == ("ACTIVE", [stack.charger_policy])


@pytest.mark.parametrize("template_name", ["has spaces", "x" * 37])
def test_a_malformed_template_name_creates_no_certificate(stack, tmp_path: Path, capsys, template_name: str):
    before = len(boto3.client("iot").list_certificates(pageSize=250)["certificates"])
    out = tmp_path / "bundle"
    args = [
        "claim-certificate",
        "--out",
        str(out),
        "--template-name",
        template_name,
        "--root-ca",
        stack.ca_path,
    ]
    assert cloud(stack, *args) == 2
    assert "not a provisioning template name" in capsys.readouterr().err
    assert len(boto3.client("iot").list_certificates(pageSize=250)["certificates"]) == before
    assert not out.exists()


def test_the_local_path_issues_and_revokes_through_the_same_registry_calls(stack, tmp_path: Path):
    """Without --cloud: the stack's CA signs, moto's registry holds it, the broker's CRL gets it."""
    out = tmp_path / "bundle"
    assert chargenet(["--home", stack.home, "provisioning", "claim-certificate", "--out", str(out)]) == 0
    bundle = ClaimBundle.load(out)
    assert describe(bundle.certificate_id) == ("ACTIVE", [CLAIM_POLICY])
    assert stat.S_IMODE((out / "claim.key").stat().st_mode) == 0o600

    revoke = ["--home", stack.home, "provisioning", "revoke-claim-certificate", bundle.certificate_id]
    assert chargenet(revoke) == 0
    assert describe(bundle.certificate_id) == ("REVOKED", [])
    crl = x509.load_pem_x509_crl(LocalCA(Path(stack.home) / "ca").crl_path.read_bytes())
    serial = x509.load_pem_x509_certificate((out / "claim.pem").read_bytes()).serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
