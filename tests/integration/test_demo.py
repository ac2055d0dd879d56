"""`make run`'s command, end to end in its own stack: provision, connect, boot, charge, bill, faults, stop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal


def test_demo_brings_up_a_fleet_and_stops_the_stack(tmp_path):
    env = {**os.environ, "CHARGENET_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "chargenet_cli.main", "demo", "--chargers", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=420,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    fleet = [line.split() for line in lines if line.startswith("CP-")][:3]  # the fleet table
    assert [row[0] for row in fleet] == ["CP-001", "CP-002", "CP-003"]
    assert all(row[2] == "online" and row[-1] == "2:Available" for row in fleet)
    assert "registry: 3/3 chargers online" in result.stdout
    assert "billing: 3/3 sessions have a CDR" in result.stdout
    sessions = [line.split() for line in lines if line[:1].isdigit() and "CP-" in line]
    assert len(sessions) == 3 and all(row[-1] == "EUR" and Decimal(row[3]) > 0 for row in sessions)
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
    assert "reconciled with Stripe (3 CDRs, captured = CDR total incl. VAT): OK" in out
