"""`chargenet firmware`: the parts that need no stack (rollout selection, metadata, the key file,
each charger's latest rollout)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from chargenet.domain.firmware import Release, in_rollout, is_semantic_version, select_targets
from chargenet_cli.errors import UsageError
from chargenet_cli.firmware_cmd import check_semantic, ensure_key, latest_per_charger
from chargenet_cli.main import parser
from chargenet_firmware_format import OperatorKey, Target, sign


# ------------------------------------------------------------------ rollout
def test_rollout_percent_picks_a_stable_growing_share_of_the_fleet():
    fleet = [f"CP-{n:04d}" for n in range(2000)]
    chosen = {percent: {c for c in fleet if in_rollout(c, "1.1.0", percent)} for percent in (10, 50, 100)}

    assert chosen[10] <= chosen[50] <= chosen[100] == set(fleet)
    assert 150 < len(chosen[10]) < 250 and 900 < len(chosen[50]) < 1100
    # The same answer every time, and another release starts on other chargers.
    assert chosen[10] == {c for c in fleet if in_rollout(c, "1.1.0", 10)}
    assert chosen[10] != {c for c in fleet if in_rollout(c, "1.2.0", 10)}


def test_targets_are_the_named_chargers_once_each_within_the_percentage():
    fleet = ["CP-3", "CP-1", "CP-2"]

    assert select_targets(fleet, "1.1.0", 100) == ["CP-1", "CP-2", "CP-3"]
    assert select_targets(["CP-3", "CP-3"], "1.1.0", 100) == ["CP-3"]
    assert select_targets(fleet, "1.1.0", 50) == [c for c in sorted(fleet) if in_rollout(c, "1.1.0", 50)]


def test_status_keeps_each_chargers_execution_of_the_latest_job():
    def execution(charger_id: str, job: str, created: str) -> dict[str, object]:
        return {"charger_id": charger_id, "job_id": job, "job_created_at": created, "version": job}

    shown = latest_per_charger(
        [
            execution("CP-2", "1.2.0", "2026-11-26T09:05:00+00:00"),
            execution("CP-1", "1.1.0", "2026-11-26T09:00:00+00:00"),
            execution("CP-2", "1.1.0", "2026-11-26T09:00:00+00:00"),
        ]
    )

    assert [(r["charger_id"], r["version"]) for r in shown] == [("CP-1", "1.1.0"), ("CP-2", "1.2.0")]
    assert "job_created_at" not in shown[0]  # the records print as they always did


# ------------------------------------------------------- metadata and inputs
def test_release_metadata_round_trips_through_s3_user_metadata():
    release = Release("1.1.0", "ab" * 32, 1234, "cd" * 32, "2026-11-26T09:00:00+00:00")

    assert all(isinstance(v, str) and k == k.lower() for k, v in release.metadata().items())
    assert Release.from_metadata(release.metadata()) == release


def test_versions_must_be_semantic():
    assert check_semantic("1.2.3-rc.1") == "1.2.3-rc.1"
    with pytest.raises(UsageError, match="not a semantic version"):
        check_semantic("v1.2")
    # The API's own check (it has no firmware format module) agrees.
    assert is_semantic_version("1.2.3-rc.1+build.7") and not is_semantic_version("v1.2")


def test_deploy_needs_exactly_one_target():
    args = parser().parse_args(["firmware", "deploy", "1.1.0", "--site", "S1", "--rollout-percent", "25"])
    assert (args.site, args.rollout_percent, args.force, args.charger) == ("S1", 25, False, None)
    assert args.max_per_minute == 50
    for wrong in (["firmware", "deploy", "1.1.0"], ["firmware", "deploy", "1.1.0", "--all", "--site", "S1"]):
        with pytest.raises(SystemExit):
            parser().parse_args(wrong)


# --------------------------------------------------------------- signing key
def test_the_operator_key_is_made_once_private_to_its_owner_and_signs_what_the_public_half_verifies(tmp_path):
    private, public = (
        tmp_path / "firmware" / "operator-key.pem",
        tmp_path / "firmware" / "operator-key.pub.pem",
    )

    made = ensure_key(private, public)

    assert private.stat().st_mode & 0o777 == 0o600
    assert (private.parent.stat().st_mode & 0o777) == 0o700
    assert ensure_key(private, public) == made
    assert b"PRIVATE" not in public.read_bytes()
    pinned = OperatorKey.from_pem(public.read_bytes())
    assert (
        sign(b"image", "1.0.0", made, target=Target("chargenet", "SimCharger")).signer_key_id == pinned.key_id
    )
    assert serialization.load_pem_private_key(made, password=None)


def test_a_deployed_stacks_releases_go_to_its_bucket_signed_with_its_kms_key(monkeypatch) -> None:
    import argparse

    from chargenet_cli import firmware_cmd, firmware_signing, operator_profile
    from chargenet_cli.errors import CliError

    outputs = {
        "FirmwareBucketName": "prod-firmware",
        "FirmwareSigningKeyAlias": "alias/prod-firmware-signing",
    }
    monkeypatch.setattr(operator_profile, "stack_outputs", lambda name: outputs if name == "prod" else {})
    monkeypatch.setattr(firmware_cmd.local_env, "connect", lambda home: pytest.fail("not the local stack"))
    monkeypatch.setattr(firmware_signing, "_kms_client", lambda: "kms-client")
    args = argparse.Namespace(stack="prod", home=None, key=None, kms_key_id=None)
    place = firmware_cmd.firmware_place(args)
    assert place.bucket == "prod-firmware"
    signer = firmware_cmd.operator_signer(args, place)
    assert isinstance(signer, firmware_signing.KmsSigner) and signer.key_id == "alias/prod-firmware-signing"
    with pytest.raises(CliError, match="no firmware bucket"):
        firmware_cmd.firmware_place(argparse.Namespace(stack="other", home=None))
