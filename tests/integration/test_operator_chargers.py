"""Chargers through the operator API on the real local stack: `charger add` signed in as the admin
(the key made here, the certificate signed by IoT's CreateCertificateFromCsr), the charger boots
over the broker's mTLS, rotates, is revoked through the API (the live connection dropped, the
certificate refused from then on); a viewer's or finance operator's POST is 403 and creates
nothing in IoT or the registry; the audit trail holds the admin's and the technician's changes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from chargenet_cli.main import main
from chargenet_local.stack import StackState
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.link import ChargerLink, LinkError
from tests.integration.conftest import RawCharger, eventually, registry
from tests.integration.test_operator_journey import _call, _operator


def chargenet(stack: StackState, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["--home", stack.home, *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


async def boots(credentials: ChargerCredentials) -> None:
    async with RawCharger(credentials) as charger:
        await charger.send(
            [2, "boot-1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
        )
        reply = await charger.reply()
        assert reply[:2] == [3, "boot-1"] and reply[2]["status"] == "Accepted"


def statuses(charger_id: str) -> list[str]:
    iot = boto3.client("iot")
    return sorted(
        iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])["certificateDescription"]["status"]
        for arn in iot.list_thing_principals(thingName=charger_id)["principals"]
    )


def audited(stack: StackState, capsys: pytest.CaptureFixture[str], route: str, charger_id: str) -> list[Any]:
    """The day's audit records of `route` for the charger, as the admin lists them."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    trail = json.loads(chargenet(stack, capsys, "audit", "list", "--day", day, "--json"))
    return [r for r in trail if r["route"] == route and r["targets"].get("charger_id") == charger_id]


def test_add_boot_rotate_and_revoke_a_charger_through_the_operator_api(stack: StackState, capsys) -> None:
    charger_id = f"CP-api-{uuid.uuid4().hex[:6]}"
    added = json.loads(chargenet(stack, capsys, "charger", "add", charger_id, "--site", "SITE-API", "--json"))
    credentials = ChargerCredentials.load(Path(added["credentials_dir"]))
    assert FileKeyStore(credentials.key_path.parent).key_path.stat().st_mode & 0o777 == 0o600
    asyncio.run(boots(credentials))
    assert registry().get(charger_id).site_id == "SITE-API"

    old_certificate = credentials.cert_path.read_text()
    rotated = chargenet(stack, capsys, "charger", "rotate", charger_id)
    assert "certificate rotated" in rotated and credentials.cert_path.read_text() != old_certificate
    assert statuses(charger_id) == ["ACTIVE", "INACTIVE"]
    asyncio.run(boots(credentials))  # on the new certificate

    async def revoked_while_connected() -> None:
        link = ChargerLink(credentials)
        await link.connect()
        try:
            done = await asyncio.to_thread(
                chargenet, stack, capsys, "charger", "revoke", charger_id, "--reason", "stolen", "--json"
            )
            revoked.extend(json.loads(done)["certificate_ids"])
            assert len(revoked) == 2  # the inactive old one too
            await asyncio.wait_for(link.wait_offline(), 10)  # evicted by the local IoT's revocation
        finally:
            await link.close()
        with pytest.raises(LinkError):
            await ChargerLink(credentials).connect(timeout=8)

    revoked: list[str] = []
    asyncio.run(revoked_while_connected())
    assert statuses(charger_id) == []  # detached from the thing (DetachThingPrincipal)
    iot = boto3.client("iot")
    assert {
        iot.describe_certificate(certificateId=c)["certificateDescription"]["status"] for c in revoked
    } == {"REVOKED"}
    charger = registry().get(charger_id)
    assert charger.revoked_at is not None and charger.revocation_reason == "stolen"
    shown = json.loads(chargenet(stack, capsys, "charger", "show", charger_id, "--json"))
    assert shown["certificates"] == []
    for route, status in (("", 201), ("/{charger_id}/rotate", 200), ("/{charger_id}/revoke", 200)):
        records = audited(stack, capsys, f"/ops/v1/chargers{route}", charger_id)
        assert records and {(r["status"], r["username"]) for r in records} == {(status, "admin")}


@pytest.mark.parametrize("role", ["viewer", "finance"])
def test_a_wrong_roles_post_is_403_and_creates_nothing(
    stack: StackState, new_charger, tmp_path: Path, role: str
) -> None:
    token = _operator(stack, f"{role}-{uuid.uuid4().hex[:6]}", role)
    target = new_charger()
    base = stack.operator_api_url
    fresh = f"CP-no-{uuid.uuid4().hex[:6]}"
    csr = FileKeyStore(tmp_path / fresh).create_csr(fresh)
    calls = [
        ("POST", "/chargers", {"charger_id": fresh, "site": "S", "csr": csr}),
        ("POST", f"/chargers/{target.charger_id}/revoke", {}),
        ("POST", f"/chargers/{target.charger_id}/rotate", {"csr": csr}),
        ("PUT", "/sites/SITE-T/time-zone", {"time_zone": "Europe/Oslo"}),
        ("POST", "/provisioning/serials", {"serials": [fresh], "claim_certificate_id": "ab" * 32}),
    ]
    for method, path, body in calls:
        status, answer = _call(f"{base}{path}", token, method, body)
        assert (status, answer["error"]) == (403, "forbidden"), path
    assert registry().get(fresh) is None and registry().get(target.charger_id).revoked_at is None
    with pytest.raises(boto3.client("iot").exceptions.ResourceNotFoundException):
        boto3.client("iot").describe_thing(thingName=fresh)
    assert statuses(target.charger_id) == ["ACTIVE"]


def test_a_technicians_revocation_is_audited_with_who_and_the_charger(
    stack: StackState, new_charger, capsys
) -> None:
    technician = _operator(stack, f"tech-{uuid.uuid4().hex[:6]}", "technician")
    target = new_charger()
    status, _ = _call(f"{stack.operator_api_url}/chargers/{target.charger_id}/revoke", technician, "POST", {})
    assert status == 200
    eventually(lambda: statuses(target.charger_id) == [])  # revoked, then detached from its thing
    [record] = audited(stack, capsys, "/ops/v1/chargers/{charger_id}/revoke", target.charger_id)
    assert record["status"] == 200 and record["username"].startswith("tech-")
