import asyncio
import json

import pytest
from shim_stack import free_port

from chargenet_shim.sim.fleet import run_fleet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

FINAL = {"done", "failed"}


def _actions(backend, charger_id):
    return [
        (m[2], m[3].get("connectorId"), m[3].get("status"))
        for m in map(json.loads, backend.frames(charger_id))
    ]


def test_fleet_boots_announces_and_heartbeats_every_charger(provision, backend):
    fleet = [provision() for _ in range(5)]
    events: list[tuple[str, str]] = []

    results = asyncio.run(run_fleet(fleet, on_progress=lambda cid, stage: events.append((cid, stage))))

    assert [r.charger_id for r in results] == [c.charger_id for c in fleet]
    for creds, result in zip(fleet, results, strict=True):
        assert result.connected
        assert result.error is None
        assert result.boot_status == "Accepted"
        assert result.heartbeat_interval == backend.heartbeat_interval
        assert result.boot_rtt_ms is not None and result.boot_rtt_ms > 0
        assert _actions(backend, creds.charger_id) == [
            ("BootNotification", None, None),
            ("StatusNotification", 0, "Available"),
            ("StatusNotification", 1, "Available"),
            ("StatusNotification", 2, "Available"),
            ("Heartbeat", None, None),
        ]
        stages = [stage for cid, stage in events if cid == creds.charger_id]
        assert stages == ["connecting", "connected", "booted", "available", "done"]


def test_one_unreachable_or_rejected_charger_does_not_stop_the_others(provision, backend):
    good, rejected = provision(), provision()
    unreachable = provision().model_copy(update={"mqtt_port": free_port()})
    backend.boot_replies[rejected.charger_id] = [{"status": "Rejected", "interval": 60}]

    results = asyncio.run(run_fleet([unreachable, rejected, good]))

    by_id = {r.charger_id: r for r in results}
    assert not by_id[unreachable.charger_id].connected
    assert "CONNECTION_REFUSED" in (by_id[unreachable.charger_id].error or "")
    assert by_id[rejected.charger_id].boot_status == "Rejected"
    assert [a for a, _, _ in _actions(backend, rejected.charger_id)] == ["BootNotification"]
    assert by_id[good.charger_id].boot_status == "Accepted"
    assert by_id[good.charger_id].error is None


def test_concurrency_bounds_the_chargers_in_flight(provision, backend):
    fleet = [provision() for _ in range(6)]
    in_flight: set[str] = set()
    peak = 0

    def track(charger_id: str, stage: str) -> None:
        nonlocal peak
        if stage == "connecting":
            in_flight.add(charger_id)
        if stage in FINAL:
            in_flight.discard(charger_id)
        peak = max(peak, len(in_flight))

    results = asyncio.run(run_fleet(fleet, on_progress=track, concurrency=2))

    assert peak == 2
    assert all(r.boot_status == "Accepted" for r in results)
