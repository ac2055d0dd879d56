"""Subscribers end to end on the local stack: sign-up and hosted card setup, the tag refused until the
webhook activates it, a charging session priced with the member tariff, its CDR as an invoice item in
localstripe, the monthly invoice paid; a declining card blocks the tag and alerts the operator."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import stripe

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.domain.money import to_minor_units
from chargenet_cli.provisioning import provision
from chargenet_shim.credentials import ChargerCredentials
from tests.integration.cli_in_process import admin_cli
from tests.integration.conftest import RawCharger, eventually
from tests.integration.test_local_stripe import DECLINED_ON_CHARGE, VISA, pay

MEMBER_TARIFF = {
    "country_code": "SE",
    "party_id": "CGN",
    "id": "SUB-MEMBER",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": "0.20", "vat": "25", "step_size": 1}]}],
    "last_updated": "2026-11-01T00:00:00Z",
}


def chargenet(home: str | Path, *args: str) -> Any:
    done = admin_cli(home, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


@pytest.fixture(scope="module")
def plan(stack, tmp_path_factory) -> str:
    tariff_file = tmp_path_factory.mktemp("subscriptions") / "member.json"
    tariff_file.write_text(json.dumps(MEMBER_TARIFF))
    chargenet(stack.home, "tariff", "set", str(tariff_file))
    chargenet(
        stack.home,
        "plan",
        "add",
        "SUB-BASIC",
        "--monthly-fee",
        "9.00",
        "--currency",
        "EUR",
        "--tariff",
        "SUB-MEMBER",
    )
    assert any(p["plan_id"] == "SUB-BASIC" for p in chargenet(stack.home, "plan", "list", "--json"))
    return "SUB-BASIC"


@pytest.fixture(scope="module")
def client(stack) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_local_it", base_addresses={"api": stack.stripe_api_base})


def subscribe(stack, plan: str, card: str) -> dict[str, Any]:
    """Sign up, save the card on the hosted setup page, and wait for the webhook to activate."""
    tag = f"SUB{uuid.uuid4().hex[:8].upper()}"
    added = chargenet(
        stack.home,
        "subscriber",
        "add",
        "--email",
        f"{tag}@example.test",
        "--tag",
        tag,
        "--plan",
        plan,
        "--json",
    )
    assert added["state"] == "pending" and added["setup_url"].startswith(stack.checkout_url)
    status, _, page = pay(added["setup_url"], card)
    assert status == 303, page
    return eventually(lambda: _active(stack, tag), timeout=20)


def _active(stack, tag: str) -> dict[str, Any] | None:
    shown = chargenet(stack.home, "subscriber", "show", tag, "--json")
    return shown if shown["state"] == "active" else None


def charger_credentials(stack) -> ChargerCredentials:
    """A provisioned charger (conftest's new_charger, for a module-scoped fixture)."""
    done = provision(stack, f"CP-{uuid.uuid4().hex[:8]}", "SITE-SUB", None)
    return ChargerCredentials.load(done.credentials_dir)


def stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def call(charger: RawCharger, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    await charger.send([2, uuid.uuid4().hex[:12], action, payload])
    reply = await charger.reply()
    assert reply[0] == 3, reply
    return reply[2]


async def authorize(credentials: Any, tag: str) -> str:
    async with RawCharger(credentials) as charger:
        return (await call(charger, "Authorize", {"idTag": tag}))["idTagInfo"]["status"]


async def charge(credentials: Any, tag: str, start: datetime, wh: int) -> int:
    """Authorize, start, one reading, stop, connector free: a completed session of `wh` Wh."""
    async with RawCharger(credentials) as charger:
        assert (await call(charger, "Authorize", {"idTag": tag}))["idTagInfo"]["status"] == "Accepted"
        started = await call(
            charger,
            "StartTransaction",
            {"connectorId": 1, "idTag": tag, "meterStart": 100_000, "timestamp": stamp(start)},
        )
        assert started["idTagInfo"]["status"] == "Accepted"
        tx = started["transactionId"]
        end = start + timedelta(minutes=60)
        await call(
            charger,
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [
                    {
                        "timestamp": stamp(start + timedelta(minutes=30)),
                        "sampledValue": [{"value": str(100_000 + wh // 2)}],
                    }
                ],
            },
        )
        await call(
            charger,
            "StopTransaction",
            {"transactionId": tx, "meterStop": 100_000 + wh, "timestamp": stamp(end)},
        )
        await call(
            charger,
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": stamp(end)},
        )
        return tx


@pytest.fixture(scope="module")
def charged(stack, plan, client) -> dict[str, Any]:
    """A subscriber signed up on the hosted page, then one charging session by tag, billed."""

    credentials = charger_credentials(stack)
    pending_tag = f"SUB{uuid.uuid4().hex[:8].upper()}"
    chargenet(
        stack.home, "subscriber", "add", "--email", "p@example.test", "--tag", pending_tag, "--plan", plan
    )
    pending_status = asyncio.run(authorize(credentials, pending_tag))
    subscriber = subscribe(stack, plan, VISA)
    now = datetime.now(UTC).replace(microsecond=0)
    tx = asyncio.run(charge(credentials, subscriber["id_tag"], now - timedelta(minutes=90), wh=11_000))
    return {
        "pending_status": pending_status,
        "subscriber": subscriber,
        "session": DynamoSessionStore().get(str(tx)),
        "cdr": eventually(lambda: DynamoCdrStore().get(str(tx)), timeout=20),
        "period": f"{now:%Y-%m}",
    }


def test_a_subscriber_charges_by_tag_at_member_prices_and_each_cdr_is_a_usage_line(charged, client):
    assert charged["pending_status"] == "Blocked"  # signed up, no card saved yet
    subscriber, session, cdr = charged["subscriber"], charged["session"], charged["cdr"]
    assert subscriber["tag_status"] == "Accepted"
    customer = client.v1.customers.retrieve(subscriber["customer_id"])
    assert customer.invoice_settings.default_payment_method == subscriber["payment_method_id"] is not None
    assert session.tariff_id == "SUB-MEMBER"  # the member tariff, whatever the charger's tariff is
    assert str(cdr.total_incl_vat) == "2.75"  # 11 kWh x 0.20 + 25 % VAT

    def usage_items() -> list[Any]:
        items = client.v1.invoice_items.list({"customer": customer.id}).data
        return [i for i in items if i.metadata.to_dict().get("cdr_id") == cdr.cdr_id]

    [item] = eventually(usage_items, timeout=20)
    assert (item.amount, item.currency) == (to_minor_units(cdr.total_incl_vat, "EUR"), "eur")
    assert f"Charging session {session.session_id}: 11.000 kWh" in item.description


def test_the_monthly_invoice_holds_the_fee_and_the_usage_and_is_paid_once(stack, charged, client):
    tag, period = charged["subscriber"]["id_tag"], charged["period"]
    customer = charged["subscriber"]["customer_id"]
    eventually(lambda: client.v1.invoice_items.list({"customer": customer}).data, timeout=20)
    outcome = chargenet(stack.home, "subscriber", "invoice", "--period", period, "--json")
    assert outcome["paid"] >= 1
    [invoice] = client.v1.invoices.list({"customer": customer}).data
    assert invoice.status == "paid" and invoice.amount_paid == 900 + 275
    assert invoice.metadata.to_dict() == {"id_tag": tag, "period": period}
    # Again: idempotent per subscriber and period.
    chargenet(stack.home, "subscriber", "invoice", "--period", period, "--json")
    assert len(client.v1.invoices.list({"customer": customer}).data) == 1
    shown = chargenet(stack.home, "subscriber", "show", tag, "--json")
    assert [(i["period"], i["state"]) for i in shown["invoices"]] == [(period, "paid")]


def test_a_declined_invoice_blocks_the_tag_and_alerts_the_operator(stack, plan, client, new_charger):
    credentials = new_charger()
    subscriber = subscribe(stack, plan, DECLINED_ON_CHARGE)  # saved fine, declined when charged
    tag, customer = subscriber["id_tag"], subscriber["customer_id"]
    assert asyncio.run(authorize(credentials, tag)) == "Accepted"

    period = f"{datetime.now(UTC):%Y-%m}"
    outcome = chargenet(
        stack.home, "subscriber", "invoice", "--period", period, "--grace-days", "0", "--json"
    )
    assert outcome["failed"] >= 1 and outcome["blocked"] >= 1
    shown = chargenet(stack.home, "subscriber", "show", tag, "--json")
    assert (shown["state"], shown["tag_status"]) == ("blocked", "Blocked")
    assert [i["state"] for i in shown["invoices"]] == ["failed"]
    assert asyncio.run(authorize(credentials, tag)) == "Blocked"

    def alert() -> Any:
        # Not a fault alert: the on-call's e-mail only (locally the inbox), not the operator API.
        from chargenet_local.alert_sink import describe, read_inbox

        alerts = [describe(a) for a in read_inbox(Path(stack.home))]
        return next(
            (a for a in alerts if a["kind"] == "subscriber_blocked" and tag[:4] in a["subject"]), None
        )

    found = eventually(alert, timeout=20)
    assert found["severity"] == "major" and "blocked" in found["subject"]

    # The driver saves a working card and the operator re-runs the month: paid, the tag opens.
    [invoice] = client.v1.invoices.list({"customer": customer}).data
    method = client.v1.payment_methods.create(
        {"type": "card", "card": {"number": VISA, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    client.v1.payment_methods.attach(method.id, {"customer": customer})
    client.v1.customers.update(customer, {"invoice_settings": {"default_payment_method": method.id}})
    outcome = chargenet(stack.home, "subscriber", "invoice", "--period", period, "--json")
    assert outcome["paid"] >= 1
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert chargenet(stack.home, "subscriber", "show", tag, "--json")["state"] == "active"
    assert asyncio.run(authorize(credentials, tag)) == "Accepted"
