"""`chargenet diagnostics get` on what a charger uploaded: untrusted bytes. The operator API's
answer is a stand-in; the file comes through its pre-signed URL (here a local file URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chargenet_cli import diagnostics_cmd
from chargenet_cli.main import main
from tests.unit.test_local_alarms import template  # noqa: F401 - fixture

KEY = "diagnostics/CP-1/20250301T090000Z.log"


class FakeApi:
    """The two reads `diagnostics get` makes: the listing (for the latest) and the file's URL."""

    def __init__(self, upload: Path) -> None:
        self.upload = upload
        self.asked: list[str] = []

    def paginate(self, path: str, params: Any = None, action: str = "") -> Any:
        self.asked.append(path)
        yield {"name": KEY.rsplit("/", 1)[1], "key": KEY, "bytes": self.upload.stat().st_size}

    def get(self, path: str, params: Any = None, action: str = "") -> dict[str, Any]:
        self.asked.append(path)
        return {"key": KEY, "bytes": self.upload.stat().st_size, "url": self.upload.as_uri()}


@pytest.fixture
def uploaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    upload = tmp_path / "upload.log"
    fake = FakeApi(upload)
    monkeypatch.setattr(diagnostics_cmd, "api", lambda args: fake)
    return upload


def test_printed_files_lose_terminal_control_sequences(uploaded, capsys, tmp_path) -> None:
    hostile = (
        "boot ok\r\n"
        "\x1b]0;owned\x07\x1b[2J\x1b[1;31mred\x1b[0m \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\\n"
        "over\rwritten \x9b6n\x00\x07\x7fend\ttab\n"
    )
    uploaded.write_bytes(hostile.encode())

    assert main(["diagnostics", "get", "CP-1"]) == 0
    printed = capsys.readouterr().out
    assert printed == "boot ok\nred link\noverwritten 6nend\ttab\n"

    saved = tmp_path / "raw.log"  # saved to a file: the charger's bytes, untouched
    assert main(["diagnostics", "get", "CP-1", "--output", str(saved)]) == 0
    assert saved.read_bytes() == hostile.encode()


def test_a_file_over_the_limit_is_refused_with_a_message_and_never_read(
    uploaded, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(diagnostics_cmd, "MAX_FILE_BYTES", 1024)
    uploaded.write_bytes(b"x" * 1025)
    urlopen = diagnostics_cmd.urllib.request.urlopen
    monkeypatch.setattr(diagnostics_cmd.urllib.request, "urlopen", _never)

    assert main(["diagnostics", "get", "CP-1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"chargenet: error: {KEY} is 1025 bytes, over the 1024-byte limit for diagnostics files: "
        "not read (the bucket deletes such files after a day)\n"
    )
    monkeypatch.setattr(diagnostics_cmd.urllib.request, "urlopen", urlopen)
    uploaded.write_bytes(b"x" * 1024)
    assert main(["diagnostics", "get", "CP-1", "20250301T090000Z.log"]) == 0


def test_a_file_that_grew_after_the_api_measured_it_is_cut_off_at_the_limit(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(diagnostics_cmd, "MAX_FILE_BYTES", 1024)
    grown = tmp_path / "grown.log"
    grown.write_bytes(b"x" * 4096)

    with pytest.raises(diagnostics_cmd.CliError, match="grew over the 1024-byte limit"):
        diagnostics_cmd.download(grown.as_uri(), KEY, 10)


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("an oversized file is never downloaded")


def test_the_bucket_expires_what_the_cli_refuses_to_read(template) -> None:  # noqa: F811
    rules = template.resources["DiagnosticsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [oversized] = [rule for rule in rules if "ObjectSizeGreaterThan" in rule]
    assert int(oversized["ObjectSizeGreaterThan"]) == diagnostics_cmd.MAX_FILE_BYTES
    assert (oversized["Status"], oversized["ExpirationInDays"]) == ("Enabled", 1)
    assert oversized["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}  # the bucket is versioned


def test_the_limit_is_documented_where_operators_read_about_diagnostics() -> None:
    manual = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()
    assert f"{diagnostics_cmd.MAX_FILE_BYTES // (1024 * 1024)} MiB" in manual
