"""The logs of an end-to-end run on the real local stack hold no secrets, card data or full tags.

One run (module fixture): a charger enrolled with a Basic Auth password, a driver paying through
the pay link with the test card and charging, a subscriber signing up on the hosted setup page
and authorized by RFID tag, an unknown tag refused, and a certificate rotation with
`chargenet charger rotate`. Then every log file under the stack's home (the stack log with every
function's output, mosquitto's, localstripe's) and everything the operator CLI printed is
scanned; each finding names the file and line.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from chargenet.domain.models import mask_tag
from chargenet_shim.credentials import ChargerCredentials
from tests.integration.payment_flow import TEST_CARD, assign_tariff, captured_payment, drive_paid_session
from tests.integration.test_local_stripe import VISA
from tests.integration.test_subscriptions_e2e import MEMBER_TARIFF, authorize, subscribe

CHARGENET = [sys.executable, "-m", "chargenet_cli.main"]
PLAN = "SUB-LOGS"


@dataclass
class RunLogs:
    """What the run used (to look for) and what it wrote (to look in)."""

    home: Path
    charger_id: str
    password: str
    tags: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # the Stripe secrets' values in the stack
    cli_output: list[tuple[str, str]] = field(default_factory=list)  # (command, stdout + stderr)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        env = {**os.environ, "CHARGENET_HOME": str(self.home)}
        done = subprocess.run(
            [*CHARGENET, *args], capture_output=True, text=True, env=env, input=stdin, timeout=120
        )
        self.cli_output.append((f"chargenet {' '.join(args)}", done.stdout + done.stderr))
        assert done.returncode == 0, done.stderr
        return done.stdout

    def lines(self) -> Iterator[tuple[str, int, str]]:
        """(where, line number, text) of every log file of the stack home and every CLI output."""
        for path in sorted(self.home.rglob("*.log")):
            with path.open(encoding="utf-8", errors="replace") as text:
                for number, line in enumerate(text, 1):
                    yield str(path.relative_to(self.home)), number, line
        for command, output in self.cli_output:
            for number, line in enumerate(output.splitlines(), 1):
                yield command, number, line


def _secret_values(stack: Any) -> list[str]:
    client = boto3.client("secretsmanager")
    return [client.get_secret_value(SecretId=arn)["SecretString"] for arn in stack.secrets.values()]


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory) -> RunLogs:
    charger_id = f"CP-{uuid.uuid4().hex[:8]}"
    logs = RunLogs(Path(stack.home), charger_id, password=f"pw-{uuid.uuid4().hex}")
    added = json.loads(
        logs.cli(
            "charger",
            "add",
            charger_id,
            "--site",
            "SITE-LOGS",
            "--password-stdin",
            "--json",
            stdin=logs.password,
        )
    )
    credentials = ChargerCredentials.load(Path(added["credentials_dir"]))

    assign_tariff(charger_id)
    payment = captured_payment(asyncio.run(drive_paid_session(stack, credentials)))
    logs.tags.append(payment.id_tag)

    tariff_file = tmp_path_factory.mktemp("log-hygiene") / "member.json"
    tariff_file.write_text(json.dumps(MEMBER_TARIFF))
    logs.cli("tariff", "set", str(tariff_file))
    logs.cli("plan", "add", PLAN, "--monthly-fee", "9.00", "--currency", "EUR", "--tariff", "SUB-MEMBER")
    subscriber = subscribe(stack, PLAN, VISA)
    logs.tags.append(subscriber["id_tag"])
    assert asyncio.run(authorize(credentials, subscriber["id_tag"])) == "Accepted"
    unknown = f"RFID{uuid.uuid4().hex[:12].upper()}"
    logs.tags.append(unknown)
    assert asyncio.run(authorize(credentials, unknown)) == "Invalid"

    logs.cli("charger", "rotate", charger_id)
    logs.secrets = _secret_values(stack)
    return logs


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


# 13-19 digits, optionally grouped by spaces or dashes, not part of a longer token; card
# numbers start with 2-6 (epoch-millisecond timestamps, which start with 1, are not cards).
CARD_LIKE = re.compile(r"(?<![\w.-])[2-6](?:[ -]?\d){12,18}(?![\w-])")


def _findings(run: RunLogs, pattern: re.Pattern[str], accept: Any = None) -> list[str]:
    found = []
    for where, number, line in run.lines():
        for match in pattern.finditer(line):
            if accept is None or accept(match.group(0)):
                found.append(f"{where}:{number}: {line.strip()[:200]}")
    return found


def _assert_absent(run: RunLogs, what: str, pattern: re.Pattern[str], accept: Any = None) -> None:
    found = _findings(run, pattern, accept)
    assert not found, f"{what} in the logs:\n" + "\n".join(found)


def test_the_run_wrote_function_broker_and_cli_logs(run):
    """The scan is only worth something if it read the run's logs."""
    names = {where for where, _, _ in run.lines()}
    assert {"stack.log"} <= names and any("mosquitto" in n for n in names), names
    assert run.charger_id in (run.home / "stack.log").read_text(errors="replace")
    assert any(command.startswith("chargenet charger rotate") for command, _ in run.cli_output)


def test_no_private_keys(run):
    _assert_absent(run, "a PEM private key", re.compile(r"PRIVATE KEY"))


def test_no_card_numbers(run):
    card = re.compile(re.escape(TEST_CARD["card_number"]) + "|" + re.escape(VISA))
    _assert_absent(run, "the test card number", card)
    _assert_absent(
        run, "a Luhn-valid card-like number", CARD_LIKE, lambda text: _luhn_valid(re.sub(r"\D", "", text))
    )


def test_no_cvc_values(run):
    _assert_absent(run, "a CVC value", re.compile(r"""(?i)cvc["']?\s*[:=]\s*["']?\d{3,4}|card\[cvc\]=\d"""))


def test_tags_appear_masked_only(run):
    for tag in run.tags:
        _assert_absent(run, f"the full tag {mask_tag(tag)}", re.compile(re.escape(tag)))


def test_no_stripe_keys_or_webhook_secrets(run):
    _assert_absent(
        run, "a Stripe key or webhook secret", re.compile(r"\b(?:sk|rk)_(?:test|live)_\w+|\bwhsec_\w+")
    )
    for value in run.secrets:
        _assert_absent(run, "a value of the stack's Stripe secrets", re.compile(re.escape(value)))


def test_no_basic_auth_password(run):
    _assert_absent(run, "the charger's Basic Auth password", re.compile(re.escape(run.password)))
