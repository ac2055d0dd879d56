"""OCPP 2.0.1 end to end with a real client nobody here wrote: the `ocpp` package's v201 ChargePoint.

v201 ChargePoint over `websockets` (subprotocol ocpp2.0.1) -> the shim gateway (Basic Auth,
profile 1) -> the charger's mTLS MQTT link, publishing to the 2.0.1 ingest rule's topic ->
mosquitto -> rules engine -> the same ingest function -> DynamoDB; and back. The same charger
registry, sessions, tariffs, CDRs, payments and faults as a 1.6 charger's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.client import ClientConnection, connect
from websockets.headers import build_authorization_basic

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.clock import utc_now
from chargenet.domain.models import TagStatus
from chargenet_shim.gateway import GatewayConfig, serve
from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import eventually, registry, sessions_of
from tests.integration.payment_flow import assign_tariff, captured_payment, pay_on_hosted_page, stamp

PASSWORD = "s3cret-for-the-2.0.1-site"
TARIFF = {
    "country_code": "SE",
    "party_id": "CGN",
    "id": "GW201-1",
    "currency": "SEK",
    "last_updated": "2026-01-01T00:00:00Z",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": "3.20", "vat": "25", "step_size": 1},
                {"type": "FLAT", "price": "2.00", "vat": "25", "step_size": 1},
            ]
        }
    ],
}


class Station(ChargePoint):
    """A 2.0.1 charging station that accepts the backend's remote start and stop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.remote_starts: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.remote_stops: asyncio.Queue[str] = asyncio.Queue()

    @on(Action.request_start_transaction)
    async def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **extra: Any):
        await self.remote_starts.put({"id_token": id_token, "remote_start_id": remote_start_id, **extra})
        return call_result.RequestStartTransaction(status="Accepted")

    @on(Action.request_stop_transaction)
    async def on_request_stop(self, transaction_id: str):
        await self.remote_stops.put(transaction_id)
        return call_result.RequestStopTransaction(status="Accepted")


@contextlib.asynccontextmanager
async def websocket_201(home: str, charger_id: str, **gateway_config: Any) -> AsyncIterator[ClientConnection]:
    """Profile 1 (Basic Auth) through a gateway run for the test, offering only ocpp2.0.1;
    `gateway_config`: more of the gateway's settings."""
    config = GatewayConfig(
        port=0, credentials_dir=Path(home) / "chargers", allow_plain_ws=True, **gateway_config
    )
    gateway = await serve(config)
    try:
        async with connect(
            f"ws://127.0.0.1:{gateway.port}/ocpp/{charger_id}",
            subprotocols=["ocpp2.0.1"],
            additional_headers={"Authorization": build_authorization_basic(charger_id, PASSWORD)},
        ) as websocket:
            assert websocket.subprotocol == "ocpp2.0.1"
            yield websocket
    finally:
        await gateway.close()


@contextlib.asynccontextmanager
async def station(home: str, charger_id: str, **gateway_config: Any) -> AsyncIterator[Station]:
    async with websocket_201(home, charger_id, **gateway_config) as websocket:
        charger = Station(charger_id, websocket, response_timeout=20)
        receiver = asyncio.create_task(charger.start())
        try:
            yield charger
        finally:
            receiver.cancel()


async def boot(charger: Station) -> call_result.BootNotification:
    return await charger.call(
        call.BootNotification(
            charging_station={"model": "Wallbox 201", "vendor_name": "Vendo", "firmware_version": "2.0.1-a"},
            reason="PowerUp",
        )
    )


