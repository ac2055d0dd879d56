"""The gateway end to end: OCPP clients over websockets -> gateway -> mosquitto (mTLS) -> backend and back."""

import asyncio
import contextlib
import json
import logging
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
from websockets.frames import Close
from websockets.headers import build_authorization_basic
from websockets.http11 import Response

from chargenet_shim import auth
from chargenet_shim.frame_limit import MAX_FRAME_BYTES
from chargenet_shim.gateway import MAX_WEBSOCKET_MESSAGE_BYTES, Gateway, GatewayConfig, serve
from chargenet_shim.limiter import ADDRESS_MAX_FAILURES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

PASSWORD = "correct horse battery"
WRONG = "a wrong password, 16+ bytes"


class SiteCharger(ChargePoint):
    """A charger on the site LAN, written only with the `ocpp` package's client side."""

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        return call_result.Reset(status=ResetStatus.accepted)


def _config(credentials_dir: Path, **config: object) -> GatewayConfig:
    """Profile 1 unless told otherwise, explicitly allowed: these tests run on loopback."""
    plain = config.get("security_profile", 1) == 1
    return GatewayConfig(port=0, credentials_dir=credentials_dir, allow_plain_ws=plain, **config)


@contextlib.asynccontextmanager
async def running(credentials_dir: Path, **config: object) -> AsyncIterator[Gateway]:
    gateway = await serve(_config(credentials_dir, **config))
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
    source: str | None = None,
) -> connect:
    """`source`: the loopback address (127.x.y.z) the client connects from."""
    headers = {"Authorization": build_authorization_basic(user or charger_id, password)} if password else {}
    return connect(
        f"{scheme}://{HOST}:{gateway.port}/ocpp/{charger_id}",
        subprotocols=["ocpp1.6"] if subprotocols is None else subprotocols,
        additional_headers=headers,
        ssl=tls,
        open_timeout=5,
        local_addr=(source, 0) if source else None,
    )


async def _refusal(connecting: connect) -> Response:
    with pytest.raises(InvalidStatus) as refused:
        async with connecting:
            pass
    return refused.value.response


async def _status_of_refusal(connecting: connect) -> int:
    return (await _refusal(connecting)).status_code


