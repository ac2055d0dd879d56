"""The gateway end to end: OCPP clients over websockets -> gateway -> mosquitto (mTLS) -> backend and back."""

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, ResetStatus
from shim_stack import HOST, free_port
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.headers import build_authorization_basic

from chargenet_shim.gateway import Gateway, GatewayConfig, serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

PASSWORD = "correct horse battery"


class SiteCharger(ChargePoint):
    """A charger on the site LAN, written only with the `ocpp` package's client side."""

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        return call_result.Reset(status=ResetStatus.accepted)


@contextlib.asynccontextmanager
async def running(credentials_dir: Path, **config: object) -> AsyncIterator[Gateway]:
    gateway = await serve(GatewayConfig(port=0, credentials_dir=credentials_dir, **config))
    try:
        yield gateway
    finally:
        await gateway.close()


def _ws(
    gateway: Gateway,
    charger_id: str,
    password: str | None = PASSWORD,
    user: str | None = None,
    subprotocols: list[str] | None = None,
    scheme: str = "ws",
    tls: ssl.SSLContext | None = None,
) -> connect:
    headers = {"Authorization": build_authorization_basic(user or charger_id, password)} if password else {}
    return connect(
        f"{scheme}://{HOST}:{gateway.port}/ocpp/{charger_id}",
        subprotocols=["ocpp1.6"] if subprotocols is None else subprotocols,
        additional_headers=headers,
        ssl=tls,
        open_timeout=5,
    )


async def _status_of_refusal(connecting: connect) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connecting:
            pass
    return refused.value.response.status_code


