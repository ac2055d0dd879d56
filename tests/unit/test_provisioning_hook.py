"""The pre-provisioning hook: allow-listed serials only, each claimed once, a repeat by the same device kept."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargenet.domain.certificates import facts
from chargenet.domain.charger_ids import CHARGER_ID_PATTERN
from chargenet.domain.provisioning import AllowedSerial, Claim, ClaimVerdict, decide
from chargenet.services.provisioning import HookRequest, pre_provision

HOOK_DIR = Path(__file__).resolve().parents[2] / "functions" / "provisioning_hook"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
# IoT certificate ids of two batches' claim certificates.
BATCH = "a" * 64
OTHER_BATCH = "b" * 64


class FakeAllowList:
    """In memory, with the adapter's conditions: the claim and the registry record are one write."""

    def __init__(self) -> None:
        self.entries: dict[str, AllowedSerial] = {}
        self.registry: dict[str, str | None] = {}  # charger id -> key of the claim that created it
        self.reads = 0
        self.claims: list[Claim] = []

    def get(self, serial_number: str) -> AllowedSerial | None:
        self.reads += 1
        return self.entries.get(serial_number)

    def claim(self, claim: Claim) -> bool:
        entry = self.entries.get(claim.serial_number)
        if entry is None or entry.claimed_key not in (None, claim.device_key):
            return False
        if self.registry.get(claim.serial_number, claim.device_key) != claim.device_key:
            return False
        self.entries[claim.serial_number] = dataclasses.replace(
            entry,
            claimed_at=entry.claimed_at or claim.at,
            claimed_key=claim.device_key,
            certificate_id=claim.certificate_id,
        )
        self.registry[claim.serial_number] = claim.device_key
        self.claims.append(claim)
        return True

    def allow(self, serial_number: str, site_id: str, at: dt.datetime, claim_certificate_id: str) -> bool:
        if serial_number in self.entries:
            return False
        self.entries[serial_number] = AllowedSerial(
            serial_number, site_id, at, claim_certificate_id=claim_certificate_id
        )
        return True

    def list(self) -> list[AllowedSerial]:
        return sorted(self.entries.values(), key=lambda e: e.serial_number)


def certificate_pem(key: ec.EllipticCurvePrivateKey, common_name: str = "SN-1", days: int = 365) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def request(
    serial: str, pem: str, certificate_id: str = "c" * 64, claim_certificate: str = BATCH
) -> HookRequest:
    return HookRequest.model_validate(
        {
            "claimCertificateId": claim_certificate,
            "certificateId": certificate_id,
            "certificatePem": pem,
            "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/chargenet-chargers",
            "clientId": f"claim:{serial}",
            "parameters": {"SerialNumber": serial},
        }
    )


@pytest.fixture
def allow_list() -> FakeAllowList:
    allow_list = FakeAllowList()
    allow_list.allow("SN-1", "SITE-A", NOW, BATCH)
    return allow_list


def test_an_allow_listed_serial_is_granted_and_claimed(allow_list):
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()))

    answer = pre_provision(allow_list, request("SN-1", pem), NOW)

    assert answer.response() == {"allowProvisioning": True, "parameterOverrides": {"SiteId": "SITE-A"}}
    assert answer.verdict is ClaimVerdict.GRANTED
    [claim] = allow_list.claims
    assert claim.certificate_not_after == facts(pem).not_after
    assert allow_list.entries["SN-1"].claimed_at == NOW
    assert allow_list.registry == {"SN-1": claim.device_key}
    assert allow_list.reads == 1


def test_an_unknown_serial_is_refused_and_nothing_is_written(allow_list):
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()), "SN-2")

    answer = pre_provision(allow_list, request("SN-2", pem), NOW)

    assert answer.response() == {"allowProvisioning": False, "parameterOverrides": {}}
    assert answer.verdict is ClaimVerdict.UNKNOWN_SERIAL
    assert allow_list.claims == [] and allow_list.registry == {}


