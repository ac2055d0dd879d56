"""A Swedish site's night rate from 22:00 on its own wall clock, for chargers that report UTC.

OCPP chargers timestamp in UTC; the tariff's start_time/end_time are the site's local time. Through the
whole local stack (mTLS, ingest, DynamoDB, stream, billing), a session from 21:30 to 23:00 local is
billed 30 minutes at the day rate and 60 at the night rate, in winter (UTC+1) and summer (UTC+2) alike.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.models import TagStatus
from chargenet_cli.main import main
from chargenet_shim.credentials import ChargerCredentials
from tests.integration.conftest import RawCharger, eventually
from tests.integration.test_sessions_e2e import Driver, cdr_for, session

STOCKHOLM = "Europe/Stockholm"
TAG = "TZ-TAG-1"
DAY_NIGHT = {
    "country_code": "SE",
    "party_id": "CGN",
    "id": "TZ-DAY-NIGHT",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": "0.24", "vat": "25", "step_size": 1}],
            "restrictions": {"start_time": "22:00", "end_time": "06:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": "0.36", "vat": "25", "step_size": 1}]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}
# 5.5 kWh by day x 0.36 = 1.98, 11 kWh by night x 0.24 = 2.64: 4.62, 5.775 -> 5.78 incl. 25 % VAT.
# On UTC hours the whole session would be daytime: 16.5 kWh x 0.36 = 5.94.
LOCAL_TIME_BILL = (Decimal("4.62"), Decimal("5.78"))


@pytest.fixture(scope="module")
def day_night_tariff(stack):
    DynamoTariffBook().store(
        DAY_NIGHT["id"], json.dumps(DAY_NIGHT), datetime.fromisoformat("2026-01-01T00:00Z")
    )
    DynamoTagDirectory().put(TAG, TagStatus.ACCEPTED, 1, None)
    return stack


def cli(stack, capsys, *args: str) -> str:
    code = main(["--home", stack.home, *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def charger_on_the_tariff(stack, capsys, *add_options: str) -> ChargerCredentials:
    charger_id = f"CP-TZ-{uuid.uuid4().hex[:6]}"
    done = json.loads(cli(stack, capsys, "charger", "add", charger_id, *add_options, "--json"))
    cli(stack, capsys, "tariff", "assign", DAY_NIGHT["id"], "--charger", charger_id)
    return ChargerCredentials.load(Path(done["credentials_dir"]))


def run_session(credentials: ChargerCredentials, start_utc: str) -> int:
    """11 kW for 90 minutes from `start_utc`, a reading every 15 minutes, all timestamps in UTC."""
    start = datetime.fromisoformat(start_utc)

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    async def drive() -> int:
        async with RawCharger(credentials) as charger:
            readings = [(at(m), 100_000 + m * 11_000 // 60) for m in range(15, 91, 15)]
            return await Driver(charger).session(
                1, (at(0), 100_000), readings, (at(90), 116_500), free_at=at(91), tag=TAG
            )

    return asyncio.run(drive())


@pytest.mark.parametrize(
    "start_utc",
    ["2026-01-15T20:30:00+00:00", "2026-07-15T19:30:00+00:00"],  # 21:30 in Stockholm, winter and summer
)
def test_a_charger_in_stockholm_is_billed_the_night_rate_from_22_local(day_night_tariff, capsys, start_utc):
    credentials = charger_on_the_tariff(
        day_night_tariff, capsys, "--site", "SITE-TZ", "--time-zone", STOCKHOLM
    )
    shown = json.loads(cli(day_night_tariff, capsys, "charger", "show", credentials.charger_id, "--json"))
    assert shown["time_zone"] == STOCKHOLM

    tx = run_session(credentials, start_utc)
    record = eventually(lambda: cdr_for(str(tx)), timeout=20)
    assert (record.total_excl_vat, record.total_incl_vat) == LOCAL_TIME_BILL
    assert record.ocpi["cdr_location"]["time_zone"] == STOCKHOLM
    assert session(str(tx)).time_zone == STOCKHOLM


def test_a_charger_without_a_zone_of_its_own_keeps_its_sites(day_night_tariff, capsys):
    site = f"SITE-SE-{uuid.uuid4().hex[:6]}"
    cli(day_night_tariff, capsys, "site", "set-time-zone", site, STOCKHOLM)
    credentials = charger_on_the_tariff(day_night_tariff, capsys, "--site", site)
    assert json.loads(cli(day_night_tariff, capsys, "site", "show", site, "--json"))["chargers"] == {
        credentials.charger_id: STOCKHOLM
    }

    tx = run_session(credentials, "2026-01-15T20:30:00+00:00")
    record = eventually(lambda: cdr_for(str(tx)), timeout=20)
    assert (record.total_excl_vat, record.total_incl_vat) == LOCAL_TIME_BILL


def test_an_unknown_zone_is_refused_with_a_message(day_night_tariff, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--home", day_night_tariff.home, "charger", "add", "CP-TZ-BAD", "--time-zone", "Mars/Olympus"])
    assert exited.value.code == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
    assert json.loads(cli(day_night_tariff, capsys, "charger", "list", "--json")) != []
    assert "CP-TZ-BAD" not in cli(day_night_tariff, capsys, "charger", "list")