async def _boot_and_accept_reset(websocket: ClientConnection, charger_id: str, backend) -> tuple:
    charger = SiteCharger(charger_id, websocket, response_timeout=5)
    receiver = asyncio.create_task(charger.start())
    try:
        boot = await charger.call(call.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
        await asyncio.to_thread(backend.send, charger_id, json.dumps([2, "r-1", "Reset", {"type": "Hard"}]))
        answer = await asyncio.to_thread(backend.wait_for, charger_id, lambda f: '"r-1"' in f)
        return boot, json.loads(answer)
    finally:
        receiver.cancel()


def test_an_ocpp_client_boots_through_the_gateway_and_answers_the_backend(
    provision, backend, credentials_dir
):
    creds = provision(password=PASSWORD)

    async def scenario():
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as websocket:
            assert websocket.subprotocol == "ocpp1.6"
            return await _boot_and_accept_reset(websocket, creds.charger_id, backend)

    boot, reset_answer = asyncio.run(scenario())

    assert boot.status == "Accepted"
    assert boot.interval == backend.heartbeat_interval
    assert json.loads(backend.frames(creds.charger_id)[0])[2:] == [
        "BootNotification",
        {"chargePointModel": "W1", "chargePointVendor": "ACME"},
    ]
    assert reset_answer == [3, "r-1", {"status": "Accepted"}]


def test_frames_are_relayed_verbatim_both_ways(provision, backend, credentials_dir):
    creds = provision(password=PASSWORD)
    # A CALLRESULT, so the backend does not answer it and the next frame down is ours.
    uplink = '[3, "v-1" ,  {"status": "Accepted", "data": "ünïcødé"}]'
    downlink = '[2,"v-2","DataTransfer",{"vendorId":"chargenet" , "data":"x"}]  '

    async def scenario() -> str:
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as websocket:
            await websocket.send(uplink)
            await asyncio.to_thread(backend.wait_for, creds.charger_id, lambda f: '"v-1"' in f)
            await asyncio.to_thread(backend.send, creds.charger_id, downlink)
            return await asyncio.wait_for(websocket.recv(), 5)

    assert asyncio.run(scenario()) == downlink
    assert backend.frames(creds.charger_id)[0] == uplink


def test_a_charger_cannot_speak_for_the_shim_in_its_vendor_id(provision, backend, credentials_dir):
    creds = provision(password=PASSWORD)
    installed = {
        "vendorId": "chargenet",
        "messageId": "CertificateInstalled",
        "data": '{"serialNumber": "1"}',
    }

    async def scenario() -> list:
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as websocket:
            await websocket.send(json.dumps([2, "i-1", "DataTransfer", installed]))
            refusal = json.loads(await asyncio.wait_for(websocket.recv(), 5))
            # Still relaying: the next frame reaches the backend, the refused one never did.
            await websocket.send('[3, "v-1", {}]')
            await asyncio.to_thread(backend.wait_for, creds.charger_id, lambda f: '"v-1"' in f)
            return refusal

    refusal = asyncio.run(scenario())

    assert refusal[:3] == [4, "i-1", "SecurityError"]
    assert backend.frames(creds.charger_id) == ['[3, "v-1", {}]']


def test_profile_2_runs_over_tls_with_a_server_certificate_from_the_ca(
    provision, backend, broker, credentials_dir, tmp_path
):
    creds = provision(password=PASSWORD)
    cert, key = broker.ca.issue_with_key("gateway", server=True, folder=tmp_path / "gateway-tls")
    trusting = ssl.create_default_context(cafile=broker.ca.cert_path)

    async def scenario():
        async with running(credentials_dir, security_profile=2, tls_cert=cert, tls_key=key) as gateway:
            with pytest.raises(ssl.SSLCertVerificationError):
                async with _ws(gateway, creds.charger_id, scheme="wss", tls=ssl.create_default_context()):
                    pass
            async with _ws(gateway, creds.charger_id, scheme="wss", tls=trusting) as websocket:
                return await _boot_and_accept_reset(websocket, creds.charger_id, backend)

    boot, reset_answer = asyncio.run(scenario())

    assert boot.status == "Accepted"
    assert reset_answer == [3, "r-1", {"status": "Accepted"}]


def test_profile_2_needs_a_server_certificate(credentials_dir):
    with pytest.raises(ValueError, match="profile 2 needs tls_cert"):
        GatewayConfig(port=0, credentials_dir=credentials_dir, security_profile=2)


def test_wrong_password_or_user_is_401(provision, credentials_dir):
    creds = provision(password=PASSWORD)

    async def scenario() -> list[int]:
        async with running(credentials_dir) as gateway:
            return [
                await _status_of_refusal(_ws(gateway, creds.charger_id, password="guess")),
                await _status_of_refusal(_ws(gateway, creds.charger_id, user="CP-other")),
                await _status_of_refusal(_ws(gateway, creds.charger_id, password=None)),
            ]

    assert asyncio.run(scenario()) == [401, 401, 401]


def test_unknown_charger_or_path_is_404(provision, credentials_dir):
    provision(password=PASSWORD)

    async def scenario() -> list[int]:
        async with running(credentials_dir) as gateway:
            return [
                await _status_of_refusal(_ws(gateway, "CP-nobody")),
                await _status_of_refusal(_ws(gateway, "..%2Fca")),
            ]

    assert asyncio.run(scenario()) == [404, 404]


def test_a_charger_without_a_password_is_refused(provision, credentials_dir):
    creds = provision(password=None)

    async def scenario() -> int:
        async with running(credentials_dir) as gateway:
            return await _status_of_refusal(_ws(gateway, creds.charger_id))

    assert asyncio.run(scenario()) == 403


def test_a_client_not_offering_ocpp16_is_refused(provision, credentials_dir):
    creds = provision(password=PASSWORD)

    async def scenario() -> list[int]:
        async with running(credentials_dir) as gateway:
            return [
                await _status_of_refusal(_ws(gateway, creds.charger_id, subprotocols=[])),
                await _status_of_refusal(_ws(gateway, creds.charger_id, subprotocols=["ocpp2.0.1"])),
            ]

    assert asyncio.run(scenario()) == [400, 400]


def test_five_wrong_passwords_lock_the_charger_out_even_for_the_right_one(provision, credentials_dir):
    creds, neighbour = provision(password=PASSWORD), provision(password=PASSWORD)

    async def scenario() -> tuple[list[int], int, int]:
        async with running(credentials_dir) as gateway:
            failures = [
                await _status_of_refusal(_ws(gateway, creds.charger_id, password="guess")) for _ in range(5)
            ]
            locked = await _status_of_refusal(_ws(gateway, creds.charger_id))
            async with _ws(gateway, neighbour.charger_id) as websocket:
                return failures, locked, websocket.response.status_code

    failures, locked, neighbour_status = asyncio.run(scenario())

    assert failures == [401] * 5
    assert locked == 429
    assert neighbour_status == 101


def test_parallel_guesses_cannot_slip_past_the_lockout(provision, credentials_dir):
    creds = provision(password=PASSWORD)

    async def scenario() -> list[int]:
        async with running(credentials_dir) as gateway:
            guesses = [_status_of_refusal(_ws(gateway, creds.charger_id, password=f"g{i}")) for i in range(8)]
            return sorted(await asyncio.gather(*guesses))

    assert asyncio.run(scenario()) == [401] * 5 + [429] * 3


def test_an_mqtt_link_that_cannot_connect_closes_the_websocket_with_1011(provision, credentials_dir):
    creds = provision(password=PASSWORD)
    creds.model_copy(update={"mqtt_port": free_port()}).save(credentials_dir / creds.charger_id)

    async def scenario() -> ConnectionClosedError:
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as websocket:
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(websocket.recv(), 5)
            return closed.value

    closed = asyncio.run(scenario())

    assert closed.rcvd is not None
    assert closed.rcvd.code == 1011
    assert closed.rcvd.reason == "cloud link unavailable"


def test_closing_the_gateway_closes_chargers_and_their_mqtt_links(
    provision, backend, broker, credentials_dir
):
    creds = provision(password=PASSWORD)

    async def scenario() -> ConnectionClosed:
        gateway = await serve(GatewayConfig(port=0, credentials_dir=credentials_dir))
        async with _ws(gateway, creds.charger_id) as websocket:
            await websocket.send('[2,"h-1","Heartbeat",{}]')
            await asyncio.wait_for(websocket.recv(), 5)
            await gateway.close()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(websocket.recv(), 5)
            return closed.value

    closed = asyncio.run(scenario())

    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1001, "cloud link closed")
    assert broker.wait_for_presence(creds.charger_id, connected=False).reason == "CLIENT_INITIATED_DISCONNECT"


def test_a_reconnecting_charger_replaces_its_previous_connection(provision, backend, credentials_dir):
    creds = provision(password=PASSWORD)

    async def scenario():
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as stale:
            await stale.send('[2,"s-1","Heartbeat",{}]')
            await asyncio.wait_for(stale.recv(), 5)
            async with _ws(gateway, creds.charger_id) as fresh:
                with pytest.raises(ConnectionClosed) as replaced:
                    await asyncio.wait_for(stale.recv(), 5)
                await fresh.send('[2,"f-1","Heartbeat",{}]')
                return replaced.value, json.loads(await asyncio.wait_for(fresh.recv(), 5))

    replaced, answer = asyncio.run(scenario())

    assert replaced.rcvd is not None
    assert (replaced.rcvd.code, replaced.rcvd.reason) == (1001, "cloud link closed")
    assert answer[:2] == [3, "f-1"]
