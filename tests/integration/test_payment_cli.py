"""The operator's payment commands against the running stack: list/show, settle, refund, qr, reconcile."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from chargenet.adapters.payments_dynamodb import DynamoPaymentStore
from chargenet_cli.errors import CliError
from chargenet_cli.provisioning import provision
from chargenet_shim.credentials import ChargerCredentials
from tests.integration.cli_in_process import admin_cli as run
from tests.integration.conftest import eventually
from tests.integration.payment_flow import api_key, assign_tariff, captured_payment, drive_paid_session
from tests.integration.test_capture_failures_e2e import CDR_TOTAL_MINOR, Faults, intent_at_stripe


@pytest.fixture(scope="module")
def paid(stack):
    """One session paid through the link and captured (5.63 EUR), and the time just before it."""
    credentials = ChargerCredentials.load(provision(stack, "CP-paycli", "SITE-T", None).credentials_dir)
    assign_tariff(credentials.charger_id)
    since = datetime.now(UTC) - timedelta(seconds=1)
    payment = captured_payment(asyncio.run(drive_paid_session(stack, credentials)))
    return payment, since


def reconcile(stack, since: datetime):
    return run(stack.home, "reconcile", "--since", since.isoformat(), "--json")


def test_list_and_show_give_state_amounts_session_cdr_total_and_stripe_ids(stack, paid):
    payment, _ = paid
    listed = run(stack.home, "payment", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [mine] = [p for p in json.loads(listed.stdout) if p["payment_id"] == payment.payment_id]
    assert (mine["state"], mine["held"], mine["captured"], mine["refunded"]) == (
        "captured",
        "50.00 EUR",
        "5.63 EUR",
        "0.00 EUR",
    )
    assert (mine["session_id"], mine["cdr_total_incl_vat"]) == (payment.session_id, "5.63 EUR")
    assert mine["stripe_payment_intent"].startswith("pi_")
    assert mine["stripe_checkout_session"].startswith("cs_")

    shown = run(stack.home, "payment", "show", payment.payment_id)
    assert shown.returncode == 0 and "captured: 5.63 EUR" in shown.stdout
    assert payment.payment_id in run(stack.home, "payment", "list").stdout
    missing = run(stack.home, "payment", "show", "nope")
    assert missing.returncode == 1 and "no payment nope" in missing.stderr


def test_qr_code_of_the_pay_link_as_svg_or_png(stack, paid, tmp_path):
    payment, _ = paid
    svg = run(stack.home, "qr", payment.charger_id, "1", "--svg")
    assert svg.returncode == 0, svg.stderr
    assert "<svg" in svg.stdout
    png = tmp_path / "qr.png"
    written = run(stack.home, "qr", payment.charger_id, "1", "--png", "--output", str(png))
    assert written.returncode == 0, written.stderr
    assert f"{stack.api_url}/pay/{payment.charger_id}/1" in written.stdout
    assert png.read_bytes().startswith(b"\x89PNG")
    text = run(stack.home, "qr", payment.charger_id, "1")
    assert text.returncode == 0 and text.stdout.strip().endswith(f"/pay/{payment.charger_id}/1")
    unknown = run(stack.home, "qr", "CP-none", "1")
    assert unknown.returncode == 1 and "no charger CP-none" in unknown.stderr


def test_refunds_partial_then_full_never_more_than_captured_and_reconcile_follows(stack, paid):
    payment, since = paid
    session = payment.session_id
    assert reconcile(stack, since).returncode == 0

    partial = run(stack.home, "refund", session, "--amount", "1.00")
    assert partial.returncode == 0, partial.stderr
    assert "refunded 1.00 EUR" in partial.stdout
    too_much = run(stack.home, "refund", session, "--amount", "4.64")
    assert too_much.returncode == 1 and "must be 1 to 463" in too_much.stderr
    bad = run(stack.home, "refund", session, "--amount", "0.001")
    assert bad.returncode == 1 and "more decimals than EUR" in bad.stderr  # the API's 400
    # An operator refund recorded on the payment is no mismatch.
    checked = reconcile(stack, since)
    assert checked.returncode == 0, checked.stdout
    assert json.loads(checked.stdout) == {"checked": 1, "mismatches": []}

    full = run(stack.home, "refund", session)
    assert full.returncode == 0, full.stderr
    shown = json.loads(run(stack.home, "payment", "show", payment.payment_id, "--json").stdout)
    assert (shown["state"], shown["refunded"], shown["kept"]) == ("refunded", "5.63 EUR", "0.00 EUR")
    nothing_left = run(stack.home, "refund", session)
    assert nothing_left.returncode == 1 and "must be 1 to 0" in nothing_left.stderr
    assert reconcile(stack, since).returncode == 0

    not_paid = run(stack.home, "refund", "no-such-session")
    assert not_paid.returncode == 1 and "no session" in not_paid.stderr


def test_reconcile_lists_money_moved_at_stripe_without_a_record(stack, new_charger):
    credentials = new_charger()
    assign_tariff(credentials.charger_id)
    since = datetime.now(UTC) - timedelta(seconds=1)
    payment = captured_payment(asyncio.run(drive_paid_session(stack, credentials)))
    # Someone refunds in Stripe's dashboard: the money left, nothing records it.
    refund = requests.post(
        f"{stack.stripe_api_base}/v1/refunds",
        data={"payment_intent": payment.payment_intent_id, "amount": 100},
        auth=(api_key(stack), ""),
        timeout=30,
    )
    assert refund.status_code == 200, refund.text

    checked = reconcile(stack, since)
    assert checked.returncode == 1, checked.stdout
    assert "do not match Stripe" in checked.stderr
    [mismatch] = json.loads(checked.stdout)["mismatches"]
    assert (mismatch["cdr_id"], mismatch["cdr_total"]) == (payment.session_id, "5.63 EUR")
    assert mismatch["problems"] == [
        f"refunds on {payment.payment_intent_id}: 1.00 EUR at Stripe, 0.00 EUR recorded",
        "amount differs: 4.63 EUR taken, CDR total 5.63 EUR",
    ]
    table = run(stack.home, "reconcile", "--since", since.isoformat())
    assert table.returncode == 1 and "amount differs" in table.stdout


def failed_payment(stack, credentials):
    """A paid session whose capture Stripe keeps failing, until the payment is failed."""
    from chargenet.domain.payments import PaymentConfig, PaymentState, token_digest

    faults = Faults(stack.stripe_faults_url)
    faults.clear()
    try:
        failing = faults.arm(("500", None))  # on this session's capture only
        session_url = asyncio.run(drive_paid_session(stack, credentials, before_stop=failing))
        payments = DynamoPaymentStore()
        token = token_digest(session_url.rsplit("/", 1)[1])
        retrying = eventually(
            lambda: (p := payments.by_token(token)) and p.capture_attempts >= 1 and p, timeout=60
        )
        # Only the count and the clock are moved: the sweep's last attempt is due now, not in an hour.
        last = PaymentConfig(holds={}).capture_max_attempts - 1
        due = retrying.model_copy(
            update={
                "capture_attempts": last,
                "next_attempt_at": datetime.now(UTC),
                "version": retrying.version + 1,
            }
        )
        assert payments.save(due)
        return eventually(
            lambda: (p := payments.get(retrying.payment_id)).state is PaymentState.FAILED and p, timeout=30
        )
    finally:
        faults.clear()  # Stripe is back


def test_a_failed_payment_is_settled_by_the_operator_once_for_the_cdr_total(stack, new_charger):
    from chargenet_cli.payment_cmd import list_payments, settle_payment, show_payment

    credentials = new_charger()
    assign_tariff(credentials.charger_id)
    payment = failed_payment(stack, credentials)
    assert intent_at_stripe(stack, payment.payment_intent_id)["status"] == "requires_capture"
    # In-process (each CLI run costs seconds): the listing and the details say what to do, the JSON stays data.
    human = argparse.Namespace(home=Path(stack.home), payment_id=payment.payment_id, json=False)
    assert "failed: settle with `chargenet payment settle SESSION`" in list_payments(human)
    assert "hint: settle with" in show_payment(human)
    assert "hint" not in show_payment(argparse.Namespace(**{**vars(human), "json": True}))

    settled = run(stack.home, "payment", "settle", payment.session_id)
    assert settled.returncode == 0, settled.stderr
    assert "captured: CDR total 5.63 EUR incl. VAT; captured 5.63 EUR" in settled.stdout
    intent = intent_at_stripe(stack, payment.payment_intent_id)
    assert (intent["status"], intent["amount_received"]) == ("succeeded", CDR_TOTAL_MINOR)

    again = argparse.Namespace(home=Path(stack.home), session_id=payment.session_id, cancel=False)
    with pytest.raises(CliError, match="captured, not failed"):
        settle_payment(again)
    assert intent_at_stripe(stack, payment.payment_intent_id)["amount_received"] == CDR_TOTAL_MINOR
    assert "state: captured" in show_payment(human)
