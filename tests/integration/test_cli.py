"""The operator CLI against the running stack. The first test runs it as operators do, a separate
process through its entry point; the others run its commands in this process (cli_in_process),
without a new interpreter's start and imports per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.cli_in_process import admin_cli as cli

CHARGENET = [sys.executable, "-m", "chargenet_cli.main"]


def run(home: str | Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHARGENET_HOME": str(home)}
    return subprocess.run(
        [*CHARGENET, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60
    )


def test_status_json_lists_every_endpoint(stack):
    result = run(stack.home, "local", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["status"] == "ready"
    assert status["mqtt"] == f"mqtts://127.0.0.1:{stack.mqtt_port}"
    assert status["moto"] == stack.moto_url and status["iot_data"] == stack.iot_data_url
    assert {"ChargersTable", "PendingCallsTable", "IdempotencyTable", "SessionsTable", "CdrsTable"} <= set(
        status["tables"]
    )
    assert "IngestDeadLetterQueue" in status["queues"]


def test_add_list_show_a_charger(stack):
    added = cli(stack.home, "charger", "add", "CP-cli-1", "--site", "SITE-CLI", "--json")
    assert added.returncode == 0, added.stderr
    details = json.loads(added.stdout)
    credentials_dir = Path(details["credentials_dir"])
    assert (credentials_dir / "key.pem").stat().st_mode & 0o777 == 0o600
    assert json.loads((credentials_dir / "charger.json").read_text())["charger_id"] == "CP-cli-1"

    listed = json.loads(cli(stack.home, "charger", "list", "--json").stdout)
    [mine] = [c for c in listed if c["charger_id"] == "CP-cli-1"]
    assert (mine["site_id"], mine["online"], mine["connectors"]) == ("SITE-CLI", False, [])

    shown = cli(stack.home, "charger", "show", "CP-cli-1", "--json")
    assert shown.returncode == 0
    certificates = json.loads(shown.stdout)["certificates"]
    assert [c["status"] for c in certificates] == ["ACTIVE"]
    assert certificates[0]["certificate_id"] == details["certificate_id"]

    table = cli(stack.home, "charger", "list").stdout
    assert "CP-cli-1" in table and "SITE-CLI" in table


def test_bad_input_gets_a_message_and_non_zero_exit(stack, tmp_path):
    cli(stack.home, "charger", "add", "CP-cli-dup")
    duplicate = cli(stack.home, "charger", "add", "CP-cli-dup")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr

    unknown = cli(stack.home, "charger", "show", "CP-nope")
    assert unknown.returncode == 1 and "no charger CP-nope" in unknown.stderr

    invalid = cli(stack.home, "charger", "add", "../etc")
    assert invalid.returncode == 2 and "invalid charger id" in invalid.stderr

    empty_password = cli(stack.home, "charger", "add", "CP-cli-pw", "--password-stdin", stdin="\n")
    assert empty_password.returncode == 2 and "no password" in empty_password.stderr

    not_running = cli(tmp_path, "charger", "list")
    assert not_running.returncode == 1 and "not running" in not_running.stderr
    for result in (duplicate, unknown, invalid, not_running):
        assert "Traceback" not in result.stderr


def test_tariff_set_assign_list(stack):
    root = Path(__file__).resolve().parents[2]
    example = root / "docs" / "tariffs" / "example-tariff.json"
    tariff_id = json.loads(example.read_text())["id"]
    cli(stack.home, "charger", "add", "CP-cli-tariff")
    stored = cli(stack.home, "tariff", "set", str(example))
    assert stored.returncode == 0, stored.stderr
    assigned = cli(
        stack.home, "tariff", "assign", tariff_id, "--charger", "CP-cli-tariff", "--connector", "2"
    )
    assert assigned.returncode == 0, assigned.stderr
    listing = json.loads(cli(stack.home, "tariff", "list", "--json").stdout)
    assert {"scope": "CP-cli-tariff / 2", "tariff_id": tariff_id} in listing["assignments"]
    assert any("kWh" in line for line in listing["tariffs"][tariff_id])

    unknown = cli(stack.home, "tariff", "assign", "NOPE", "--default")
    assert unknown.returncode == 1 and "no tariff NOPE" in unknown.stderr
    no_charger = cli(stack.home, "tariff", "assign", tariff_id, "--charger", "CP-ghost")
    assert no_charger.returncode == 1 and "no charger CP-ghost" in no_charger.stderr
    bad = cli(stack.home, "tariff", "set", str(root / "template.yaml"))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
