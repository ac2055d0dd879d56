"""`charger add --password-stdin` takes only passwords the gateway's rules allow, before anything is made."""

from __future__ import annotations

import io

import pytest

from chargenet_cli import charger_cmd
from chargenet_cli.main import main


@pytest.mark.parametrize("password", ["hunter2", "fifteen-chars-x"])
def test_charger_add_refuses_a_password_under_16_bytes(monkeypatch, capsys, password: str) -> None:
    # Issue 20: any non-empty password was hashed and stored ("1234" included).
    monkeypatch.setattr(charger_cmd.local_env, "connect", lambda home: None)  # refused before any use
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{password}\n"))

    assert main(["charger", "add", "CP-short-pw", "--password-stdin"]) == 2
    assert capsys.readouterr().err == (
        "chargenet: error: password too short: at least 16 bytes (OCPP security profiles 1 and 2)\n"
    )
