"""2.0.1 transactions through the whole local stack: TransactionEvents over mTLS on the 2.0.1
ingest rule -> ingest -> DynamoDB -> stream -> billing -> the same CDR a 1.6 session gets."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.models import TagStatus
from chargenet_shim.ocpp_version import OcppVersion
from tests.integration.conftest import RawCharger, eventually
from tests.ocpp201_station import meter_value

TARIFF = {
    "country_code": "SE",
    "party_id": "CGN",
    "id": "E2E-201",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": "0.30", "vat": "25", "step_size": 1},
                {"type": "PARKING_TIME", "price": "6.00", "vat": "25", "step_size": 60},
            ]
        }
    ],
    "last_updated": "2026-11-01T00:00:00Z",
}
TAG = "E2E-201-TAG"
# 250 000 -> 261 000 Wh is 11 kWh x 0.30 = 3.30 excl. VAT, 4.125 -> 4.13 incl.; parked from the
# SuspendedEV at minute 60 to the car leaving at 90: 0.5 h x 6.00 = 3.00 excl., 3.75 incl.
HAND_TOTAL_EXCL_VAT, HAND_TOTAL_INCL_VAT = Decimal("6.30"), Decimal("7.88")
# The tariff in the pay page's words: what the station shows its driver before the start.
PRICE = {
    "format": "UTF8",
    "language": "en",
    "content": "0.375 EUR/kWh incl. 25% VAT; idle fee 0.125 EUR/min (7.50 EUR/hour) while plugged in"
    " and not charging incl. 25% VAT",
}
# Recent enough that the idle-limit sweep never closes a session before its own events do.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def priced_201_charger(new_charger):
    credentials = new_charger(site="SITE-201")
    book = DynamoTariffBook()
    book.store("E2E-201", json.dumps(TARIFF), T0)
    book.assign("E2E-201", charger_id=credentials.charger_id)
    DynamoTagDirectory().put(TAG, TagStatus.ACCEPTED, 2, None)
    return credentials


def transaction_event(
    event_type: str, seq_no: int, minutes: float, wh: int, state: str, transaction_id: str, **extra: Any
) -> dict[str, Any]:
    context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(event_type, "Sample.Periodic")
    return {
        "eventType": event_type,
        "timestamp": at(minutes),
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id, "chargingState": state},
        "meterValue": [meter_value(at(minutes), wh, context)],
        **extra,
    }


def transaction(transaction_id: str) -> list[dict[str, Any]]:
    """Authorized at the start, 11 kW for an hour, suspended by the car, ended when it leaves."""
    token = {"idToken": TAG, "type": "ISO14443"}
    events = [
        transaction_event(
            "Started",
            0,
            0,
            250_000,
            "Charging",
            transaction_id,
            evse={"id": 1, "connectorId": 1},
            idToken=token,
        )
    ]
    for seq_no, minute in enumerate((15, 30, 45), start=1):
        events.append(
            transaction_event(
                "Updated", seq_no, minute, 250_000 + minute * 11_000 // 60, "Charging", transaction_id
            )
        )
    events.append(
        transaction_event(
            "Updated", 4, 60, 261_000, "SuspendedEV", transaction_id, triggerReason="ChargingStateChanged"
        )
    )
    ended = transaction_event(
        "Ended", 5, 90, 261_000, "Idle", transaction_id, triggerReason="EVDeparted", idToken=token
    )
    ended["transactionInfo"]["stoppedReason"] = "EVDisconnected"
    return [*events, ended]


async def send_all(charger: RawCharger, payloads: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    replies = []
    for number, (action, payload) in enumerate(payloads):
        await charger.send([2, f"m{number}", action, payload])
        reply = await charger.reply()
        assert reply[:2] == [3, f"m{number}"], reply
        replies.append(reply[2])
    return replies


def session_of(charger_id: str, transaction_id: str):  # type: ignore[no-untyped-def]
    store = DynamoSessionStore()
    session_id = store.session_id_of_transaction(charger_id, transaction_id)
    return store.get(session_id) if session_id is not None else None


def orphans_of(charger_id: str) -> list[Any]:
    store, found, start = DynamoSessionStore(), [], None
    while True:
        page = store.orphan_page(100, start)
        found += [orphan for orphan in page.items if orphan.charger_id == charger_id]
        if page.next_key is None:
            return found
        start = page.next_key


def test_a_metered_201_transaction_is_billed_to_the_cent_and_told_its_total_at_the_end(priced_201_charger):
    credentials = priced_201_charger
    events = transaction("TX-E2E-1")

    async def run() -> list[dict[str, Any]]:
        async with RawCharger(credentials, OcppVersion.V201) as charger:
            authorize = ("Authorize", {"idToken": {"idToken": TAG, "type": "ISO14443"}})
            # The Ended twice (a retry after a lost reply): billed once.
            return await send_all(
                charger, [authorize, *(("TransactionEvent", e) for e in [*events, events[-1]])]
            )

    authorized, started, *updated, ended, ended_again = asyncio.run(run())
    assert authorized == {"idTokenInfo": {"status": "Accepted", "personalMessage": PRICE}}
    assert started == {"idTokenInfo": {"status": "Accepted", "personalMessage": PRICE}}
    running = [Decimal(str(reply["totalCost"])) for reply in updated]
    assert running == sorted(running) and running[0] > 0  # the running cost only grows
    assert ended["idTokenInfo"] == {"status": "Accepted"}
    assert Decimal(str(ended["totalCost"])) == HAND_TOTAL_INCL_VAT == Decimal(str(ended_again["totalCost"]))
    session = eventually(lambda: session_of(credentials.charger_id, "TX-E2E-1"))
    record = eventually(lambda: DynamoCdrStore().get(session.session_id), timeout=20)
    assert (record.total_excl_vat, record.total_incl_vat, record.energy_wh) == (
        HAND_TOTAL_EXCL_VAT,
        HAND_TOTAL_INCL_VAT,
        11_000,
    )
    billed = eventually(
        lambda: (s := session_of(credentials.charger_id, "TX-E2E-1")) and s.state == "billed" and s
    )
    assert (billed.charger_transaction_id, billed.connector_id, billed.tariff_id) == (
        "TX-E2E-1",
        1,
        "E2E-201",
    )


def test_a_201_transaction_delivered_out_of_order_is_billed_the_same(priced_201_charger):
    credentials = priced_201_charger
    started, *updated, ended = transaction("TX-E2E-2")

    # An offline queue drained out of order: the Ended and a reading before the Started.
    first, rest = [{**ended, "offline": True}], [{**updated[2], "offline": True}, started, *updated]

    async def run(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with RawCharger(credentials, OcppVersion.V201) as charger:
            return await send_all(charger, [("TransactionEvent", event) for event in events])

    replies = asyncio.run(run(first))
    assert replies[0] == {"idTokenInfo": {"status": "Accepted"}}  # answered, kept until its Started
    (orphan,) = orphans_of(credentials.charger_id)  # for review while its Started is missing
    assert orphan.payload["transactionInfo"]["transactionId"] == "TX-E2E-2"
    asyncio.run(run(rest))
    session = eventually(lambda: session_of(credentials.charger_id, "TX-E2E-2"))
    record = eventually(lambda: DynamoCdrStore().get(session.session_id), timeout=20)
    assert (record.total_incl_vat, record.energy_wh) == (HAND_TOTAL_INCL_VAT, 11_000)
    assert orphans_of(credentials.charger_id) == []  # the Started resolved it


def test_a_201_start_on_plug_in_is_billed_to_the_member_who_authorizes_it_later(priced_201_charger):
    credentials = priced_201_charger
    member_tag = f"E2E-201-MEMBER-{credentials.charger_id}"
    book = DynamoTariffBook()
    energy_only = [{"price_components": [{"type": "ENERGY", "price": "0.20", "vat": "25", "step_size": 1}]}]
    member_tariff = {**TARIFF, "id": "E2E-201-MEMBER", "elements": energy_only}
    book.store("E2E-201-MEMBER", json.dumps(member_tariff), T0)
    book.assign_member(member_tag, "E2E-201-MEMBER")
    DynamoTagDirectory().put(member_tag, TagStatus.ACCEPTED, 1, None)
    token = {"idToken": member_tag, "type": "ISO14443"}
    events = [
        transaction_event(
            "Started",
            0,
            0,
            100_000,
            "EVConnected",
            "TX-E2E-3",
            evse={"id": 2},
            triggerReason="CablePluggedIn",
        ),
        transaction_event(
            "Updated", 1, 1, 100_000, "Charging", "TX-E2E-3", triggerReason="Authorized", idToken=token
        ),
        transaction_event("Ended", 2, 61, 111_000, "Idle", "TX-E2E-3", triggerReason="EVDeparted"),
    ]

    async def run() -> list[dict[str, Any]]:
        async with RawCharger(credentials, OcppVersion.V201) as charger:
            return await send_all(charger, [("TransactionEvent", event) for event in events])

    started, authorized, ended = asyncio.run(run())
    assert "idTokenInfo" not in started and authorized["idTokenInfo"] == {"status": "Accepted"}
    # 11 kWh at the member's 0.20/kWh: 2.20 excl. VAT, 2.75 incl.
    assert Decimal(str(ended["totalCost"])) == Decimal("2.75")
    session = eventually(lambda: session_of(credentials.charger_id, "TX-E2E-3"))
    assert (session.id_tag, session.tariff_id, session.connector_id) == (member_tag, "E2E-201-MEMBER", 2)
    record = eventually(lambda: DynamoCdrStore().get(session.session_id), timeout=20)
    assert record.total_incl_vat == Decimal("2.75")