def energy(at: datetime, wh: int, context: str = "Sample.Periodic") -> dict[str, Any]:
    return {
        "timestamp": stamp(at),
        "sampled_value": [{"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}],
    }


def test_a_201_station_boots_heartbeats_and_is_recorded_as_such(stack, new_charger):
    credentials = new_charger(site="SITE-201", password=PASSWORD)

    async def run():
        async with station(stack.home, credentials.charger_id) as charger:
            booted = await boot(charger)
            beat = await charger.call(call.Heartbeat())
            await charger.call(
                call.StatusNotification(
                    timestamp=stamp(datetime.now(UTC)),
                    connector_status="Available",
                    evse_id=1,
                    connector_id=1,
                )
            )
            online = await asyncio.to_thread(
                eventually, lambda: (c := registry().get(credentials.charger_id)) and c.online and c
            )
            return booted, beat, online

    booted, beat, recorded = asyncio.run(run())
    assert booted.status == "Accepted" and booted.interval == 300
    assert beat.current_time.endswith("Z")
    assert (recorded.ocpp_version, recorded.vendor, recorded.model) == ("ocpp2.0.1", "Vendo", "Wallbox 201")


def test_a_metered_201_transaction_is_billed_to_the_cent_and_shown_its_cost(stack, new_charger):
    credentials = new_charger(site="SITE-201", password=PASSWORD)
    DynamoTariffBook().store("GW201-1", json.dumps(TARIFF), utc_now())
    DynamoTariffBook().assign("GW201-1", credentials.charger_id)
    DynamoTagDirectory().put("GW201-TAG", TagStatus.ACCEPTED, 1, None)
    token = {"id_token": "GW201-TAG", "type": "ISO14443"}
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    async def run():
        async with station(stack.home, credentials.charger_id) as charger:
            await boot(charger)
            authorized = await charger.call(call.Authorize(id_token=token))
            tx = {"transaction_id": "tx-201-billed"}
            started = await charger.call(
                call.TransactionEvent(
                    event_type="Started",
                    timestamp=stamp(t0),
                    trigger_reason="Authorized",
                    seq_no=0,
                    transaction_info={**tx, "charging_state": "Charging"},
                    id_token=token,
                    evse={"id": 1, "connector_id": 1},
                    meter_value=[energy(t0, 12_000, "Transaction.Begin")],
                )
            )
            updated = await charger.call(
                call.TransactionEvent(
                    event_type="Updated",
                    timestamp=stamp(t0 + timedelta(minutes=20)),
                    trigger_reason="MeterValuePeriodic",
                    seq_no=1,
                    transaction_info=tx,
                    meter_value=[energy(t0 + timedelta(minutes=20), 15_500)],
                )
            )
            ended = await charger.call(
                call.TransactionEvent(
                    event_type="Ended",
                    timestamp=stamp(t0 + timedelta(minutes=40)),
                    trigger_reason="EVDeparted",
                    seq_no=2,
                    transaction_info={**tx, "stopped_reason": "EVDisconnected", "charging_state": "Idle"},
                    meter_value=[energy(t0 + timedelta(minutes=40), 19_000, "Transaction.End")],
                )
            )
            return authorized, started, updated, ended

    authorized, started, updated, ended = asyncio.run(run())
    assert authorized.id_token_info["status"] == "Accepted"
    assert started.id_token_info["status"] == "Accepted"
    # 3.5 kWh x 3.20 + 2.00 = 13.20 SEK excl. VAT after 20 minutes: 16.50 incl. 25 % VAT.
    assert Decimal(str(updated.total_cost)) == Decimal("16.50")
    session = eventually(
        lambda: next(
            (s for s in sessions_of(credentials.charger_id) if s.charger_transaction_id == "tx-201-billed"),
            None,
        )
    )
    record = eventually(lambda: DynamoCdrStore().get(session.session_id), timeout=30)
    # 7 kWh x 3.20 = 22.40 + 2.00 flat = 24.40 SEK excl. VAT; 28.00 + 2.50 = 30.50 incl. 25 % VAT.
    assert (record.total_excl_vat, record.total_incl_vat, record.currency) == (
        Decimal("24.40"),
        Decimal("30.50"),
        "SEK",
    )
    assert Decimal(str(ended.total_cost)) == record.total_incl_vat


def test_a_driver_pays_by_link_and_the_201_station_is_started_and_stopped_remotely(stack, new_charger):
    credentials = new_charger(password=PASSWORD)
    assign_tariff(credentials.charger_id)
    charger_id = credentials.charger_id

    async def run() -> str:
        async with station(stack.home, charger_id) as charger:
            await boot(charger)
            await charger.call(
                call.StatusNotification(
                    timestamp=stamp(datetime.now(UTC)),
                    connector_status="Available",
                    evse_id=1,
                    connector_id=1,
                )
            )
            pay_page = f"{stack.api_url}/pay/{charger_id}/1"
            await asyncio.to_thread(eventually, lambda: "<form" in requests.get(pay_page, timeout=30).text)
            session_url = await asyncio.to_thread(pay_on_hosted_page, stack, charger_id)
            start = await asyncio.wait_for(charger.remote_starts.get(), 30)
            assert start["id_token"]["type"] == "Central" and start["evse_id"] == 1
            t0 = datetime.now(UTC) - timedelta(minutes=30)
            tx = {"transaction_id": "tx-201-paid", "remote_start_id": start["remote_start_id"]}
            started = await charger.call(
                call.TransactionEvent(
                    event_type="Started",
                    timestamp=stamp(t0),
                    trigger_reason="RemoteStart",
                    seq_no=0,
                    transaction_info={**tx, "charging_state": "Charging"},
                    id_token=start["id_token"],
                    evse={"id": 1, "connector_id": 1},
                    meter_value=[energy(t0, 0, "Transaction.Begin")],
                )
            )
            assert started.id_token_info["status"] == "Accepted"
            stop = await asyncio.to_thread(
                requests.post, f"{session_url}/stop", allow_redirects=False, timeout=30
            )
            assert stop.status_code == 303, stop.text
            assert await asyncio.wait_for(charger.remote_stops.get(), 30) == "tx-201-paid"
            end = t0 + timedelta(minutes=30)
            await charger.call(
                call.TransactionEvent(
                    event_type="Ended",
                    timestamp=stamp(end),
                    trigger_reason="RemoteStop",
                    seq_no=1,
                    transaction_info={"transaction_id": "tx-201-paid", "stopped_reason": "Remote"},
                    meter_value=[energy(end, 10_000, "Transaction.End")],
                )
            )
            await charger.call(
                call.StatusNotification(
                    timestamp=stamp(end + timedelta(seconds=1)),
                    connector_status="Available",
                    evse_id=1,
                    connector_id=1,
                )
            )
            return session_url

    session_url = asyncio.run(run())
    payment = captured_payment(session_url)
    record = DynamoCdrStore().get(payment.session_id)
    assert str(record.total_incl_vat) == "5.63"  # 0.63 start fee + 10 kWh x 0.40 x 1.25
    assert payment.captured_minor == 563


def test_a_201_fault_is_raised_and_resolved_once(stack, new_charger):
    credentials = new_charger(site="SITE-201F", password=PASSWORD)

    def open_faults() -> list[dict[str, Any]]:
        faults = json.loads(cli(stack.home, "fault", "list", "--open", "--json").stdout)
        return [f for f in faults if f["charger_id"] == credentials.charger_id and f["kind"] != "offline"]

    async def report(status: str, minute: int) -> None:
        async with station(stack.home, credentials.charger_id) as charger:
            await boot(charger)
            for _copy in range(2):  # the same notification twice, as MQTT may deliver it
                await charger.call(
                    call.StatusNotification(
                        timestamp=f"2026-11-26T07:{minute:02d}:00Z",
                        connector_status=status,
                        evse_id=1,
                        connector_id=1,
                    )
                )

    asyncio.run(report("Faulted", 1))
    [fault] = eventually(open_faults, timeout=20)
    assert fault["kind"] == "connector_error"
    asyncio.run(report("Available", 5))
    eventually(lambda: not open_faults(), timeout=20)


def test_bad_201_frames_get_201_callerror_codes(stack, new_charger):
    credentials = new_charger(password=PASSWORD)

    async def run() -> list[list[Any]]:
        async with websocket_201(stack.home, credentials.charger_id) as websocket:
            answers = []
            for frame in (
                '[2, "b1", "Heartbeat", {}, ',  # not JSON
                '[2, "b2", "BootNotification", {"reason": "PowerUp"}]',  # chargingStation missing
                '[2, "b3", "Heartbeat", {"extra": 1}]',  # Heartbeat takes no properties
                '[2, "b4", "NoSuchAction", {}]',
                '[7, "b5", "Heartbeat", {}]',  # no such message type
            ):
                await websocket.send(frame)
                answers.append(json.loads(await asyncio.wait_for(websocket.recv(), 20)))
            return answers

    answers = asyncio.run(run())
    assert [(a[0], a[1], a[2]) for a in answers] == [
        (4, "b1", "FormatViolation"),
        (4, "b2", "OccurrenceConstraintViolation"),
        (4, "b3", "FormatViolation"),
        (4, "b4", "NotImplemented"),
        (4, "b5", "MessageTypeNotSupported"),
    ]


def test_a_plugged_in_201_car_is_priced_payable_then_busy_until_its_end(stack, new_charger):
    # 2.0.1 has no Preparing: a plugged-in car is Occupied, payable while no transaction runs.
    credentials = new_charger(password=PASSWORD)
    assign_tariff(credentials.charger_id)
    charger_id = credentials.charger_id
    DynamoTagDirectory().put("GW201-PRICE-TAG", TagStatus.ACCEPTED, 1, None)

    def pay_page() -> str:
        return requests.get(f"{stack.api_url}/pay/{charger_id}/1", timeout=30).text

    def pay_page_with(marker: str) -> str | None:
        text = pay_page()
        return text if marker in text else None

    async def notify(charger: Station, status: str, at: datetime) -> None:
        await charger.call(
            call.StatusNotification(timestamp=stamp(at), connector_status=status, evse_id=1, connector_id=1)
        )

    async def run() -> tuple[Any, ...]:
        async with station(stack.home, charger_id) as charger:
            await boot(charger)
            plugged = datetime.now(UTC) - timedelta(minutes=10)
            await notify(charger, "Occupied", plugged)
            payable = await asyncio.to_thread(eventually, lambda: pay_page_with("<form"))
            authorized = await charger.call(
                call.Authorize(id_token={"id_token": "GW201-PRICE-TAG", "type": "ISO14443"})
            )
            await asyncio.to_thread(pay_on_hosted_page, stack, charger_id)
            start = await asyncio.wait_for(charger.remote_starts.get(), 30)
            tx = {"transaction_id": "tx-201-occupied", "remote_start_id": start["remote_start_id"]}
            started = await charger.call(
                call.TransactionEvent(
                    event_type="Started",
                    timestamp=stamp(plugged + timedelta(minutes=1)),
                    trigger_reason="RemoteStart",
                    seq_no=0,
                    transaction_info={**tx, "charging_state": "EVConnected"},
                    id_token=start["id_token"],
                    evse={"id": 1, "connector_id": 1},
                    meter_value=[energy(plugged, 0, "Transaction.Begin")],
                )
            )
            busy = await asyncio.to_thread(eventually, lambda: pay_page_with("in use"))
            await charger.call(
                call.TransactionEvent(
                    event_type="Updated",
                    timestamp=stamp(plugged + timedelta(minutes=2)),
                    trigger_reason="ChargingStateChanged",
                    seq_no=1,
                    transaction_info={"transaction_id": "tx-201-occupied", "charging_state": "Charging"},
                )
            )
            charging = await asyncio.to_thread(
                eventually, lambda: _connector_status(charger_id) == "Charging" or None
            )
            still_busy = pay_page()
            end = plugged + timedelta(minutes=9)
            await charger.call(
                call.TransactionEvent(
                    event_type="Ended",
                    timestamp=stamp(end),
                    trigger_reason="EVDeparted",
                    seq_no=2,
                    transaction_info={
                        "transaction_id": "tx-201-occupied",
                        "stopped_reason": "EVDisconnected",
                        "charging_state": "Idle",
                    },
                    meter_value=[energy(end, 4_000, "Transaction.End")],
                )
            )
            await notify(charger, "Available", end)
            free_again = await asyncio.to_thread(eventually, lambda: pay_page_with("<form"))
            return payable, authorized, start, started, busy, charging, still_busy, free_again

    payable, authorized, start, started, busy, charging, still_busy, free_again = asyncio.run(run())
    assert start["id_token"]["type"] == "Central" and start["evse_id"] == 1
    assert "<form" not in busy and "in use" in still_busy and charging and free_again
    # The price before the start, in the pay page's own words: the same lines, the same figures.
    for token_info in (authorized.id_token_info, started.id_token_info):
        message = token_info["personal_message"]
        assert (token_info["status"], message["format"]) == ("Accepted", "UTF8")
        assert message["content"].startswith("0.50 EUR/kWh incl. 25% VAT")
        assert all(line in payable for line in message["content"].split("; "))


def _connector_status(charger_id: str) -> str | None:
    statuses = [s.status for s in registry().connectors(charger_id) if s.connector_id == 1]
    return statuses[0] if statuses else None
