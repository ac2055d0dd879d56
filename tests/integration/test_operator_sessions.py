"""The operator API's sessions area on the real local stack: a real charging session becomes a CDR;
a finance operator, signed in with the CLI, lists the session, shows and exports the CDR, credits
it and adds a tag; a technician's credit and a viewer's tariff are refused (403) and change
nothing; the audit trail holds exactly the changes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.models import TagStatus
from chargenet_local.stack import StackState
from tests.integration.cli_in_process import operator_cli
from tests.integration.conftest import RawCharger, eventually
from tests.integration.test_operator_journey import PASSWORD, _call, _operator
from tests.integration.test_sessions_e2e import TARIFF, Driver

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
TAG = "OPS-SESSIONS-TAG"


def ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _billed_session(new_charger: Any) -> tuple[str, str]:
    """A real session on a charger of its own, priced with a tariff assigned to that charger only
    (set up directly: the network default stays the other tests'); its charger and session ids."""
    credentials = new_charger()
    book = DynamoTariffBook()
    book.store("OPS-SESS-1", json.dumps({**TARIFF, "id": "OPS-SESS-1"}), T0)
    book.assign("OPS-SESS-1", credentials.charger_id)
    DynamoTagDirectory().put(TAG, TagStatus.ACCEPTED, 5, None)

    async def run() -> int:
        async with RawCharger(credentials) as charger:
            return await Driver(charger).session(
                1,
                start=(ts(0), 10_000),
                readings=[(ts(10), 12_000)],
                stop=(ts(20), 14_000),
                free_at=ts(20),
                tag=TAG,
            )

    tx = str(asyncio.run(run()))
    eventually(lambda: DynamoCdrStore().get(tx), timeout=30)
    return credentials.charger_id, tx


def _signed_in(stack: StackState, config: Path, username: str) -> None:
    signed_in = operator_cli(
        stack, config, "login", "--username", username, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert signed_in.returncode == 0, signed_in.stderr


def test_finance_credits_a_real_sessions_cdr_a_technician_and_a_viewer_cannot_change_anything(
    stack: StackState, new_charger: Any, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    finance = f"finance-{suffix}"
    _operator(stack, finance, "finance")
    technician = _operator(stack, f"tech-{suffix}", "technician")
    viewer = _operator(stack, f"viewer-{suffix}", "viewer")
    _signed_in(stack, tmp_path, finance)
    charger_id, tx = _billed_session(new_charger)
    api = stack.operator_api_url

    listed = json.loads(
        operator_cli(stack, tmp_path, "session", "list", "--charger", charger_id, "--json").stdout
    )
    assert [(s["session_id"], s["state"], s["id_tag"]) for s in listed] == [
        (tx, "billed", "OPS-************")
    ]
    shown = json.loads(operator_cli(stack, tmp_path, "cdr", "show", tx).stdout)
    assert shown["id"] == tx and shown["total_cost"]["excl_vat"] == "1.20"  # 4 kWh x 0.30
    exported = operator_cli(stack, tmp_path, "cdr", "export", "--format", "csv").stdout.splitlines()
    assert exported[0].split(",")[:3] == ["session", "charger", "port"]
    assert any(line.startswith(f"{tx},{charger_id},1,") for line in exported)

    original = DynamoCdrStore().get(tx)
    # A technician may not credit: 403, no credit record, nothing in the trail.
    refused, answer = _call(f"{api}/cdrs/{tx}/credit", technician, "POST", {"reason": "not mine"})
    assert (refused, answer["error"]) == (403, "forbidden")
    assert DynamoCdrStore().get(f"{tx}-CREDIT") is None
    # A viewer may not store a tariff.
    tariff = json.dumps({**TARIFF, "id": f"OPS-VIEW-{suffix}"})
    assert _call(f"{api}/tariffs", viewer, "POST", {"tariff": tariff})[0] == 403
    assert DynamoTariffBook().tariff(f"OPS-VIEW-{suffix}") is None

    credited = operator_cli(stack, tmp_path, "cdr", "credit", tx, "--reason", "charger fault, refunded")
    assert credited.returncode == 0, credited.stderr
    assert credited.stdout.strip() == f"credit record {tx}-CREDIT: -1.50 EUR incl. VAT"  # 1.20 + 25 %
    assert DynamoCdrStore().get(tx) == original  # the CDR itself never changes
    again = operator_cli(stack, tmp_path, "cdr", "credit", tx, "--reason", "twice")
    assert again.returncode == 1 and "already has a credit record" in again.stderr

    added = operator_cli(stack, tmp_path, "tag", "add", f"OPSTAG{suffix}", "--max-concurrent", "2")
    assert (
        added.returncode == 0
        and added.stdout.strip() == "tag OPST********: Accepted, up to 2 concurrent session(s)"
    )
    tags = json.loads(operator_cli(stack, tmp_path, "tag", "list", "--json").stdout)
    assert "OPST********" in [t["id_tag"] for t in tags]
    assert f"OPSTAG{suffix}" not in json.dumps(tags)

    # The trail (read as the first admin, this process's sign-in): each change once, by finance.
    trail = json.loads(
        operator_cli(stack, Path(stack.home) / "operator-config", "audit", "list", "--json").stdout
    )
    credits = [
        e for e in trail if e["route"] == "/ops/v1/cdrs/{cdr_id}/credit" and e["targets"]["cdr_id"] == tx
    ]
    assert sorted((e["username"], e["status"], e["note"]) for e in credits) == [
        (finance, 201, "charger fault, refunded"),
        (finance, 409, "twice"),
    ]
    tag_entries = [e for e in trail if e["route"] == "/ops/v1/tags" and e["username"] == finance]
    assert [e["targets"] for e in tag_entries] == [{"id_tag": "OPST********"}]
    assert f"OPSTAG{suffix}" not in json.dumps(trail)
    assert all(e["username"] not in (f"tech-{suffix}", f"viewer-{suffix}") for e in trail)
