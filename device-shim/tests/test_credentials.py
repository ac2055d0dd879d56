import json
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from chargenet.ocpp.versions import OcppVersion as BackendOcppVersion
from chargenet_local.template import load
from chargenet_shim.credentials import ChargerCredentials, hash_password, verify_password
from chargenet_shim.ocpp_version import OcppVersion

ROOT = Path(__file__).resolve().parents[2]


def _credentials(folder, **changes) -> ChargerCredentials:
    fields = {
        "charger_id": "CP-001",
        "mqtt_host": "a1b2c3-ats.iot.eu-west-1.amazonaws.com",
        "mqtt_port": 8883,
        "ingest_rule": "chargenet_ocpp_ingest",
        "ca_path": folder / "ca.pem",
        "cert_path": folder / "cert.pem",
        "key_path": folder / "key.pem",
    }
    return ChargerCredentials(**{**fields, **changes})


def test_round_trip_keeps_every_field(tmp_path):
    original = _credentials(tmp_path, password_hash=hash_password("s3cret-of-16-bytes"))

    path = original.save(tmp_path)

    assert path == tmp_path / "charger.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ChargerCredentials.load(tmp_path) == original


def test_key_files_inside_the_folder_are_stored_relative_so_the_folder_can_move(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    _credentials(old).save(old)
    stored = json.loads((old / "charger.json").read_text())
    assert (stored["ca_path"], stored["cert_path"], stored["key_path"]) == ("ca.pem", "cert.pem", "key.pem")

    old.rename(tmp_path / "new")

    moved = ChargerCredentials.load(tmp_path / "new")
    assert moved.cert_path == (tmp_path / "new" / "cert.pem").resolve()


def test_key_files_outside_the_folder_stay_absolute(tmp_path):
    folder = tmp_path / "CP-001"
    folder.mkdir()
    shared_ca = tmp_path / "shared" / "ca.pem"
    _credentials(folder, ca_path=shared_ca).save(folder)

    assert json.loads((folder / "charger.json").read_text())["ca_path"] == str(shared_ca)
    assert ChargerCredentials.load(folder).ca_path == shared_ca


def test_topics_follow_the_iot_policy(tmp_path):
    creds = _credentials(tmp_path)

    assert creds.ingest_topic_for(OcppVersion.V16) == "$aws/rules/chargenet_ocpp_ingest/chargers/CP-001/in"
    assert creds.reply_topic == "chargers/CP-001/out"


def test_each_ocpp_version_has_its_own_ingest_rule_and_the_same_reply_topic(tmp_path):
    creds = _credentials(tmp_path)

    assert (
        creds.ingest_topic_for(OcppVersion.V201)
        == creds.ingest_topic_for("ocpp2.0.1")
        == "$aws/rules/chargenet_ocpp_ingest_ocpp201/chargers/CP-001/in"
    )
    with pytest.raises(ValueError, match=r"ocpp2\.1"):
        creds.ingest_topic_for("ocpp2.1")


def test_each_versions_ingest_topic_names_the_rule_the_template_makes_for_it(tmp_path):
    template = load(ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"})
    creds = _credentials(tmp_path, ingest_rule=template.parameters["IngestRuleName"])
    rules = {
        version: template.resolve(template.resources[name]["Properties"]["RuleName"])
        for version, name in ((OcppVersion.V16, "OcppIngestRule"), (OcppVersion.V201, "Ocpp201IngestRule"))
    }

    for version, rule in rules.items():
        assert creds.ingest_topic_for(version) == f"$aws/rules/{rule}/chargers/CP-001/in"


def test_the_shims_ocpp_versions_are_the_backends():
    assert {version.name: (version.value, version.schemas) for version in OcppVersion} == {
        version.name: (version.value, version.schemas) for version in BackendOcppVersion
    }


@pytest.mark.parametrize("charger_id", ["", "a/b", "CP+1", "CP#1", "..", ".hidden", "x" * 65])
def test_ids_that_would_break_topics_or_folders_are_rejected(tmp_path, charger_id):
    with pytest.raises(ValidationError):
        _credentials(tmp_path, charger_id=charger_id)


def test_a_malformed_password_hash_is_rejected_at_load(tmp_path):
    _credentials(tmp_path).save(tmp_path)
    stored = json.loads((tmp_path / "charger.json").read_text())
    (tmp_path / "charger.json").write_text(json.dumps({**stored, "password_hash": "plaintext"}))

    with pytest.raises(ValidationError, match="not a scrypt password hash"):
        ChargerCredentials.load(tmp_path)


def test_password_hash_verifies_only_the_right_password():
    stored = hash_password("correct horse battery")

    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterz", stored)
    assert not verify_password("", stored)
    assert "correct horse" not in stored


def test_password_hashes_are_salted():
    assert hash_password("same 16-byte pass") != hash_password("same 16-byte pass")


def test_empty_password_cannot_be_hashed():
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_a_password_under_16_bytes_cannot_be_hashed():
    # Issue 20: any non-empty password was taken ("1234" included).
    for short in ("1234", "fifteen-chars-x", "ä" * 7 + "x"):  # 4, 15 and 15 bytes
        with pytest.raises(ValueError, match="at least 16 bytes"):
            hash_password(short)
    assert verify_password("sixteen-chars-xx", hash_password("sixteen-chars-xx"))
