"""`chargenet diagnostics get` on what a charger uploaded: untrusted bytes (moto's S3 in process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chargenet_cli import diagnostics_cmd
from chargenet_cli.main import main
from tests.unit.test_local_alarms import template  # noqa: F401 - fixture

BUCKET = "diagnostics-test"
KEY = "diagnostics/CP-1/20250301T090000Z.log"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DIAGNOSTICS_BUCKET", BUCKET)
    # The stack's endpoints come from its state file; here the bucket is moto's, in process.
    monkeypatch.setattr(diagnostics_cmd.local_env, "connect", lambda home: None)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_printed_files_lose_terminal_control_sequences(s3, capsys, tmp_path) -> None:
    hostile = (
        "boot ok\r\n"
        "\x1b]0;owned\x07\x1b[2J\x1b[1;31mred\x1b[0m \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\\n"
        "over\rwritten \x9b6n\x00\x07\x7fend\ttab\n"
    )
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=hostile.encode())

    assert main(["diagnostics", "get", "CP-1"]) == 0
    printed = capsys.readouterr().out
    assert printed == "boot ok\nred link\noverwritten 6nend\ttab\n"

    saved = tmp_path / "raw.log"  # saved to a file: the charger's bytes, untouched
    assert main(["diagnostics", "get", "CP-1", "--output", str(saved)]) == 0
    assert saved.read_bytes() == hostile.encode()


def test_a_file_over_the_limit_is_refused_with_a_message_and_never_read(s3, capsys, monkeypatch) -> None:
    monkeypatch.setattr(diagnostics_cmd, "MAX_FILE_BYTES", 1024)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * 1025)

    assert main(["diagnostics", "get", "CP-1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"chargenet: error: {KEY} is 1025 bytes, over the 1024-byte limit for diagnostics files: "
        "not read (the bucket deletes such files after a day)\n"
    )
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * 1024)
    assert main(["diagnostics", "get", "CP-1"]) == 0


def test_the_bucket_expires_what_the_cli_refuses_to_read(template) -> None:  # noqa: F811
    rules = template.resources["DiagnosticsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [oversized] = [rule for rule in rules if "ObjectSizeGreaterThan" in rule]
    assert int(oversized["ObjectSizeGreaterThan"]) == diagnostics_cmd.MAX_FILE_BYTES
    assert (oversized["Status"], oversized["ExpirationInDays"]) == ("Enabled", 1)
    assert oversized["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}  # the bucket is versioned


def test_the_limit_is_documented_where_operators_read_about_diagnostics() -> None:
    manual = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()
    assert f"{diagnostics_cmd.MAX_FILE_BYTES // (1024 * 1024)} MiB" in manual
