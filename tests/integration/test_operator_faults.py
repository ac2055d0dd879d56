"""Faults over the operator API on the real local stack: a technician signed in with the CLI lists,
shows, acknowledges and excludes a real charger's fault and reads its alert; a finance user's ack
and a viewer's are refused and change nothing; the audit trail holds exactly the allowed changes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from chargenet_local.stack import StackState
from tests.integration.cli_in_process import admin_cli, operator_cli
from tests.integration.conftest import eventually
from tests.integration.test_operator_journey import PASSWORD, _call, _faulted_charger, _operator


def test_a_technician_works_a_fault_with_the_cli_other_roles_cannot(
    stack: StackState, new_charger: Any, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    technician = f"tech-{suffix}"
    _operator(stack, technician, "technician")
    finance = _operator(stack, f"finance-{suffix}", "finance")
    viewer = _operator(stack, f"viewer-{suffix}", "viewer")
    signed_in = operator_cli(
        stack, tmp_path, "login", "--username", technician, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert signed_in.returncode == 0, signed_in.stderr

    def cli(*args: str) -> Any:
        done = operator_cli(stack, tmp_path, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    charger_id = _faulted_charger(new_charger)

    def listed() -> dict[str, Any] | None:
        faults = json.loads(cli("fault", "list", "--open", "--json"))
        return next(
            (f for f in faults if f["charger_id"] == charger_id and f["code"] == "GroundFailure"), None
        )

    fault = eventually(listed, timeout=20)
    fault_id, prefix = fault["fault_id"], fault["fault_id"][:12]
    assert prefix in cli("fault", "list")
    shown = json.loads(cli("fault", "show", prefix))
    assert (shown["fault_id"], shown["severity"]) == (fault_id, "safety_critical")

    # A safety-critical fault pages at once: the technician reads the alert the on-call was sent.
    def raised() -> dict[str, Any] | None:
        alerts = json.loads(cli("alert", "list", "--since", fault["first_seen"], "--json"))
        return next((a for a in alerts if a["attributes"]["fault_id"] == fault_id), None)

    alert = eventually(raised, timeout=20)
    assert (
        alert["kind"] == "raised" and charger_id in alert["subject"] and "GroundFailure" in alert["subject"]
    )

    # Finance and viewer may not acknowledge or exclude: 403, nothing changed, nothing audited.
    api = stack.operator_api_url
    for token in (finance, viewer):
        status, refused = _call(f"{api}/faults/{fault_id}/ack", token, "POST", {"note": "mine"})
        assert (status, refused["error"]) == (403, "forbidden")
        reason = {"reason": "vandalism"}
        assert _call(f"{api}/faults/{fault_id}/exclude", token, "POST", reason)[0] == 403
    status, seen = _call(f"{api}/faults/{fault_id}", viewer)
    assert status == 200 and (seen["acknowledged_by"], seen["excluded_reason"]) == (None, None)
    status, page = _call(f"{api}/faults?open=true", viewer)
    assert status == 200 and "items" in page

    acked = cli("fault", "ack", prefix, "--note", "on site tomorrow")
    assert f"fault {prefix} acknowledged by {technician}" in acked
    excluded = cli("fault", "exclude", prefix, "--reason", "utility_outage", "--note", "grid down")
    assert "excluded from uptime (utility_outage)" in excluded
    shown = json.loads(cli("fault", "show", fault_id))
    assert (shown["state"], shown["acknowledged_by"], shown["excluded_reason"]) == (
        "acknowledged",
        technician,
        "utility_outage",
    )
    # The technician has no reports.read: the CLI says so and exits non-zero.
    refused = operator_cli(stack, tmp_path, "report", "uptime", "--month", "2026-10")
    assert refused.returncode == 1 and "your role may not read reports" in refused.stderr

    # The admin's audit trail (this process's sign-in): exactly the technician's two changes.
    trail = json.loads(admin_cli(stack.home, "audit", "list", "--json").stdout)
    mine = sorted(
        (entry for entry in trail if entry.get("targets", {}).get("fault_id") == fault_id),
        key=lambda entry: entry["at"],
    )
    assert [(e["username"], e["route"], e["status"], e["note"]) for e in mine] == [
        (technician, "/ops/v1/faults/{fault_id}/ack", 200, "on site tomorrow"),
        (technician, "/ops/v1/faults/{fault_id}/exclude", 200, "grid down"),
    ]
    assert mine[1]["targets"] == {"fault_id": fault_id, "reason": "utility_outage"}


def test_fleet_health_and_uptime_follow_pages_and_refuse_the_wrong_role(
    stack: StackState, new_charger: Any
) -> None:
    charger_id = _faulted_charger(new_charger)
    api = stack.operator_api_url
    finance = _operator(stack, f"finance-{uuid.uuid4().hex[:6]}", "finance")
    assert _call(f"{api}/fleet/health", finance)[0] == 403  # chargers.read
    status, first = _call(f"{api}/reports/uptime?month=2026-10&limit=1", finance)
    # A page of one charger: a row per connector of it (another test's charger may lead the page).
    assert status == 200 and len({row["charger_id"] for row in first["items"]}) <= 1
    assert _call(f"{api}/reports/uptime?month=2026-13", finance)[0] == 400

    # The CLI (the admin) follows every page: the new charger is in the fleet's health.
    rows = json.loads(admin_cli(stack.home, "fleet", "health", "--json").stdout)
    assert charger_id in {row["charger_id"] for row in rows}
