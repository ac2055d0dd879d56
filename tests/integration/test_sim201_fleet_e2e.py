"""A simulated fleet of both OCPP versions through the whole local stack: each charger on its
version's ingest rule, recorded with its version at boot, its sessions billed into CDRs alike."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory, DynamoTariffBook
from chargenet.domain.models import TagStatus
from chargenet.domain.transactions201 import transaction_key
from tests.integration.conftest import eventually, registry

TARIFF = {
    "country_code": "SE",
    "party_id": "CGN",
    "id": "SIM201-1",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": "0.30", "vat": "25", "step_size": 1}]}],
    "last_updated": "2026-11-01T00:00:00Z",
}
TAG = "SIM201-TAG"


@pytest.fixture(scope="module")
def priced_network(stack):
    book = DynamoTariffBook()
    book.store(TARIFF["id"], json.dumps(TARIFF), datetime.now(UTC) - timedelta(days=1))
    book.assign(TARIFF["id"])
    DynamoTagDirectory().put(TAG, TagStatus.ACCEPTED, 2, None)
    return stack


@pytest.mark.timeout(180)
def test_a_mixed_fleets_sessions_are_recorded_and_billed_alike(priced_network, new_charger):
    from chargenet_shim.ocpp_version import OcppVersion
    from chargenet_shim.sim.fleet import SessionFailure, run_sessions
    from chargenet_shim.sim.session import SessionPlan
    from chargenet_shim.sim.simclock import SimClock

    fleet = [new_charger(), new_charger()]
    plan = SessionPlan(
        connector_id=1,
        id_tag=TAG,
        battery_kwh=40,
        start_soc=50,
        target_soc=70,
        max_power_kw=11,
        meter_interval_s=300,
        idle_minutes_after=5,
    )
    # Started in the past so the whole session's timestamps lie before now, as the backend expects.
    clock = SimClock(speed=600, start=datetime.now(UTC) - timedelta(hours=2))

    outcomes = asyncio.run(
        run_sessions(fleet, [[plan], [plan]], clock, versions=[OcppVersion.V16, OcppVersion.V201])
    )

    assert not [o for o in outcomes if isinstance(o, SessionFailure)], outcomes
    old, new = outcomes
    assert [registry().get(c.charger_id).ocpp_version for c in fleet] == ["ocpp1.6", "ocpp2.0.1"]
    store = DynamoSessionStore()
    new_session_id, allocated = store.allocate_transaction(
        transaction_key(new.charger_id, new.transaction_id)
    )
    assert not allocated  # the backend numbered this transaction when its events came in
    for truth, session_id in ((old, str(old.transaction_id)), (new, str(new_session_id))):
        record = eventually(lambda sid=session_id: DynamoCdrStore().get(sid), timeout=60)
        assert record.energy_wh == truth.energy_wh, truth
        assert record.charger_id == truth.charger_id
    assert store.get(str(new_session_id)).charger_transaction_id == new.transaction_id
