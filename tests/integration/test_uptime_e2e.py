"""Availability history, the NEVI uptime report and GetDiagnostics uploads on the real local stack.

Charger timestamps lie in October 2026, a finished month, so the report's minutes are exact:
October has 44640 minutes, the twelve months to it the regulation's 525600.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from chargenet.adapters.faults_dynamodb import DynamoFaultStore
from chargenet.adapters.history_dynamodb import DynamoHistory, status_key
from chargenet.domain.models import ConnectorStatus
from chargenet_shim.sim.simulator import SimulatedCharger
from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import RawCharger, eventually, registry

OCT_START, OCT_END = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)


def history():
    return DynamoHistory()


def fault_store():
    return DynamoFaultStore()


def at(hour: int, minute: int = 0) -> str:
    return f"2026-10-05T{hour:02d}:{minute:02d}:00Z"


async def statuses(credentials, *reports: tuple[int, str, str, str]) -> None:
    """(connector, status, error code, charger time) each, in this order, each answered."""
    async with RawCharger(credentials) as charger:
        for number, (connector_id, status, error_code, timestamp) in enumerate(reports):
            payload = {
                "connectorId": connector_id,
                "errorCode": error_code,
                "status": status,
                "timestamp": timestamp,
            }
            await charger.send([2, f"st-{number}", "StatusNotification", payload])
            assert (await charger.reply())[0] == 3


def episodes_of(charger_id: str, code: str) -> list:
    # Only this code's: the fault sweep may open other faults (offline) for the same charger.
    return sorted((f for f in history().episodes(charger_id) if f.code == code), key=lambda f: f.episode)


def uptime(home, charger_id: str, *options: str) -> dict[int, tuple[str, str, str, bool]]:
    result = cli(home, "report", "uptime", "--month", "2026-10", "--json", *options)
    assert result.returncode == 0, result.stderr
    return {
        row["connector_id"]: (row["outage_min"], row["excluded_min"], row["uptime_percent"], row["meets_97"])
        for row in json.loads(result.stdout)
        if row["charger_id"] == charger_id
    }


def test_statuses_become_history_and_the_report_counts_outages_and_exclusions(stack, new_charger):
    credentials = new_charger(site="SITE-U")
    charger_id = credentials.charger_id
    asyncio.run(
        statuses(
            credentials,
            (1, "Available", "NoError", at(9)),
            (2, "Available", "NoError", at(9)),
            (1, "Faulted", "GroundFailure", at(10)),
            (1, "Faulted", "GroundFailure", at(10)),  # the same status again: one history entry
            (1, "Available", "NoError", at(10, 30)),
            (2, "Available", "NoError", at(11, 45)),
            (2, "Unavailable", "NoError", at(11)),  # late: not the latest, still part of the timeline
        )
    )
    connector_2 = {c.connector_id: c for c in registry().connectors(charger_id)}[2]
    assert connector_2.status == "Available"
    timelines = {c: history().timeline(charger_id, c, OCT_START, OCT_END) for c in (1, 2)}
    assert [(p.status, f"{p.at:%H:%M}") for p in timelines[1]] == [
        ("Available", "09:00"),
        ("Faulted", "10:00"),
        ("Available", "10:30"),
    ]
    assert [p.status for p in timelines[2]] == ["Available", "Unavailable", "Available"]
    [archived] = episodes_of(charger_id, "GroundFailure")
    assert (archived.code, archived.state.value, f"{archived.resolved_at:%H:%M}") == (
        "GroundFailure",
        "resolved",
        "10:30",
    )

    # October: 44640 minutes. Connector 1 out 30 minutes (Faulted), connector 2 45 (Unavailable).
    assert uptime(stack.home, charger_id) == {
        1: ("30.000", "0.000", "99.933", True),
        2: ("45.000", "0.000", "99.899", True),
    }

    excluded = cli(stack.home, "fault", "exclude", archived.fault_id[:12], "--reason", "utility_outage")
    assert excluded.returncode == 0, excluded.stderr
    assert "excluded from uptime (utility_outage)" in excluded.stdout
    shown = json.loads(cli(stack.home, "fault", "show", archived.fault_id).stdout)
    assert shown["excluded_reason"] == "utility_outage"
    assert uptime(stack.home, charger_id)[1] == ("30.000", "30.000", "100.000", True)
    cleared = cli(stack.home, "fault", "exclude", archived.fault_id, "--clear")
    assert cleared.returncode == 0 and "no longer excluded" in cleared.stdout
    assert uptime(stack.home, charger_id)[1] == ("30.000", "0.000", "99.933", True)
    cli(stack.home, "fault", "exclude", archived.fault_id, "--reason", "utility_outage")

    # The fault re-opens: a new episode in FaultsTable, the excluded one stays in the archive.
    asyncio.run(
        statuses(
            credentials, (1, "Faulted", "GroundFailure", at(12)), (1, "Available", "NoError", at(12, 10))
        )
    )
    episodes = episodes_of(charger_id, "GroundFailure")
    assert [(f.episode, f.excluded_reason) for f in episodes] == [(1, "utility_outage"), (2, None)]
    assert fault_store().get(archived.fault_id)[0].episode == 2
    assert uptime(stack.home, charger_id)[1] == ("40.000", "30.000", "99.978", True)
    # NEVI's window: the twelve months to October, 525600 minutes.
    assert uptime(stack.home, charger_id, "--twelve-months")[1] == ("40.000", "30.000", "99.998", True)


def test_report_formats_and_bad_months(stack, new_charger):
    credentials = new_charger()
    asyncio.run(
        statuses(credentials, (1, "Unavailable", "NoError", at(8)), (1, "Available", "NoError", at(9)))
    )
    rows = cli(stack.home, "report", "uptime", "--month", "2026-10", "--csv").stdout.splitlines()
    assert rows[0] == "charger_id,connector_id,period,outage_min,excluded_min,uptime_percent,meets_97"
    assert f"{credentials.charger_id},1,2026-10,60.000,0.000,99.866,true" in rows
    printed = cli(stack.home, "report", "uptime", "--month", "2026-10").stdout
    assert printed.startswith("NEVI uptime 2026-10\n") and credentials.charger_id in printed
    in_progress = cli(stack.home, "report", "uptime", "--month", datetime.now(UTC).strftime("%Y-%m"))
    assert in_progress.returncode == 0 and "in progress" in in_progress.stdout
    for month, message in (("2026-13", "YYYY-MM"), ("Oct 2026", "YYYY-MM"), ("2999-01", "has not started")):
        bad = cli(stack.home, "report", "uptime", "--month", month)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr


def test_an_older_status_is_history_but_not_the_latest(stack):
    charger_id = "CP-history-order"
    registry().register(charger_id, "S", OCT_START)

    def status(name: str, minute: int) -> ConnectorStatus:
        moment = datetime(2026, 10, 7, 8, minute, tzinfo=UTC)
        return ConnectorStatus(
            charger_id=charger_id,
            connector_id=3,
            status=name,
            error_code="NoError",
            status_at=moment,
            received_at=moment,
        )

    assert registry().record_connector_status(status("Unavailable", 20))
    assert not registry().record_connector_status(status("Available", 10))
    assert registry().record_connector_status(status("Unavailable", 20))  # a redelivery
    points = history().timeline(charger_id, 3, OCT_START, OCT_END)
    assert [(p.status, p.at.minute) for p in points] == [("Available", 10), ("Unavailable", 20)]
    # The status in force at the start of a window comes with it; what follows the window does not.
    window = history().timeline(
        charger_id, 3, datetime(2026, 10, 7, 8, 15, tzinfo=UTC), datetime(2026, 10, 7, 8, 20, tzinfo=UTC)
    )
    assert [(p.status, p.at.minute) for p in window] == [("Available", 10)]
    assert status_key(3, points[0].at) < status_key(3, points[1].at)


def test_a_conflicting_fault_save_archives_nothing(stack, new_charger):
    credentials = new_charger()
    asyncio.run(statuses(credentials, (1, "Faulted", "PowerSwitchFailure", at(14))))
    [(fault, alerts)] = [
        (f, a) for f, a in fault_store().of_charger(credentials.charger_id) if f.code == "PowerSwitchFailure"
    ]
    stale = fault.model_copy(update={"occurrences": 99})  # not what is stored
    changed = fault.model_copy(update={"acknowledged_by": "bob"})
    assert not fault_store().save(changed, alerts, (stale, alerts))
    assert episodes_of(credentials.charger_id, "PowerSwitchFailure") == [fault]


def test_get_diagnostics_uploads_the_simulators_log_to_the_diagnostics_bucket(stack, new_charger):
    credentials = new_charger()
    charger_id = credentials.charger_id

    def uploaded() -> list[dict]:
        return json.loads(cli(stack.home, "diagnostics", "list", charger_id, "--json").stdout)

    async def run():
        charger = SimulatedCharger(credentials)
        await charger.start()
        try:
            await charger.run_boot()
            sent = await asyncio.to_thread(cli, stack.home, "command", "send", charger_id, "GetDiagnostics")
            # The upload follows the answer: keep the charger running until the file is there.
            files = await asyncio.to_thread(eventually, uploaded, 20)
            return sent, files
        finally:
            await charger.stop()

    sent, [file] = asyncio.run(run())
    assert sent.returncode == 0, sent.stderr
    assert 'answered {"fileName"' in sent.stdout
    assert f"uploads to diagnostics/{charger_id}/" in sent.stdout
    assert file["key"] == f"diagnostics/{charger_id}/{file['name']}" and file["bytes"] > 0
    [call] = json.loads(cli(stack.home, "command", "list", charger_id, "--json").stdout)
    # The pre-signed query is a credential for an hour: the command history keeps the URL without it.
    location = call["payload"]["location"]
    assert location == f"{stack.moto_url}/{stack.buckets['DiagnosticsBucket']}/{file['key']}"
    body = cli(stack.home, "diagnostics", "get", charger_id)
    assert body.returncode == 0 and body.stdout.startswith(f"# diagnostics of charger {charger_id}")
    missing = cli(stack.home, "diagnostics", "get", charger_id, "nope.log")
    assert missing.returncode == 1 and "no diagnostics file nope.log" in missing.stderr
