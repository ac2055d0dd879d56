"""An unanswered BootNotification, in process: a real ocpp ChargePoint over a FakeLink."""

import asyncio
import json

import pytest
from fake_link import FakeLink, credentials

from chargenet_shim.sim.fleet import BOOT_RESENDS, boot_and_announce
from chargenet_shim.sim.simulator import SimulatedCharger

pytestmark = pytest.mark.timeout(10)

QUICK_TIMEOUT_S = 0.2


def _boot(link: FakeLink, **run_boot: int) -> tuple[str | None, int]:
    async def scenario() -> str | None:
        charger = SimulatedCharger(credentials(), link=link, response_timeout=QUICK_TIMEOUT_S)
        await charger.start()
        try:
            reply = await charger.run_boot(**run_boot)
            return str(reply.status)
        finally:
            await charger.stop()

    status = asyncio.run(scenario())
    return status, _boots(link)


def _boots(link: FakeLink) -> int:
    return sum(1 for frame in map(json.loads, link.sent) if frame[2] == "BootNotification")


def test_an_unanswered_boot_is_sent_again_until_answered():
    link = FakeLink()
    link.lost_replies = 2

    assert _boot(link, resends=2) == ("Accepted", 3)


def test_the_last_unanswered_boot_raises_timeout_after_the_resends():
    link = FakeLink()
    link.lost_replies = 3

    with pytest.raises(TimeoutError):
        _boot(link, resends=2)
    assert _boots(link) == 3


def test_without_resends_an_unanswered_boot_is_not_repeated():
    link = FakeLink()
    link.lost_replies = 1

    with pytest.raises(TimeoutError):
        _boot(link)
    assert _boots(link) == 1


def test_a_rejected_boot_is_an_answer_not_a_reason_to_resend():
    link = FakeLink()
    link.central.boot_replies["CP-UNIT"] = [{"status": "Rejected", "interval": 60}]

    assert _boot(link, resends=2) == ("Rejected", 1)


def test_negative_resends_are_refused():
    with pytest.raises(ValueError, match="resends"):
        _boot(FakeLink(), resends=-1)


def test_a_fleet_charger_whose_first_boots_go_unanswered_still_comes_up_and_announces():
    link = FakeLink()
    link.lost_replies = BOOT_RESENDS
    stages: list[str] = []

    async def scenario():
        charger = SimulatedCharger(credentials(), link=link, response_timeout=QUICK_TIMEOUT_S)
        await charger.start()
        try:
            return await boot_and_announce(charger, lambda _, stage: stages.append(stage))
        finally:
            await charger.stop()

    result = asyncio.run(scenario())

    assert result.error is None
    assert result.boot_status == "Accepted"
    assert _boots(link) == BOOT_RESENDS + 1
    assert stages == ["booted", "available", "done"]
    assert link.central.actions("CP-UNIT")[-1] == "Heartbeat"


def test_a_fleet_charger_never_answered_is_failed_not_raised():
    link = FakeLink()
    link.lost_replies = BOOT_RESENDS + 1

    async def scenario():
        charger = SimulatedCharger(credentials(), link=link, response_timeout=QUICK_TIMEOUT_S)
        await charger.start()
        try:
            return await boot_and_announce(charger, lambda *_: None)
        finally:
            await charger.stop()

    result = asyncio.run(scenario())

    assert result.boot_status is None
    assert "BootNotification" in (result.error or "")