async def _closed_by_the_gateway(websocket: ClientConnection) -> Close:
    """The close frame the gateway ends `websocket` with."""
    with pytest.raises(ConnectionClosedError) as closed:
        await asyncio.wait_for(websocket.recv(), 5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd


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


def test_a_path_that_names_no_charger_id_is_404(provision, credentials_dir):
    provision(password=PASSWORD)

    async def scenario() -> list[int]:
        async with running(credentials_dir) as gateway:
            return [await _status_of_refusal(_ws(gateway, path)) for path in ("..%2Fca", "CP.1", "CP-1%0A")]

    assert asyncio.run(scenario()) == [404, 404, 404]


def test_a_charger_without_a_password_is_refused(provision, credentials_dir):
    creds = provision(password=None)

    async def scenario() -> int:
        async with running(credentials_dir) as gateway:
            return await _status_of_refusal(_ws(gateway, creds.charger_id))

    assert asyncio.run(scenario()) == 401


def _seen(response: Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Everything a client learns from a refusal but the time of day."""
    return (
        response.status_code,
        response.body,
        [(k, v) for k, v in response.headers.raw_items() if k != "Date"],
    )


def test_unknown_ids_and_chargers_without_a_password_answer_like_a_wrong_password(
    provision, credentials_dir, monkeypatch
):
    # Issue 20: an unknown id was 404 and a charger without a password 403, before any password
    # was checked: the handshake told which charger ids exist.
    known, passwordless = provision(password=PASSWORD), provision(password=None)
    verified: list[str] = []
    verify = auth.verify_password

    def verify_and_count(password: str, stored: str) -> bool:
        verified.append(stored)
        return verify(password, stored)

    monkeypatch.setattr(auth, "verify_password", verify_and_count)

    async def scenario() -> list[Response]:
        async with running(credentials_dir) as gateway:
            ids = (known.charger_id, "CP-nobody", passwordless.charger_id)
            return [await _refusal(_ws(gateway, charger_id, password=WRONG)) for charger_id in ids]

    wrong_password, unknown, without_password = map(_seen, asyncio.run(scenario()))

    assert wrong_password[:2] == (401, b"Invalid credentials\n")
    assert unknown == wrong_password
    assert without_password == wrong_password
    # The same scrypt work for each, so the time taken does not tell them apart either.
    assert len(verified) == 3


def test_an_unknown_id_is_locked_out_like_a_known_one(provision, credentials_dir):
    known = provision(password=PASSWORD)

    async def guesses(gateway: Gateway, charger_id: str, source: str) -> list[int]:
        return [
            await _status_of_refusal(_ws(gateway, charger_id, password=WRONG, source=source))
            for _ in range(6)
        ]

    async def scenario() -> tuple[list[int], list[int]]:
        async with running(credentials_dir) as gateway:
            return await guesses(gateway, known.charger_id, "127.0.0.2"), await guesses(
                gateway, "CP-nobody", "127.0.0.3"
            )

    at_known, at_unknown = asyncio.run(scenario())

    assert at_known == [401] * 5 + [429]
    assert at_unknown == at_known


def test_one_address_guessing_many_charger_ids_is_locked_out(provision, credentials_dir):
    # Issue 20: the lockout was per charger id only, so one address could try four passwords on
    # every charger id, again every minute.
    creds = provision(password=PASSWORD)

    async def scenario() -> tuple[list[int], int, int]:
        async with running(credentials_dir) as gateway:
            guesses = [
                await _status_of_refusal(_ws(gateway, f"CP-guess-{n}", password=WRONG, source="127.0.0.4"))
                for n in range(ADDRESS_MAX_FAILURES)
            ]
            locked = await _status_of_refusal(_ws(gateway, creds.charger_id, source="127.0.0.4"))
            async with _ws(gateway, creds.charger_id, source="127.0.0.5") as websocket:
                return guesses, locked, websocket.response.status_code

    guesses, locked, elsewhere = asyncio.run(scenario())

    assert guesses == [401] * ADDRESS_MAX_FAILURES
    assert locked == 429  # even with the right password, for any charger id
    assert elsewhere == 101  # the charger itself, from its own address, is not locked out


def test_guesses_at_one_id_from_many_addresses_are_locked_out_by_the_id(provision, credentials_dir):
    creds = provision(password=PASSWORD)

    async def scenario() -> tuple[list[int], int]:
        async with running(credentials_dir) as gateway:
            guesses = [
                await _status_of_refusal(
                    _ws(gateway, creds.charger_id, password=WRONG, source=f"127.0.1.{n}")
                )
                for n in range(1, 6)
            ]
            return guesses, await _status_of_refusal(_ws(gateway, creds.charger_id, source="127.0.1.9"))

    assert asyncio.run(scenario()) == ([401] * 5, 429)


def test_profile_1_is_refused_unless_plain_ws_is_explicitly_allowed(credentials_dir):
    # Issue 20: profile 1 (passwords in clear) was the default, with nothing saying so.
    with pytest.raises(ValueError, match=r"profile 1 is plain ws.*trusted site LAN only.*--allow-plain-ws"):
        GatewayConfig(port=0, credentials_dir=credentials_dir)

    assert GatewayConfig(port=0, credentials_dir=credentials_dir, allow_plain_ws=True).security_profile == 1


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

    async def scenario() -> Close:
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as websocket:
            return await _closed_by_the_gateway(websocket)

    closed = asyncio.run(scenario())

    assert (closed.code, closed.reason) == (1011, "cloud link unavailable")


def test_closing_the_gateway_closes_chargers_and_their_mqtt_links(
    provision, backend, broker, credentials_dir
):
    creds = provision(password=PASSWORD)

    async def scenario() -> ConnectionClosed:
        gateway = await serve(_config(credentials_dir))
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


def _data_transfer(size: int, message_id: str) -> str:
    """A CALL of exactly `size` bytes."""
    empty = f'[2,"{message_id}","DataTransfer",{{"vendorId":"ACME","data":""}}]'
    return empty.replace('"data":""', f'"data":"{"x" * (size - len(empty))}"')


# 1 MiB + 1: over websockets' default max_size, which would have closed the connection with 1009.
@pytest.mark.parametrize("size", [MAX_FRAME_BYTES + 1, 140_000, 1_000_000, 1024 * 1024 + 1])
def test_an_oversized_call_gets_a_callerror_and_the_heartbeat_behind_it_is_answered(
    provision, backend, broker, credentials_dir, caplog, size
):
    # Issue 16: relayed, it made the broker drop the charger's MQTT link, again on every resend.
    creds = provision(password=PASSWORD)

    async def scenario() -> tuple[list, list]:
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as websocket:
            await websocket.send(_data_transfer(size, "big-1"))
            await websocket.send('[2,"hb-1","Heartbeat",{}]')
            refusal = json.loads(await asyncio.wait_for(websocket.recv(), 5))
            heartbeat = json.loads(await asyncio.wait_for(websocket.recv(), 5))
            return refusal, heartbeat

    with caplog.at_level(logging.WARNING, logger="chargenet_shim"):
        refusal, heartbeat = asyncio.run(scenario())

    assert refusal == [4, "big-1", "GenericError", f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}", {}]
    assert heartbeat[:2] == [3, "hb-1"]
    # Never published: the backend saw the heartbeat only, and the link never dropped.
    assert [json.loads(f)[1] for f in backend.frames(creds.charger_id)] == ["hb-1"]
    log = broker.log_of(creds.charger_id)
    assert sum("New client connected" in line for line in log) == 1, log
    assert not any("oversize" in line for line in log), log
    assert f"CALL 'big-1' of {size} bytes, over the {MAX_FRAME_BYTES}-byte frame limit" in caplog.text
    assert "cloud link" not in caplog.text


def test_an_oversized_answer_is_dropped_and_the_charger_stays_connected(
    provision, backend, credentials_dir, caplog
):
    creds = provision(password=PASSWORD)
    answer = f'[3,"r-1",{{"data":"{"x" * MAX_FRAME_BYTES}"}}]'

    async def scenario() -> list:
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as websocket:
            # Once the link is up (its first frame answered), the backend's CALL reaches the charger.
            await websocket.send('[2,"hb-1","Heartbeat",{}]')
            await asyncio.wait_for(websocket.recv(), 5)
            await asyncio.to_thread(backend.send, creds.charger_id, '[2,"r-1","GetConfiguration",{}]')
            await asyncio.wait_for(websocket.recv(), 5)
            await websocket.send(answer)
            await websocket.send('[2,"hb-2","Heartbeat",{}]')
            return json.loads(await asyncio.wait_for(websocket.recv(), 5))

    with caplog.at_level(logging.ERROR, logger="chargenet_shim"):
        heartbeat = asyncio.run(scenario())

    assert heartbeat[:2] == [3, "hb-2"]
    assert [json.loads(f)[1] for f in backend.frames(creds.charger_id)] == ["hb-1", "hb-2"]
    assert f"CALLRESULT 'r-1' of {len(answer)} bytes" in caplog.text
    assert "nothing to answer, dropped" in caplog.text


def test_a_message_over_the_websocket_limit_closes_the_connection_with_1009(
    provision, backend, credentials_dir
):
    creds = provision(password=PASSWORD)

    async def scenario() -> Close:
        async with running(credentials_dir) as gateway, _ws(gateway, creds.charger_id) as websocket:
            await websocket.send(_data_transfer(MAX_WEBSOCKET_MESSAGE_BYTES + 1, "huge-1"))
            return await _closed_by_the_gateway(websocket)

    assert asyncio.run(scenario()).code == 1009
    assert backend.frames(creds.charger_id) == []
