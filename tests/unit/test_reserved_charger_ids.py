"""`charger add` refuses the broker's backend user, as fleet provisioning does."""

from __future__ import annotations

import pytest

from chargenet_cli import charger_cmd
from chargenet_cli.errors import UsageError
from chargenet_cli.main import main
from chargenet_cli.provisioning import check_charger_id
from chargenet_local.broker import BACKEND_USER


def test_the_backend_user_is_not_a_charger_id() -> None:
    # A certificate with this CN would be the broker user whose ACL reads and writes every charger.
    with pytest.raises(UsageError, match="reserved for the backend"):
        check_charger_id(BACKEND_USER)
    check_charger_id("chargenet-backend-2")  # only the name itself is reserved


def test_charger_add_refuses_it_with_a_message_and_a_usage_exit(monkeypatch, capsys) -> None:
    monkeypatch.setattr(charger_cmd.local_env, "connect", lambda home: None)  # refused before any use

    assert main(["charger", "add", BACKEND_USER, "--site", "SITE-1"]) == 2
    assert capsys.readouterr().err == (
        f"chargenet: error: charger id '{BACKEND_USER}' is reserved for the backend's broker connection\n"
    )
