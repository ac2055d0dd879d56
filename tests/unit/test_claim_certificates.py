"""Claim certificates (chargenet.adapters.iot_claim_certificates) over an in-memory IoT registry, and
what `chargenet provisioning claim-certificate | revoke-claim-certificate` check before calling the
operator API. The routes: tests/unit/test_operator_chargers.py; the adapter and the CLI against the
local stack: tests/integration/test_provisioning_cloud.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chargenet.adapters.iot_claim_certificates import IotClaimCertificates
from chargenet.ports.provisioning import NotAClaimCertificate, UnknownCertificate
from chargenet_cli.main import main as chargenet

CLAIM_POLICY = "ClaimPolicy"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nclaim\n-----END CERTIFICATE REQUEST-----\n"


class FakeIot:
    """The IoT registry calls the adapter makes (boto3's argument names): certificates with a
    status and attached policies."""

    class exceptions:
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, *, refuse_attach: bool = False) -> None:
        self.status: dict[str, str] = {}
        self.policies: dict[str, set[str]] = {}
        self._refuse_attach = refuse_attach

    def create_certificate_from_csr(
        self, certificateSigningRequest: str, setAsActive: bool
    ) -> dict[str, Any]:
        certificate_id = f"c{len(self.status)}"
        self.status[certificate_id] = "ACTIVE" if setAsActive else "INACTIVE"
        self.policies[self._arn(certificate_id)] = set()
        return {
            "certificateId": certificate_id,
            "certificateArn": self._arn(certificate_id),
            "certificatePem": f"PEM {certificate_id}",
        }

    def attach_policy(self, policyName: str, target: str) -> None:
        if self._refuse_attach:
            raise RuntimeError("no such policy")
        self.policies[target].add(policyName)

    def detach_policy(self, policyName: str, target: str) -> None:
        self.policies[target].discard(policyName)

    def list_attached_policies(self, target: str) -> dict[str, Any]:
        return {"policies": [{"policyName": name} for name in sorted(self.policies[target])]}

    def describe_certificate(self, certificateId: str) -> dict[str, Any]:
        if certificateId not in self.status:
            raise self.exceptions.ResourceNotFoundException(certificateId)
        return {
            "certificateDescription": {
                "certificateId": certificateId,
                "certificateArn": self._arn(certificateId),
                "certificatePem": f"PEM {certificateId}",
                "status": self.status[certificateId],
            }
        }

    def update_certificate(self, certificateId: str, newStatus: str) -> None:
        self.status[certificateId] = newStatus

    @staticmethod
    def _arn(certificate_id: str) -> str:
        return f"arn:aws:iot:us-east-1:123456789012:cert/{certificate_id}"


def test_a_claim_certificate_is_signed_active_with_the_claim_policy():
    iot = FakeIot()
    issued = IotClaimCertificates(CLAIM_POLICY, iot).issue(CSR)
    assert iot.status[issued.certificate_id] == "ACTIVE"
    assert iot.policies[FakeIot._arn(issued.certificate_id)] == {CLAIM_POLICY}
    assert issued.certificate_pem == f"PEM {issued.certificate_id}"


def test_a_certificate_the_claim_policy_cannot_be_attached_to_is_not_left_active():
    iot = FakeIot(refuse_attach=True)
    with pytest.raises(RuntimeError):
        IotClaimCertificates(CLAIM_POLICY, iot).issue(CSR)
    assert list(iot.status.values()) == ["INACTIVE"]


def test_revoking_a_claim_certificate_revokes_it_and_detaches_the_policy_once():
    iot = FakeIot()
    claims = IotClaimCertificates(CLAIM_POLICY, iot)
    issued = claims.issue(CSR)
    claims.revoke(issued.certificate_id)
    assert iot.status[issued.certificate_id] == "REVOKED"
    assert iot.policies[FakeIot._arn(issued.certificate_id)] == set()
    claims.revoke(issued.certificate_id)  # at least once: a repeat changes nothing
    assert iot.status[issued.certificate_id] == "REVOKED"


def test_only_claim_certificates_are_revoked_here():
    iot = FakeIot()
    charger = iot.create_certificate_from_csr(CSR, setAsActive=True)
    iot.attach_policy("ChargerPolicy", charger["certificateArn"])
    claims = IotClaimCertificates(CLAIM_POLICY, iot)
    with pytest.raises(NotAClaimCertificate):
        claims.revoke(charger["certificateId"])
    assert iot.status[charger["certificateId"]] == "ACTIVE"
    with pytest.raises(UnknownCertificate):
        claims.revoke("no-such-certificate")


PROD = ["--stack", "prod"]


@pytest.mark.parametrize(
    ("where", "arguments", "message"),
    [
        ([], ["claim-certificate", "--out", "{out}", "--root-ca", "{pem}"], "--root-ca only with --stack"),
        (PROD, ["claim-certificate", "--out", "{out}"], "--stack needs --root-ca"),
        (PROD, ["claim-certificate", "--out", "{out}", "--root-ca", "{pem}"], "not a PEM certificate"),
        ([], ["claim-certificate", "--out", "{full}"], "is not empty"),
        ([], ["revoke-claim-certificate", "abc"], "invalid certificate id 'abc'"),
    ],
)
def test_claim_certificate_options_are_checked_before_anything_is_asked(
    where: list[str], arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    not_pem = tmp_path / "root.pem"
    not_pem.write_text("not a certificate")
    full = tmp_path / "full"
    full.mkdir()
    (full / "claim.key").write_text("an earlier bundle")
    out = tmp_path / "bundle"
    filled = [a.format(out=out, pem=not_pem, full=full) for a in arguments]
    assert chargenet(["--home", str(tmp_path / "no-stack"), *where, "provisioning", *filled]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
