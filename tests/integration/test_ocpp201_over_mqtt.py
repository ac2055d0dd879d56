"""An OCPP 2.0.1 charger over mutual TLS through the real broker, its own ingest rule
(`<IngestRuleName>_ocpp201`), the ingest function and moto; the same charger on the 1.6 rule
still gets 1.6 answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chargenet.adapters.faults_dynamodb import DynamoFaultStore
from chargenet.domain.faults import FaultState
from chargenet_shim.ocpp_version import OcppVersion
from tests.integration.cli_in_process import admin_cli as cli
from tests.integration.conftest import RawCharger, eventually, registry

BOOT_201 = {
    "reason": "PowerUp",
    "chargingStation": {
        "model": "AC22-2",
        "vendorName": "Acme",
        "serialNumber": "SN-201",
        "firmwareVersion": "5.1",
    },
}
BOOT_16 = {"chargePointVendor": "Acme", "chargePointModel": "AC22"}
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def status(evse: int, connector_status: str, minutes: int) -> dict[str, Any]:
    return {"timestamp": at(minutes), "connectorStatus": connector_status, "evseId": evse, "connectorId": 1}


def rcd_tripped(value: str, minutes: int, **extra: Any) -> dict[str, Any]:
    event = {
        "eventId": minutes,
        "timestamp": at(minutes),
        "trigger": "Delta",
        "actualValue": value,
        "component": {"name": "RCD", "evse": {"id": 1}},
        "variable": {"name": "Tripped"},
        "eventNotificationType": "HardWiredNotification",
        **extra,
    }
    return {"generatedAt": at(minutes), "seqNo": 0, "eventData": [event]}


def fault_states(charger_id: str) -> dict[tuple[int, str], FaultState]:
    # Only connector faults: the fault sweep may open others (offline) for the same charger.
    return {
        (fault.connector_id, fault.code): fault.state
        for fault, _ in DynamoFaultStore().of_charger(charger_id)
        if fault.kind == "connector_error"
    }


async def exchange(charger: RawCharger, frames: list[Any]) -> list[list[Any]]:
    replies = []
    for frame in frames:
        await charger.send(frame)
        replies.append(await charger.reply())
    return replies


def test_a_201_charger_boots_reports_and_faults_through_its_own_rule(new_charger):
    credentials = new_charger(site="SITE-201")
    charger_id = credentials.charger_id

    async def run() -> list[list[Any]]:
        async with RawCharger(credentials, OcppVersion.V201) as charger:
            return await exchange(
                charger,
                [
                    [2, "b1", "BootNotification", BOOT_201],
                    [2, "h1", "Heartbeat", {}],
                    [2, "s1", "StatusNotification", status(1, "Available", 1)],
                    [2, "s2", "StatusNotification", status(2, "Faulted", 2)],
                    [2, "e1", "NotifyEvent", rcd_tripped("true", 3)],
                ],
            )

    boot, heartbeat, *others = asyncio.run(run())
    assert boot[:2] == [3, "b1"] and boot[2]["status"] == "Accepted" and boot[2]["interval"] == 300
    assert heartbeat[:2] == [3, "h1"] and "currentTime" in heartbeat[2]
    assert others == [[3, "s1", {}], [3, "s2", {}], [3, "e1", {}]]
    charger = registry().get(charger_id)
    assert (charger.ocpp_version, charger.vendor, charger.model, charger.serial_number) == (
        "ocpp2.0.1",
        "Acme",
        "AC22-2",
        "SN-201",
    )
    assert {c.connector_id: c.status for c in registry().connectors(charger_id)} == {
        1: "Available",
        2: "Faulted",
    }
    assert fault_states(charger_id) == {
        (2, "Faulted"): FaultState.OPEN,
        (1, "GroundFailure"): FaultState.OPEN,
    }

    async def clear() -> list[list[Any]]:
        async with RawCharger(credentials, OcppVersion.V201) as charger:
            return await exchange(
                charger,
                [
                    [2, "e2", "NotifyEvent", rcd_tripped("false", 4, cleared=True)],
                    [2, "s3", "StatusNotification", status(2, "Available", 5)],
                    [2, "r1", "NotifyReport", report_part(0, tbc=True, variable="AvailabilityState")],
                    [2, "r2", "NotifyReport", report_part(1, tbc=False, variable="Power")],
                    [2, "h2", "Heartbeat", {}],  # answered with the device model in its partition
                    [2, "b2", "BootNotification", {**BOOT_201, "reason": "Triggered"}],
                ],
            )

    booted_at = charger.last_boot_at
    replies = asyncio.run(clear())
    assert [r[:3] for r in replies[:4]] == [[3, "e2", {}], [3, "s3", {}], [3, "r1", {}], [3, "r2", {}]]
    assert replies[4][:2] == [3, "h2"] and replies[5][:2] == [3, "b2"]
    # A BootNotification answering TriggerMessage is no reboot.
    assert (registry().get(charger_id).last_boot_at, registry().get(charger_id).recent_boots) == (
        booted_at,
        [booted_at],
    )
    assert fault_states(charger_id) == {
        (2, "Faulted"): FaultState.RESOLVED,
        (1, "GroundFailure"): FaultState.RESOLVED,
    }
    model = registry().device_model(charger_id)
    assert (model.request_id, model.complete) == (42, True)
    assert [(e.component, e.evse_id, e.variable, e.values) for e in model.entries] == [
        ("EVSE", 1, "AvailabilityState", {"Actual": "Available"}),
        ("EVSE", 1, "Power", {"Actual": "Available"}),
    ]


def report_part(seq_no: int, *, tbc: bool, variable: str) -> dict[str, Any]:
    data = {
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": variable},
        "variableAttribute": [{"type": "Actual", "value": "Available"}],
    }
    return {"requestId": 42, "generatedAt": at(6), "seqNo": seq_no, "tbc": tbc, "reportData": [data]}


def test_bad_201_frames_get_201_callerrors_and_the_16_rule_still_answers_16(new_charger):
    credentials = new_charger()

    async def run_201() -> list[list[Any]]:
        async with RawCharger(credentials, OcppVersion.V201) as charger:
            return await exchange(
                charger,
                [
                    '[2, "oops"',
                    [2, "m1", "BootNotification", {"reason": "PowerUp"}],
                    [2, "m2", "MakeCoffee", {}],
                    [2, "m3", "NotifyDisplayMessages", {"requestId": 1}],
                    [9, "m4", "Heartbeat", {}],
                    [2, "m5", "Heartbeat", {}, {}],
                    [2, "m6", "Heartbeat", {}],
                ],
            )

    replies = asyncio.run(run_201())
    assert [r[:3] for r in replies[:6]] == [
        [4, "oops", "FormatViolation"],
        [4, "m1", "OccurrenceConstraintViolation"],
        [4, "m2", "NotImplemented"],
        [4, "m3", "NotSupported"],
        [4, "m4", "MessageTypeNotSupported"],
        [4, "m5", "RpcFrameworkError"],
    ]
    assert replies[6][:2] == [3, "m6"]

    async def run_16() -> list[list[Any]]:
        async with RawCharger(credentials, OcppVersion.V16) as charger:
            return await exchange(
                charger,
                [
                    [2, "o1", "BootNotification", BOOT_16],
                    '[2, "o2"',
                    [2, "o3", "BootNotification", {"chargePointVendor": "Acme"}],
                    [2, "o4", "NotifyDisplayMessages", {"requestId": 1}],
                ],
            )

    boot, *errors = asyncio.run(run_16())
    assert boot[:2] == [3, "o1"] and boot[2]["status"] == "Accepted"
    assert [r[:3] for r in errors] == [
        [4, "o2", "FormationViolation"],
        [4, "o3", "OccurenceConstraintViolation"],
        [4, "o4", "NotImplemented"],
    ]
    assert eventually(lambda: registry().get(credentials.charger_id).ocpp_version == "ocpp1.6")


def test_a_faulted_evse_and_the_event_naming_its_problem_page_once_and_resolve_once(stack, new_charger):
    """EVSE 1 reports Faulted, then the RCD that tripped (and Faulted again): one problem, one page.
    EVSE 2 reports only Faulted: its own page after the major delay (2 s on the test stack)."""
    credentials = new_charger(site="SITE-201F")
    charger_id = credentials.charger_id

    def inbox() -> list[tuple[str, str]]:
        alerts = json.loads(cli(stack.home, "alert", "list", "--json").stdout)
        # Offline alerts of the charger after the test do not count: only its connector errors.
        return [
            (alert["attributes"]["kind"], alert["subject"].split(" on ")[0].split("] ")[1])
            for alert in alerts
            if charger_id in alert["subject"] and "Offline" not in alert["subject"]
        ]

    def inbox_once(done: Callable[[list[tuple[str, str]]], bool]) -> list[tuple[str, str]] | None:
        found = inbox()
        return found if done(found) else None

    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.isoformat().replace("+00:00", "Z")

    async def report(frames: list[Any]) -> None:
        async with RawCharger(credentials, OcppVersion.V201) as charger:
            for frame in frames:
                await charger.send(frame)
                assert (await charger.reply())[0] == 3

    faulted = {"timestamp": stamp, "connectorStatus": "Faulted", "evseId": 1, "connectorId": 1}
    tripped = rcd_tripped("true", 0)
    tripped["eventData"][0]["timestamp"] = stamp
    asyncio.run(
        report(
            [
                [2, "s1", "StatusNotification", faulted],
                [2, "e1", "NotifyEvent", tripped],
                [2, "s1-again", "StatusNotification", faulted],  # the station repeats itself
                [2, "s2", "StatusNotification", {**faulted, "evseId": 2}],
            ]
        )
    )
    # EVSE 2's page comes from a sweep past the major delay: the one that would have paged EVSE 1's.
    paged = eventually(lambda: inbox_once(lambda found: ("raised", "Faulted") in found), timeout=30)
    assert sorted(paged) == [("raised", "Faulted"), ("raised", "GroundFailure")]
    assert fault_states(charger_id) == {
        (1, "Faulted"): FaultState.RESOLVED,  # folded into the ground failure, silently
        (1, "GroundFailure"): FaultState.OPEN,
        (2, "Faulted"): FaultState.OPEN,
    }

    later = (now + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    available = {"timestamp": later, "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    asyncio.run(
        report(
            [
                [2, "a1", "StatusNotification", available],
                [2, "a2", "StatusNotification", {**available, "evseId": 2}],
            ]
        )
    )
    done = eventually(lambda: inbox_once(lambda found: len(found) >= 4), timeout=30)
    assert sorted(done) == [
        ("raised", "Faulted"),
        ("raised", "GroundFailure"),
        ("resolved", "Faulted"),
        ("resolved", "GroundFailure"),
    ]
    assert set(fault_states(charger_id).values()) == {FaultState.RESOLVED}
