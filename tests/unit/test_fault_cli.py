"""`chargenet fault | alert | fleet health | report uptime` over the operator API: what each command
asks the API for, and how it prints the answers (on a stub of the API client)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from chargenet_cli import fault_cmd, health_cmd, report_cmd
from chargenet_cli.errors import CliError, UsageError

FAULT_A = "aaaaaaaaaaaa00000000"  # whole fault ids: 20 hex digits
FAULT_B = "aaaaaaaaaaab11111111"


def fault(fault_id: str, first_seen: str, **fields: Any) -> dict[str, Any]:
    return {
        "fault_id": fault_id,
        "charger_id": "CP-1",
        "connector_id": 1,
        "kind": "connector_error",
        "code": "GroundFailure",
        "severity": "safety_critical",
        "state": "open",
        "first_seen": first_seen,
        "episode": 1,
        "acknowledged_by": None,
        "excluded_reason": None,
        **fields,
    }


class StubApi:
    """Listings by path; a change answers the fault as `changed` with `answer`'s fields."""

    def __init__(
        self, listings: dict[str, list[dict[str, Any]]], answer: dict[str, Any] | None = None
    ) -> None:
        self.listings, self.answer = listings, answer or {}
        self.calls: list[tuple[str, str, Any]] = []

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, limit: int | None = None, action: str = ""
    ) -> Iterator[dict[str, Any]]:
        self.calls.append(("GET", path, dict(params or {})))
        return iter(self.listings.get(path, []))

    def get(self, path: str, params: Mapping[str, Any] | None = None, action: str = "") -> Any:
        self.calls.append(("GET", path, params))
        return self.answer

    def post(self, path: str, body: Any = None, action: str = "") -> Any:
        self.calls.append(("POST", path, body))
        return {**fault(path.split("/")[2], "2026-11-26T08:00:00Z"), "changed": True, **self.answer}


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> StubApi:
    faults = [fault(FAULT_B, "2026-11-26T09:30:00Z"), fault(FAULT_A, "2026-11-26T08:05:00+00:00")]
    api = StubApi({"/faults": faults})
    for module in (fault_cmd, report_cmd):
        monkeypatch.setattr(module, "api", lambda _args: api)
    return api


def args(**values: Any) -> argparse.Namespace:
    return argparse.Namespace(home=None, stack=None, **values)


def test_fault_list_asks_for_open_faults_and_prints_the_oldest_first(stub: StubApi) -> None:
    printed = fault_cmd.list_faults(args(open=True, json=False)).splitlines()
    assert stub.calls == [("GET", "/faults", {"open": "true"})]
    assert printed[2].split()[:2] == [FAULT_A[:12], "CP-1"] and "2026-11-26 08:05" in printed[2]
    assert printed[3].startswith(FAULT_B[:12])


def test_a_prefix_names_one_fault_and_ack_sends_the_owner_and_note(stub: StubApi) -> None:
    stub.answer = {"acknowledged_by": "ana"}
    said = fault_cmd.ack_fault(args(fault_id=FAULT_A[:12] + "0", by="alice", note="on my way"))
    assert said == f"fault {FAULT_A[:12]} acknowledged by ana"
    assert stub.calls[-1] == ("POST", f"/faults/{FAULT_A}/ack", {"note": "owner: alice; on my way"})


@pytest.mark.parametrize(
    ("given", "message"), [("aaaaaaaaaaa", "matches several"), ("ffff", "no fault ffff")]
)
def test_a_prefix_of_no_fault_or_several_is_an_error(stub: StubApi, given: str, message: str) -> None:
    with pytest.raises(CliError, match=message):
        fault_cmd.show_fault(args(fault_id=given))


def test_a_whole_id_is_used_as_given_and_exclusions_are_sent_and_said(stub: StubApi) -> None:
    stub.answer = {"excluded_reason": None}
    said = fault_cmd.exclude_fault(args(fault_id=FAULT_B, clear=True, reason=None, note=None))
    assert said == f"fault {FAULT_B[:12]} no longer excluded from uptime"
    assert stub.calls == [("POST", f"/faults/{FAULT_B}/exclude", {"reason": None, "note": None})]
    stub.answer = {"changed": False, "state": "resolved"}
    assert fault_cmd.resolve_fault(args(fault_id=FAULT_B)).endswith("unchanged (resolved)")


def test_alerts_are_listed_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    alerts = [
        {"received_at": "2026-11-26T09:00:00+00:00", "severity": "major", "kind": "resolved", "subject": "b"},
        {"received_at": "2026-11-26T08:00:00+00:00", "severity": "major", "kind": "raised", "subject": "a"},
    ]
    api = StubApi({"/alerts": alerts})
    monkeypatch.setattr(fault_cmd, "api", lambda _args: api)
    printed = fault_cmd.list_alerts(args(since="2026-11-26", json=False)).splitlines()
    assert [line.split()[-1] for line in printed[2:]] == ["a", "b"]
    assert api.calls == [("GET", "/alerts", {"since": "2026-11-26"})]


def test_fleet_health_follows_the_api_and_sums_up() -> None:
    rows = [
        {
            "charger_id": "CP-2",
            "site_id": "S-1",
            "online": True,
            "connectors": {"10": "Available", "2": "Faulted"},
            "open_faults": {"minor": 1, "safety_critical": 2},
            "worst": "GroundFailure (connector 2)",
        },
        {
            "charger_id": "CP-1",
            "site_id": "",
            "online": True,
            "connectors": {},
            "open_faults": {},
            "worst": None,
        },
    ]
    ordered = health_cmd.fleet_health(StubApi({"/fleet/health": rows}))
    printed = health_cmd.health_table(ordered).splitlines()
    assert printed[2].startswith("CP-1") and "2:Faulted 10:Available" in printed[3]
    assert "2 safety-critical, 1 minor" in printed[3]
    assert printed[-1] == "1/2 chargers online without open faults"


def test_uptime_checks_the_month_before_asking_and_sorts_the_rows(stub: StubApi) -> None:
    with pytest.raises(UsageError, match="--month must be YYYY-MM"):
        report_cmd.show_uptime(args(month="2026-13", twelve_months=False, json=False, csv=False))
    assert stub.calls == []
    row = {"period": "2026-10", "outage_min": "0.000", "excluded_min": "0.000", "uptime_percent": "100.000"}
    stub.listings["/reports/uptime"] = [
        {**row, "charger_id": "CP-2", "connector_id": 1, "meets_97": True},
        {**row, "charger_id": "CP-1", "connector_id": 2, "meets_97": True},
    ]
    printed = report_cmd.show_uptime(args(month="2026-10", twelve_months=True, json=False, csv=True))
    assert printed.splitlines()[1:] == [
        "CP-1,2,2026-10,0.000,0.000,100.000,true",
        "CP-2,1,2026-10,0.000,0.000,100.000,true",
    ]
    assert stub.calls == [("GET", "/reports/uptime", {"month": "2026-10", "twelve_months": "true"})]
