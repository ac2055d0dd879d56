"""`make run`'s command, end to end in its own stack: provision, connect over mTLS, boot, table, stop."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_brings_up_a_fleet_and_stops_the_stack(tmp_path):
    env = {**os.environ, "CHARGENET_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "chargenet_cli.main", "demo", "--chargers", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("CP-")]
    assert [row[0] for row in rows] == ["CP-001", "CP-002", "CP-003"]
    assert all(
        row[2] == "online" and "2:Available" in line
        for row, line in zip(
            rows, [line for line in result.stdout.splitlines() if line.startswith("CP-")], strict=True
        )
    )
    assert "3/3 chargers booted" in result.stdout
    assert "stopping the local stack" in result.stdout
    assert not (tmp_path / "stack.json").exists()
