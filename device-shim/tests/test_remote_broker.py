"""Remote diagnostics and repair through the real broker: the fake backend's commands, the charger's answers
and what follows them, and a diagnostics upload to a local HTTP server."""

import asyncio
import itertools
import json

import pytest
from upload_server import upload_server

from chargenet_shim.sim.simulator import SimulatedCharger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

_ids = itertools.count(1)


def _messages(backend, charger_id: str) -> list[list]:
    return [json.loads(frame) for frame in backend.frames(charger_id)]


async def _command(backend, charger_id: str, action: str, payload: dict) -> list:
    """A CALL from the backend over the broker; the charger's answer frame."""
    unique_id = f"remote-{next(_ids)}"
    await asyncio.to_thread(backend.send, charger_id, json.dumps([2, unique_id, action, payload]))
    frame = await asyncio.to_thread(
        backend.wait_for, charger_id, lambda f: json.loads(f)[:2] in ([3, unique_id], [4, unique_id])
    )
    return json.loads(frame)


async def _then(backend, charger_id: str, answer: list, actions: list[str]) -> list[dict]:
    """The payloads of the charger's next CALLs after `answer`, once they are `actions`."""

    def sent_after() -> list[list]:
        messages = _messages(backend, charger_id)
        return [m for m in messages[messages.index(answer) + 1 :] if m[0] == 2]

    await asyncio.to_thread(backend.wait_until, lambda: len(sent_after()) >= len(actions))
    calls = sent_after()[: len(actions)]
    assert [m[2] for m in calls] == actions
    return [m[3] for m in calls]


def test_the_backend_resets_triggers_configures_and_collects_diagnostics_over_the_broker(provision, backend):
    creds = provision()
    charger_id = creds.charger_id

    async def scenario(location: str) -> dict:
        charger = SimulatedCharger(creds)
        await charger.start()
        try:
            await charger.run_boot()
            seen: dict = {}
            reset = await _command(backend, charger_id, "Reset", {"type": "Hard"})
            seen["reset"] = (
                reset,
                await _then(backend, charger_id, reset, ["BootNotification", *["StatusNotification"] * 3]),
            )
            trigger = {"requestedMessage": "StatusNotification", "connectorId": 1}
            triggered = await _command(backend, charger_id, "TriggerMessage", trigger)
            seen["trigger"] = (triggered, await _then(backend, charger_id, triggered, ["StatusNotification"]))
            asked = {"key": ["HeartbeatInterval", "NumberOfConnectors", "NoSuchKey"]}
            seen["get"] = await _command(backend, charger_id, "GetConfiguration", asked)
            change = {"key": "HeartbeatInterval", "value": "60"}
            seen["change"] = await _command(backend, charger_id, "ChangeConfiguration", change)
            seen["heartbeat_interval"] = charger.heartbeat_interval
            diagnostics = await _command(
                backend, charger_id, "GetDiagnostics", {"location": location, "retries": 1}
            )
            notifications = ["DiagnosticsStatusNotification"] * 2
            seen["diagnostics"] = (diagnostics, await _then(backend, charger_id, diagnostics, notifications))
            return seen
        finally:
            await charger.stop()

    with upload_server() as server:
        seen = asyncio.run(scenario(server.url(f"diagnostics/{charger_id}.log")))
        [(path, body)] = server.wait_for_uploads(1)

    reset, after_reset = seen["reset"]
    assert reset[2] == {"status": "Accepted"}
    assert [(p["connectorId"], p["status"]) for p in after_reset[1:]] == [(c, "Available") for c in (0, 1, 2)]
    triggered, [status] = seen["trigger"]
    assert triggered[2] == {"status": "Accepted"}
    assert (status["connectorId"], status["status"], status["errorCode"]) == (1, "Available", "NoError")
    assert seen["get"][2] == {
        "configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": str(backend.heartbeat_interval)},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
        ],
        "unknownKey": ["NoSuchKey"],
    }
    assert seen["change"][2] == {"status": "Accepted"}
    assert seen["heartbeat_interval"] == 60
    diagnostics, notifications = seen["diagnostics"]
    assert diagnostics[2]["fileName"].startswith(f"{charger_id}-")
    assert [p["status"] for p in notifications] == ["Uploading", "Uploaded"]
    assert path.startswith(f"/diagnostics/{charger_id}.log?")
    log = body.decode()
    assert log.startswith(f"# diagnostics of charger {charger_id}\n")
    assert "Hard reset" in log
    assert "configuration HeartbeatInterval=60: Accepted" in log