def test_a_serial_claimed_by_another_device_is_refused(allow_list):
    first, second = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    assert pre_provision(allow_list, request("SN-1", certificate_pem(first)), NOW).verdict.allowed

    answer = pre_provision(allow_list, request("SN-1", certificate_pem(second), "d" * 64), NOW)

    assert answer.response()["allowProvisioning"] is False
    assert answer.verdict is ClaimVerdict.CLAIMED_BY_ANOTHER
    assert allow_list.entries["SN-1"].certificate_id == "c" * 64  # the first claim stands


def test_the_same_device_retrying_is_allowed_again_even_with_a_fresh_certificate(allow_list):
    key = ec.generate_private_key(ec.SECP256R1())
    pre_provision(allow_list, request("SN-1", certificate_pem(key)), NOW)

    later = NOW + dt.timedelta(minutes=1)
    answer = pre_provision(allow_list, request("SN-1", certificate_pem(key), "e" * 64), later)

    assert answer.response() == {"allowProvisioning": True, "parameterOverrides": {"SiteId": "SITE-A"}}
    assert answer.verdict is ClaimVerdict.REPEATED
    assert allow_list.entries["SN-1"].claimed_at == NOW  # claimed once, when it was first claimed
    assert allow_list.entries["SN-1"].certificate_id == "e" * 64


# CP.1 and "SN-1\n": IoT refuses them as thing names, after the claim was written.
@pytest.mark.parametrize(
    "serial", ["", "-SN", "SN/1", "SN#", "SN+", "a" * 65, "claim:factory", "SN 1", "CP.1", "SN-1\n", "SN-¹"]
)
def test_a_malformed_serial_is_refused_without_a_read(allow_list, serial):
    allow_list.entries[serial] = AllowedSerial(serial, "", NOW)  # even if it were on the list
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()))

    answer = pre_provision(allow_list, request(serial, pem), NOW)

    assert answer.verdict is ClaimVerdict.MALFORMED_SERIAL
    assert answer.response()["allowProvisioning"] is False
    assert allow_list.reads == 0


def test_a_missing_serial_parameter_is_malformed(allow_list):
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()))
    no_serial = request("SN-1", pem).model_copy(update={"parameters": {}})

    assert pre_provision(allow_list, no_serial, NOW).verdict is ClaimVerdict.MALFORMED_SERIAL


def test_an_unreadable_certificate_is_refused(allow_list):
    answer = pre_provision(
        allow_list,
        request("SN-1", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----"),
        NOW,
    )

    assert answer.verdict is ClaimVerdict.BAD_CERTIFICATE
    assert allow_list.claims == []


def test_a_lost_race_or_a_taken_charger_id_is_refused(allow_list):
    allow_list.registry["SN-1"] = None  # provisioned by the CLI before, not by a claim
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()))

    answer = pre_provision(allow_list, request("SN-1", pem), NOW)

    assert answer.verdict is ClaimVerdict.CONFLICT
    assert answer.response()["allowProvisioning"] is False


def test_no_site_becomes_the_template_default():
    allow_list = FakeAllowList()
    allow_list.allow("SN-9", "", NOW, BATCH)
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()), "SN-9")

    assert pre_provision(allow_list, request("SN-9", pem), NOW).parameter_overrides == {"SiteId": "none"}


def test_decide_covers_every_state_of_an_entry():
    entry = AllowedSerial("SN-1", "", NOW, claim_certificate_id=BATCH)
    assert decide(None, "k", BATCH) is ClaimVerdict.UNKNOWN_SERIAL
    assert decide(entry, "k", BATCH) is ClaimVerdict.GRANTED
    assert decide(entry, "k", OTHER_BATCH) is ClaimVerdict.WRONG_BATCH
    assert decide(dataclasses.replace(entry, claim_certificate_id=None), "k", "") is ClaimVerdict.WRONG_BATCH
    claimed = dataclasses.replace(entry, claimed_key="k", claimed_at=NOW)
    assert decide(claimed, "k", BATCH) is ClaimVerdict.REPEATED
    assert decide(claimed, "other", BATCH) is ClaimVerdict.CLAIMED_BY_ANOTHER
    assert decide(claimed, "k", OTHER_BATCH) is ClaimVerdict.WRONG_BATCH


