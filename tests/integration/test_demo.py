"""`make run`'s command, end to end in its own stack: provision, connect, boot, charge, bill, faults,
drivers paying through the link, subscribers charging by tag and invoiced monthly, a certificate
rotation and a signed firmware rollout with a tampered image refused, stop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal

import pytest

from chargenet_local.stack import down


# The run's own limit is the subprocess timeout below; pytest's default (300 s) would cut it short.
@pytest.mark.timeout(480)
def test_demo_brings_up_a_fleet_and_stops_the_stack(tmp_path):
    env = {**os.environ, "CHARGENET_HOME": str(tmp_path)}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "chargenet_cli.main", "demo", "--chargers", "3"],
            capture_output=True,
            text=True,
            env=env,
            timeout=420,
        )
    finally:
        down(tmp_path)  # a demo killed on timeout cannot stop its stack itself
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    fleet = [line.split() for line in lines if line.startswith("CP-")][:3]  # the fleet table
    assert [row[0] for row in fleet] == ["CP-001", "CP-002", "CP-003"]
    assert all(row[2] == "online" and row[-1] == "2:Available" for row in fleet)
    assert "registry: 3/3 chargers online" in result.stdout
    # One network, two protocols: every third charger speaks 2.0.1, as the registry recorded at boot.
    assert "  OCPP 1.6: CP-001, CP-002\n  OCPP 2.0.1: CP-003\n" in result.stdout
    assert "billing: 3/3 sessions have a CDR" in result.stdout
    sessions = [line.split() for line in lines if line[:1].isdigit() and "CP-" in line]
    assert len(sessions) == 3 and all(row[-1] == "EUR" and Decimal(row[4]) > 0 for row in sessions)
    assert sorted((row[1], row[2]) for row in sessions) == [
        ("CP-001", "1.6"),
        ("CP-002", "1.6"),
        ("CP-003", "2.0.1"),
    ]
    revenue = sum(Decimal(row[-2]) for row in sessions)
    assert f"revenue: {revenue} EUR incl. VAT from 3 sessions" in result.stdout
    # The fault scenario: every injected fault paged, nothing else, and the fleet's health.
    faults = result.stdout[result.stdout.index("scenario demo:") :]
    for alert in ("GroundFailure on DEMO-F-002", "Offline on DEMO-F-003", "PowerAboveRating on DEMO-F-004"):
        assert f"] {alert}" in faults
    # The ground fault clears and the charger comes back within the run.
    assert "[RESOLVED] GroundFailure on DEMO-F-002" in faults and "[RESOLVED] Offline on DEMO-F-003" in faults
    assert "false alerts: none" in faults
    assert "fleet health, the scenario's chargers still connected:" in faults
    _assert_payments_reconcile(result.stdout)
    _assert_subscribers_reconcile(result.stdout)
    _assert_security(result.stdout)
    assert "stopping the local stack" in result.stdout
    assert not (tmp_path / "stack.json").exists()


PAID_ROW = re.compile(
    r"^\w+\s+(PAY-0\d/1)\s+[\d.]+\s+(.+?)\s+([\d.]+) EUR\s+([\d.]+) EUR\s+([\d.]+) EUR\s+(\w+)$"
)


def _assert_payments_reconcile(out: str) -> None:
    """Three drivers paid through the link, one pressed Stop; each capture is its CDR total at Stripe."""
    rows = {m[1]: m.groups()[1:] for line in out.splitlines() if (m := PAID_ROW.match(line))}
    assert sorted(rows) == ["PAY-01/1", "PAY-02/1", "PAY-03/1"], out
    assert rows["PAY-01/1"][0] == "driver pressed Stop"
    for _, cdr_total, captured, at_stripe, state in rows.values():
        assert cdr_total == captured == at_stripe and state == "captured"
    revenue = sum(Decimal(row[2]) for row in rows.values())
    assert f"revenue through the pay link: {revenue} EUR captured from 3 payments" in out
    assert "PAY-02/2: card declined: nothing held, the charger not started" in out
    # Each charger is started in its own version's words: PAY-02 speaks OCPP 2.0.1.
    assert "PAY-01/1: paid, RemoteStartTransaction, charging" in out
    assert "PAY-02/1: paid, RequestStartTransaction, charging" in out
    assert "reconciled with Stripe (3 CDRs, captured = CDR total incl. VAT): OK" in out


MEMBER_PRICE_PER_KWH = Decimal("0.35")  # demo_subscribers' member tariff: 0.28 + 25 % VAT, no other fee
USAGE_LINE = re.compile(
    r"^(\S+@example\.com)\s+in_\w+\s+Charging session (\d+): ([\d.]+) kWh, .+?\s+([\d.]+) EUR$"
)
FEE_LINE = re.compile(r"^(\S+@example\.com)\s+in_\w+\s+member monthly fee \d{4}-\d{2}\s+([\d.]+) EUR$")
INVOICE_ROW = re.compile(
    r"^(\S+@example\.com)\s+\w{3}-\*+\s+(\d+)\s+([\d.]+) EUR\s+([\d.]+) EUR\s+([\d.]+) EUR\s+([\d.]+) EUR\s+(\w+)$"
)


def _assert_subscribers_reconcile(out: str) -> None:
    """Three subscribers charge by tag at member prices, each CDR a usage line on a paid monthly invoice
    with the fee; the fourth's card was declined at setup, so its tag is refused."""
    lines = out.splitlines()
    assert "subscribers: plan member: 9.00 EUR a month, member tariff member-energy" in out
    assert "subscribers: 3 active, tags accepted at member prices" in out
    assert "dan@example.com's tag refused (Authorize: Blocked), no session" in out
    cdrs = dict(re.findall(r"session (\d+): CDR ([\d.]+) EUR incl. VAT, usage line ii_", out))
    usage = [m.groups() for line in lines if (m := USAGE_LINE.match(line))]
    assert sorted(email for email, *_ in usage) == ["ada@example.com"] * 2 + [
        "ben@example.com",
        "cleo@example.com",
    ]
    for _, session, kwh, amount in usage:
        # Member prices, not the network's (0.36/kWh and a start fee): the line is the CDR total.
        assert (
            amount
            == cdrs[session]
            == str((Decimal(kwh) * MEMBER_PRICE_PER_KWH).quantize(Decimal("0.01"), ROUND_HALF_UP))
        )
    fees = {m[1]: m[2] for line in lines if (m := FEE_LINE.match(line))}
    assert fees == {email: "9.00" for email in ("ada@example.com", "ben@example.com", "cleo@example.com")}
    invoices = {m[1]: m.groups()[1:] for line in lines if (m := INVOICE_ROW.match(line))}
    assert sorted(invoices) == sorted(fees), out
    for email, (sessions, used, fee, owed, paid, state) in invoices.items():
        own = [Decimal(amount) for e, _, _, amount in usage if e == email]
        assert int(sessions) == len(own) and Decimal(used) == sum(own) and fee == fees[email]
        assert Decimal(owed) == Decimal(used) + Decimal(fee) == Decimal(paid) and state == "paid"
    total = sum(Decimal(row[3]) for row in invoices.values())
    assert f"revenue from subscribers: {total} EUR = " in out
    assert f"reconciled with Stripe (3 invoices, {total} EUR paid = CDR totals incl. VAT + fees): OK" in out
    assert "dan@example.com: card declined at setup" in out


