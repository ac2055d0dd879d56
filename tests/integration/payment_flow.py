"""A driver paying through the link, driven frame by frame: shared by the payment integration tests.

Pay page -> checkout -> the local hosted page with a test card -> RemoteStartTransaction to a
raw charger -> StartTransaction, a meter reading, the driver's Stop -> StopTransaction ->
the connector free again, which completes the session: billing and capture follow.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import requests

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.payments_dynamodb import DynamoPaymentStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTariffBook
from tests.integration.conftest import RawCharger, eventually

TARIFF_ID = "PAY-E2E"
TARIFF = {
    "country_code": "SE",
    "party_id": "CGN",
    "id": TARIFF_ID,
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": "0.50", "vat": "25", "step_size": 1},
                {"type": "ENERGY", "price": "0.40", "vat": "25", "step_size": 1},
            ]
        }
    ],
    "last_updated": "2026-11-01T00:00:00Z",
}
TEST_CARD = {
    "email": "driver@example.com",
    "card_number": "4242424242424242",
    "expiry": "12/34",
    "cvc": "123",
}


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def assign_tariff(charger_id: str) -> None:
    book = DynamoTariffBook()
    book.store(TARIFF_ID, json.dumps(TARIFF), datetime.now(UTC))
    book.assign(TARIFF_ID, charger_id)


class Charger:
    """The charger's side, frame by frame: answers the backend's CALLs, sends its own."""

    def __init__(self, link: RawCharger) -> None:
        self.link = link
        self.n = 0

    async def call(self, action: str, payload: dict) -> dict:
        self.n += 1
        await self.link.send([2, f"c{self.n}", action, payload])
        reply = await self.link.reply()
        while reply[0] == 2 and reply[2] == "RemoteStartTransaction":
            # A late copy of the start (the webhook is delivered at least once): already charging.
            await self.link.send([3, reply[1], {"status": "Rejected"}])
            reply = await self.link.reply()
        assert reply[:2] == [3, f"c{self.n}"], reply
        return reply[2]

    async def expect_call(self, action: str, answer: dict) -> dict:
        frame = await self.link.reply(timeout=30)
        assert frame[0] == 2 and frame[2] == action, frame
        await self.link.send([3, frame[1], answer])
        return frame[3]

    async def status(self, status: str, at: datetime) -> None:
        await self.call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": stamp(at)},
        )


def pay_on_hosted_page(stack, charger_id: str) -> str:
    """Pay page -> checkout -> the hosted page with the test card; the driver's session URL."""
    page = requests.get(f"{stack.api_url}/pay/{charger_id}/1", timeout=30)
    assert page.status_code == 200, page.text
    assert "0.50 EUR/kWh incl. 25% VAT" in page.text and "50.00 EUR" in page.text
    checkout = requests.post(
        f"{stack.api_url}/pay/{charger_id}/1/checkout",
        data={"method": "card"},
        allow_redirects=False,
        timeout=30,
    )
    assert checkout.status_code == 303, checkout.text
    hosted = checkout.headers["Location"]
    assert hosted.startswith(stack.checkout_url)
    paid = requests.post(hosted, data=TEST_CARD, allow_redirects=False, timeout=30)
    assert paid.status_code == 303, paid.text
    return paid.headers["Location"]


async def drive_paid_session(
    stack, credentials, meter_stop_wh: int = 10000, before_stop: Callable[[str], None] | None = None
) -> str:
    """A paid session of `meter_stop_wh` over 30 minutes, stopped by the driver; its session URL.

    `before_stop` gets the session URL while the car charges, the payment authorized.
    """
    charger_id = credentials.charger_id
    async with RawCharger(credentials) as link:
        charger = Charger(link)
        await charger.status("Preparing", datetime.now(UTC))  # plugged in, waiting for payment
        pay_page = f"{stack.api_url}/pay/{charger_id}/1"
        # Payable once the charger's connection and status have reached the registry.
        await asyncio.to_thread(eventually, lambda: "<form" in requests.get(pay_page, timeout=30).text)
        session_url = await asyncio.to_thread(pay_on_hosted_page, stack, charger_id)
        start = await charger.expect_call("RemoteStartTransaction", {"status": "Accepted"})
        assert start["connectorId"] == 1
        # Timestamps half an hour back: 10 kWh in 30 minutes is within the charger's 22 kW.
        t0 = datetime.now(UTC) - timedelta(minutes=30)
        started = await charger.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": start["idTag"], "meterStart": 0, "timestamp": stamp(t0)},
        )
        assert started["idTagInfo"]["status"] == "Accepted"
        tx = started["transactionId"]
        await charger.status("Charging", t0)
        page = await asyncio.to_thread(requests.get, session_url, timeout=30)
        assert "Charging" in page.text and "Stop charging" in page.text
        await charger.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [
                    {
                        "timestamp": stamp(t0 + timedelta(minutes=15)),
                        "sampledValue": [{"value": str(meter_stop_wh // 2)}],
                    }
                ],
            },
        )
        if before_stop is not None:
            await asyncio.to_thread(before_stop, session_url)
        # The driver presses Stop: the charger is asked to stop, and does.
        stopped = await asyncio.to_thread(
            requests.post, f"{session_url}/stop", allow_redirects=False, timeout=30
        )
        assert stopped.status_code == 303, stopped.text
        assert await charger.expect_call("RemoteStopTransaction", {"status": "Accepted"}) == {
            "transactionId": tx
        }
        end = t0 + timedelta(minutes=30)
        await charger.call(
            "StopTransaction", {"transactionId": tx, "meterStop": meter_stop_wh, "timestamp": stamp(end)}
        )
        await charger.status("Available", end + timedelta(seconds=1))  # unplugged: the session completes
        return session_url


def captured_payment(session_url: str):
    """The driver's payment once captured (the pipeline is asynchronous)."""
    from chargenet.domain.payments import PaymentState, token_digest

    token = session_url.rsplit("/", 1)[1]
    payments = DynamoPaymentStore()
    try:
        return eventually(
            lambda: (p := payments.by_token(token_digest(token))) and p.state is PaymentState.CAPTURED and p,
            timeout=60,
        )
    except AssertionError as missing:
        raise AssertionError(
            f"not captured: {_where_it_stands(payments.by_token(token_digest(token)))}"
        ) from missing


def _where_it_stands(payment) -> str:
    if payment is None or payment.session_id is None:
        return f"payment {payment}"
    session = DynamoSessionStore().get(payment.session_id)
    return f"payment {payment}; session {session}; CDR {DynamoCdrStore().get(payment.session_id)}"


def api_key(stack) -> str:
    import boto3

    arn = stack.secrets["StripeApiKeySecret"]
    return boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