@pytest.mark.parametrize(
    "claim_certificate", [OTHER_BATCH, ""], ids=["another batch's claim certificate", "none named"]
)
def test_a_claim_with_another_batchs_claim_certificate_is_refused_and_nothing_is_written(
    allow_list, claim_certificate
):
    """A claim certificate stolen from one batch cannot claim the serials allowed under another."""
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()))

    answer = pre_provision(allow_list, request("SN-1", pem, claim_certificate=claim_certificate), NOW)

    assert answer.verdict is ClaimVerdict.WRONG_BATCH
    assert answer.response() == {"allowProvisioning": False, "parameterOverrides": {}}
    assert allow_list.claims == [] and allow_list.entries["SN-1"].claimed_key is None


def test_an_entry_allowed_before_batches_were_recorded_cannot_be_claimed(allow_list):
    allow_list.entries["SN-OLD"] = AllowedSerial("SN-OLD", "", NOW)  # no claim certificate recorded
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()), "SN-OLD")

    assert pre_provision(allow_list, request("SN-OLD", pem), NOW).verdict is ClaimVerdict.WRONG_BATCH


def test_the_device_key_is_named_by_its_public_key_whatever_the_certificate():
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    first, second = facts(certificate_pem(key, days=30)), facts(certificate_pem(key, days=60))

    assert first.public_key_sha256 == second.public_key_sha256 == hashlib.sha256(spki).hexdigest()
    assert first.not_after != second.not_after


def test_a_truncated_certificate_is_a_bad_certificate_not_a_crash(allow_list):
    pem = certificate_pem(ec.generate_private_key(ec.SECP256R1()), "SN-1")
    lines = pem.strip().splitlines()
    truncated = "\n".join([lines[0], *lines[1:4], lines[-1]])

    answer = pre_provision(allow_list, request("SN-1", truncated), NOW)

    assert answer.verdict is ClaimVerdict.BAD_CERTIFICATE and not allow_list.claims


def test_one_charger_id_pattern_in_the_cloud_and_its_copy_in_the_device_shim():
    from chargenet.services.ingest import CHARGER_ID_PATTERN as INGEST_PATTERN
    from chargenet_shim.credentials import CHARGER_ID_PATTERN as SHIM_PATTERN

    assert CHARGER_ID_PATTERN == INGEST_PATTERN == SHIM_PATTERN


@pytest.fixture
def hook(monkeypatch, allow_list):
    sys.path.insert(0, str(HOOK_DIR))
    try:
        module = importlib.import_module("app")
        monkeypatch.setattr(module, "allow_list", lambda: allow_list)
        yield module
    finally:
        sys.path.remove(str(HOOK_DIR))
        sys.modules.pop("app", None)


class Context:
    function_name = "ProvisioningHookFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ProvisioningHookFunction"
    aws_request_id = "req-1"


def test_the_handler_answers_iot_in_its_shape(hook, allow_list):
    event = request("SN-1", certificate_pem(ec.generate_private_key(ec.SECP256R1()))).model_dump(
        by_alias=True
    )

    assert hook.lambda_handler(event, Context()) == {
        "allowProvisioning": True,
        "parameterOverrides": {"SiteId": "SITE-A"},
    }


@pytest.mark.parametrize("event", [{}, {"certificateId": "x"}, {"certificateId": "x", "certificatePem": 5}])
def test_the_handler_refuses_an_unreadable_event(hook, allow_list, event):
    assert hook.lambda_handler(event, Context()) == {"allowProvisioning": False, "parameterOverrides": {}}
    assert allow_list.claims == []
