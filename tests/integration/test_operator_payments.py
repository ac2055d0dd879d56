"""The payments area of the operator API on the real local stack (localstripe): finance refunds
part of a paid session through the CLI and sees it in `payment show`; a retried refund request
refunds once; reconcile finds no mismatch; a technician's refund is 403 and nothing is refunded
at Stripe; a viewer's plan is 403; the audit trail holds exactly the refunds."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chargenet_cli.provisioning import provision
from chargenet_shim.credentials import ChargerCredentials
from tests.integration.cli_in_process import admin_cli, operator_cli
from tests.integration.payment_flow import assign_tariff, captured_payment, drive_paid_session
from tests.integration.test_capture_failures_e2e import intent_at_stripe
from tests.integration.test_operator_journey import PASSWORD, _call, _operator


@pytest.fixture(scope="module")
def paid(stack):
    credentials = ChargerCredentials.load(provision(stack, "CP-opspay", "SITE-T", None).credentials_dir)
    assign_tariff(credentials.charger_id)
    since = datetime.now(UTC) - timedelta(seconds=1)
    return captured_payment(asyncio.run(drive_paid_session(stack, credentials))), since


def _refunded_at_stripe(stack, intent_id: str) -> int:
    return int(intent_at_stripe(stack, intent_id)["latest_charge"]["amount_refunded"])


def _audit(stack) -> list[dict[str, Any]]:
    listed = admin_cli(stack.home, "audit", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [
        r for r in json.loads(listed.stdout) if r["route"] in ("/ops/v1/refunds", "/ops/v1/plans/{plan_id}")
    ]


def test_finance_refunds_once_reconcile_matches_and_other_roles_are_refused(stack, paid, tmp_path):
    payment, since = paid
    session_id = payment.session_id
    url = stack.operator_api_url
    technician = _operator(stack, "opspay-tech", "technician")
    viewer = _operator(stack, "opspay-viewer", "viewer")
    finance = _operator(stack, "opspay-finance", "finance")
    before = _audit(stack)

    # A technician may not refund: 403, nothing refunded at Stripe, nothing recorded.
    status, answer = _call(f"{url}/refunds", technician, "POST", {"session_id": session_id})
    assert (status, answer["error"]) == (403, "forbidden")
    assert _refunded_at_stripe(stack, payment.payment_intent_id) == 0
    status, answer = _call(
        f"{url}/plans/opspay", viewer, "PUT", {"monthly_fee": "1.00", "currency": "EUR", "tariff": "x"}
    )
    assert (status, answer["error"]) == (403, "forbidden")

    # Finance, signed in with the CLI, refunds part of it.
    config = tmp_path / "finance"
    login = operator_cli(
        stack, config, "login", "--username", "opspay-finance", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert login.returncode == 0, login.stderr
    refunded = operator_cli(stack, config, "refund", session_id, "--amount", "1.00")
    assert refunded.returncode == 0, refunded.stderr
    assert "refunded 1.00 EUR" in refunded.stdout
    shown = json.loads(admin_cli(stack.home, "payment", "show", payment.payment_id, "--json").stdout)
    assert (shown["state"], shown["refunded"]) == ("refunded", "1.00 EUR")

    # The same request twice (a client's retry): refunded once.
    body = {"session_id": session_id, "amount": "0.50", "request_id": "opspay-retry-0001"}
    first = _call(f"{url}/refunds", finance, "POST", body)
    again = _call(f"{url}/refunds", finance, "POST", body)
    assert (first[0], again[0], again[1]["repeated"]) == (200, 200, True)
    assert again[1]["payment"]["refunded"] == "1.50 EUR"
    assert _refunded_at_stripe(stack, payment.payment_intent_id) == 150

    # Over-refund: 409, nothing more refunded.
    over = {"session_id": session_id, "amount": "99.00", "request_id": "opspay-over-0001"}
    status, _ = _call(f"{url}/refunds", finance, "POST", over)
    assert status == 409 and _refunded_at_stripe(stack, payment.payment_intent_id) == 150

    # Reconcile: this session's CDR matches Stripe.
    reconciled = admin_cli(stack.home, "reconcile", "--since", since.isoformat(), "--json")
    report = json.loads(reconciled.stdout)
    assert report["checked"] >= 1
    assert not [m for m in report["mismatches"] if m["cdr_id"] == payment.session_id]

    # The audit trail: the CLI's refund, the two copies, the over-refund; no refused request.
    records = [r for r in _audit(stack) if r not in before]
    assert sorted(r["status"] for r in records) == [200, 200, 200, 409]
    assert {r["username"] for r in records} == {"opspay-finance"}
    assert all(r["targets"]["session_id"] == session_id for r in records)