SECURITY_SITE = [f"DEMO-S-{n:03d}" for n in range(1, 7)]
# CHARGER VERSION STATE RUNNING "LAST FIRMWARE STATUS" REASON JOB (`chargenet firmware status`)
JOB_ROW = re.compile(r"^(DEMO-S-\d{3})\s+(\S+)\s+(\w+)\s+(\S+)\s+(\w+)\s+(\S+)\s+firmware-\S+$")


def _assert_security(out: str) -> None:
    """A certificate rotated and the charger back on the new one; a signed release installed on the
    rollout's part of a site, the rest left on the factory firmware; a tampered image refused."""
    from chargenet.domain.firmware import in_rollout

    part = out[out.index("certificate rotation (chargenet charger rotate DEMO-S-001):") :]
    old = re.search(r"old certificate (\w+)\.\.\.\s+(\w+)", part)
    new = re.search(r"new certificate (\w+)\.\.\.\s+ACTIVE", part)
    assert old and new and old[1] != new[1] and old[2] == "INACTIVE", part
    assert "DEMO-S-001 on the new certificate: online, BootNotification in the registry at" in part
    status = part[part.index("(chargenet firmware status):") : part.index("'s journal of the update:")]
    jobs = {m[1]: m.groups()[1:] for line in status.splitlines() if (m := JOB_ROW.match(line))}
    picked = [c for c in SECURITY_SITE if in_rollout(c, "0.2.0", 30)]
    assert 0 < len(picked) < len(SECURITY_SITE)
    tampered = next(c for c in SECURITY_SITE if c not in picked)
    assert jobs == {
        **{c: ("0.2.0", "installed", "0.2.0", "Installed", "-") for c in picked},
        tampered: ("0.3.0", "refused", "0.1.0", "InstallationFailed", "InvalidFirmwareSignature"),
    }, status
    journal = part[part.index("'s journal of the update:") : part.index("the chargers left out still run")]
    steps = [
        "firmware Downloaded",
        "firmware Installing",
        "Hard reset",
        "boot accepted",
        "firmware Installed",
    ]
    positions = [journal.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), journal
    fleet = [
        line.split() for line in part.splitlines() if line.startswith("DEMO-S-") and "SITE-DEMO-S" in line
    ]
    # CHARGER SITE STATE OCPP VENDOR MODEL FIRMWARE ...
    assert {row[0]: (row[2], row[6]) for row in fleet} == {
        c: ("online", "0.2.0" if c in picked else "0.1.0") for c in SECURITY_SITE
    }
    assert f"tampered firmware 0.3.0 on {tampered}: refused, nothing installed" in part
    assert "firmware InvalidSignature: image SHA-256 differs from the manifest's" in part
    assert "backend: security_event fault InvalidFirmwareSignature, severity major" in part
