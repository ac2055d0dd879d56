"""Sessions through the whole local stack: OCPP over mTLS -> ingest -> DynamoDB -> stream -> billing -> CDR."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import pytest

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.models import TagStatus
from tests.integration.conftest import RawCharger, eventually

TARIFF = {
    "country_code": "SE",
    "party_id": "CGN",
    "id": "E2E-1",
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
# Recent enough that the idle-limit sweep (120 min after a stop) never closes a test's session
# before its own StatusNotification Available does; later minutes may lie in the future.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def priced_network(stack):
    book = DynamoTariffBook()
    book.store("E2E-1", json.dumps(TARIFF), T0)
    book.assign("E2E-1")
    DynamoTagDirectory().put("E2E-TAG-1", TagStatus.ACCEPTED, 1, None)
    return stack


def cdr_for(session_id: str):
    return DynamoCdrStore().get(session_id)


def session(session_id: str):
    return DynamoSessionStore().get(session_id)


class Driver:
    def __init__(self, charger: RawCharger) -> None:
        self.charger = charger
        self.n = 0

    async def call(self, action: str, payload: dict) -> dict:
        self.n += 1
        await self.charger.send([2, f"c{self.n}", action, payload])
        reply = await self.charger.reply()
        assert reply[0] == 3, reply
        return reply[2]

    async def session(
        self,
        connector: int,
        start: tuple[str, int],
        readings: list[tuple[str, int]],
        stop: tuple[str, int],
        free_at: str | None = None,
        tag: str = "E2E-TAG-1",
    ) -> int:
        """Start, energy readings, stop, and (when free_at) the connector free again; (timestamp, Wh) pairs."""
        started = await self.call(
            "StartTransaction",
            {"connectorId": connector, "idTag": tag, "meterStart": start[1], "timestamp": start[0]},
        )
        tx = started["transactionId"]
        for at, wh in readings:
            await self.call(
                "MeterValues",
                {
                    "connectorId": connector,
                    "transactionId": tx,
                    "meterValue": [{"timestamp": at, "sampledValue": [{"value": str(wh)}]}],
                },
            )
        await self.call("StopTransaction", {"transactionId": tx, "meterStop": stop[1], "timestamp": stop[0]})
        if free_at:
            await self.call(
                "StatusNotification",
                {
                    "connectorId": connector,
                    "errorCode": "NoError",
                    "status": "Available",
                    "timestamp": free_at,
                },
            )
        return tx


def test_a_metered_session_becomes_one_cdr_with_the_expected_amounts(priced_network, new_charger):
    credentials = new_charger()

    async def run() -> int:
        async with RawCharger(credentials) as charger:
            driver = Driver(charger)
            assert (await driver.call("Authorize", {"idTag": "E2E-TAG-1"}))["idTagInfo"][
                "status"
            ] == "Accepted"
            started = await driver.call(
                "StartTransaction",
                {"connectorId": 1, "idTag": "E2E-TAG-1", "meterStart": 250_000, "timestamp": ts(0)},
            )
            tx = started["transactionId"]
            await driver.call(
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": ts(0)},
            )
            for minute in (15, 30, 45, 60):
                await driver.call(
                    "MeterValues",
                    {
                        "connectorId": 1,
                        "transactionId": tx,
                        "meterValue": [
                            {
                                "timestamp": ts(minute),
                                "sampledValue": [
                                    {
                                        "value": str(250_000 + minute * 11_000 // 60),
                                        "measurand": "Energy.Active.Import.Register",
                                    },
                                    {"value": "11.0", "measurand": "Power.Active.Import", "unit": "kW"},
                                ],
                            }
                        ],
                    },
                )
            await driver.call(
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "SuspendedEV", "timestamp": ts(60)},
            )
            stop = {
                "transactionId": tx,
                "meterStop": 261_000,
                "timestamp": ts(90),
                "reason": "EVDisconnected",
                "idTag": "E2E-TAG-1",
            }
            await driver.call("StopTransaction", stop)
            # A duplicate StopTransaction (new message id, same content) changes nothing.
            await driver.call("StopTransaction", stop)
            await driver.call(
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": ts(92)},
            )
            return tx

    tx = asyncio.run(run())
    record = eventually(lambda: cdr_for(str(tx)), timeout=20)
    # 11 kWh x 0.30 = 3.30 excl, 4.125 -> 4.13 incl; idle 60->92 = 32 min x 6.00/h = 3.20 excl, 4.00 incl.
    assert (record.total_excl_vat, record.total_incl_vat, record.currency) == (
        Decimal("6.50"),
        Decimal("8.13"),
        "EUR",
    )
    assert record.energy_wh == 11_000
    assert record.ocpi["cdr_token"]["uid"] == "E2E-*****"
    assert eventually(lambda: session(str(tx)).state == "billed")


def test_an_anomalous_session_goes_to_review_not_to_a_cdr(priced_network, new_charger):
    credentials = new_charger()

    async def run() -> int:
        async with RawCharger(credentials) as charger:
            return await Driver(charger).session(
                2,
                start=(ts(200), 50_000),
                readings=[(ts(210), 51_000)],
                stop=(ts(220), 40_000),
                free_at=ts(221),
            )

    tx = asyncio.run(run())
    reviewed = eventually(lambda: session(str(tx)) if session(str(tx)).state == "needs_review" else None)
    assert "below start register" in reviewed.review_reasons[0]
    assert cdr_for(str(tx)) is None


def test_a_car_left_plugged_in_is_closed_at_the_idle_limit_and_billed(priced_network, new_charger):
    credentials = new_charger()
    stop_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)

    def when(minutes: float) -> str:
        return (stop_at + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    async def run() -> int:
        async with RawCharger(credentials) as charger:
            # The connector never reports Available: only the idle limit ends this session.
            return await Driver(charger).session(
                1, start=(when(-30), 7_000), readings=[(when(-1), 10_000)], stop=(when(0), 10_000)
            )

    tx = asyncio.run(run())
    record = eventually(lambda: cdr_for(str(tx)), timeout=30)
    # 3 kWh x 0.30 = 0.90 / 1.13 (1.125 half-up); idle limit 120 min + 1 min not drawing = 121 min x 6.00/h = 12.10 / 15.13
    assert record.total_excl_vat == Decimal("13.00") and record.total_incl_vat == Decimal("16.26")


def test_operator_settles_a_reviewed_session_with_the_cli_and_it_is_billed_once(priced_network, new_charger):
    from tests.integration.cli_in_process import admin_cli as cli

    credentials = new_charger()

    async def run() -> int:
        async with RawCharger(credentials) as charger:
            return await Driver(charger).session(
                1, start=(ts(300), 0), readings=[(ts(310), 2_000)], stop=(ts(320), 999_999), free_at=ts(320)
            )

    tx = str(asyncio.run(run()))
    eventually(lambda: session(tx).state == "needs_review")
    assert "exceeds the rated power" in session(tx).review_reasons[0]
    listed = json.loads(
        cli(priced_network.home, "session", "list", "--state", "needs_review", "--json").stdout
    )
    assert tx in [s["session_id"] for s in listed]
    settled = cli(priced_network.home, "session", "settle", tx, "--use-reading", "2000")
    assert settled.returncode == 0, settled.stderr
    record = eventually(lambda: cdr_for(tx))
    assert record.energy_wh == 2000 and record.total_excl_vat == Decimal("0.60")
    again = cli(priced_network.home, "session", "settle", tx, "--void")
    assert again.returncode == 1 and "not needs_review" in again.stderr
    shown = json.loads(cli(priced_network.home, "cdr", "show", tx).stdout)
    assert shown["id"] == tx and shown["total_cost"]["excl_vat"] == "0.60"


def test_simulated_sessions_are_billed_to_the_minor_unit_of_independently_computed_amounts(
    priced_network, new_charger
):
    from chargenet_shim.sim.session import SessionPlan
    from chargenet_shim.sim.simclock import SimClock
    from chargenet_shim.sim.simulator import SimulatedCharger

    DynamoTagDirectory().put("E2E-TAG-2", TagStatus.ACCEPTED, 2, None)
    credentials = new_charger()
    plans = [
        SessionPlan(
            connector_id=1,
            id_tag="E2E-TAG-2",
            battery_kwh=40,
            start_soc=50,
            target_soc=80,
            max_power_kw=11,
            meter_interval_s=300,
            idle_minutes_after=10,
        ),
        SessionPlan(
            connector_id=2,
            id_tag="E2E-TAG-2",
            battery_kwh=60,
            start_soc=70,
            target_soc=95,
            max_power_kw=22,
            meter_interval_s=120,
            idle_minutes_after=0,
        ),
    ]

    async def run():
        clock = SimClock(speed=600)
        charger = SimulatedCharger(credentials, clock=clock)
        await charger.start()
        try:
            await charger.run_boot()
            return await asyncio.gather(*(charger.run_session(plan, clock) for plan in plans))
        finally:
            await charger.stop()

    truths = asyncio.run(run())
    for truth in truths:
        record = eventually(lambda t=truth: cdr_for(str(t.transaction_id)), timeout=30)
        kwh = Decimal(truth.energy_wh) / 1000
        # step_size 60 s: whole minutes, rounded up
        idle_minutes = (Decimal(str(truth.idle_s)) / 60).to_integral_value(rounding=ROUND_CEILING)
        energy = (kwh * Decimal("0.30")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        energy_vat = (kwh * Decimal("0.375")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        parking = idle_minutes * Decimal("0.10")
        parking_vat = (idle_minutes * Decimal("0.125")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        assert record.energy_wh == truth.energy_wh
        assert (record.total_excl_vat, record.total_incl_vat) == (
            energy + parking,
            energy_vat + parking_vat,
        ), truth


def test_credit_record_cancels_a_cdr_without_changing_it_and_orphan_stops_are_listed(
    priced_network, new_charger
):
    from tests.integration.cli_in_process import admin_cli as cli

    credentials = new_charger()

    async def run() -> int:
        async with RawCharger(credentials) as charger:
            driver = Driver(charger)
            tx = await driver.session(1, start=(ts(400), 0), readings=[(ts(401), 100)], stop=(ts(402), 200))
            await driver.call(
                "StopTransaction", {"transactionId": 987654, "meterStop": 5, "timestamp": ts(403)}
            )
            await driver.call(
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": ts(403)},
            )
            return tx

    tx = str(asyncio.run(run()))
    original = eventually(lambda: cdr_for(tx))
    credited = cli(priced_network.home, "cdr", "credit", tx, "--reason", "driver complaint")
    assert credited.returncode == 0, credited.stderr
    credit = cdr_for(f"{tx}-CREDIT")
    assert credit.total_incl_vat == -original.total_incl_vat and credit.ocpi["credit_reference_id"] == tx
    assert cdr_for(tx) == original
    twice = cli(priced_network.home, "cdr", "credit", tx, "--reason", "again")
    assert twice.returncode == 1 and "already has a credit" in twice.stderr
    orphans = json.loads(cli(priced_network.home, "session", "orphans", "--json").stdout)
    assert {"charger_id": credentials.charger_id, "transaction_id": 987654} in [
        {k: o[k] for k in ("charger_id", "transaction_id")} for o in orphans
    ]
