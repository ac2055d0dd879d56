"""OCPP 2.0.1 through the gateway: the subprotocol picks the version, the ingest topic and every word the gateway says.

The chargers are the `ocpp` package's own v201 ChargePoint (or raw frames where a test needs a
frame no client would send), over real WebSockets to the real gateway, its mTLS MQTT links to
the shim's mosquitto and the fake backend behind it, which records the ingest rule each frame
reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from booted import until
from fake_link import FakeLink
from ocpp.exceptions import FormatViolationError, OccurrenceConstraintViolationError
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action
from shim_stack import HOST, INGEST_RULE, INGEST_RULE_201
from test_firmware import IMAGE, PackageServer, package_server, public_pem
from test_gateway_firmware import OPERATOR, InstallsOffers, RelayUnderTest, package
from test_gateway_profile3 import client_tls
from test_gateway_profile3 import running as profile_3_gateway
from test_jobs import execution, terminal_of
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.headers import build_authorization_basic

from chargenet_firmware_format import unpack
from chargenet_shim.frame_limit import MAX_FRAME_BYTES
from chargenet_shim.gateway import Gateway, GatewayConfig, serve
from chargenet_shim.gateway_firmware import call_error
from chargenet_shim.ocpp_version import OcppVersion

pytestmark = pytest.mark.timeout(30)

PASSWORD = "a 2.0.1 site password"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def packages() -> Iterator[PackageServer]:
    with package_server() as server:
        yield server


class Station(InstallsOffers, ChargePoint):
    """A 2.0.1 charging station that checks a firmware image's manufacturer signature itself, then 'installs' it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offers: list[tuple[int, dict[str, Any]]] = []

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    @on(Action.update_firmware)
    def on_update_firmware(self, request_id: int, firmware: dict, **_: Any) -> call_result.UpdateFirmware:
        self.offers.append((request_id, firmware))
        return call_result.UpdateFirmware(status="Accepted")

    @after(Action.update_firmware)
    async def install(self, request_id: int, firmware: dict, **_: Any) -> None:
        await self.install_offered(request_id, firmware)

    async def _status(self, status: str, request_id: int) -> None:
        await self.call(call.FirmwareStatusNotification(status=status, request_id=request_id))


def _boot(firmware_version: str = "1.0.0") -> call.BootNotification:
    station = {"model": "W1", "vendor_name": "ACME", "firmware_version": firmware_version}
    return call.BootNotification(charging_station=station, reason="PowerUp")


@contextlib.asynccontextmanager
async def gateway_for(credentials_dir: Path, **config: Any) -> AsyncIterator[Gateway]:
    gateway = await serve(
        GatewayConfig(port=0, credentials_dir=credentials_dir, allow_plain_ws=True, **config)
    )
    try:
        yield gateway
    finally:
        await gateway.close()


def _ws(gateway: Gateway, charger_id: str, subprotocols: list[str]) -> connect:
    return connect(
        f"ws://{HOST}:{gateway.port}/ocpp/{charger_id}",
        subprotocols=subprotocols,
        additional_headers={"Authorization": build_authorization_basic(charger_id, PASSWORD)},
        open_timeout=5,
        max_size=None,
    )


@contextlib.asynccontextmanager
async def station(websocket: ClientConnection, charger_id: str) -> AsyncIterator[Station]:
    charger = Station(charger_id, websocket, response_timeout=5)
    receiver = asyncio.create_task(charger.start())
    try:
        yield charger
    finally:
        receiver.cancel()


# ------------------------------------------------------------------ negotiation and topics
def test_a_201_station_is_answered_in_201_and_its_frames_reach_the_201_rule(
    provision, backend, credentials_dir
):
    creds = provision(password=PASSWORD)
    charger_id = creds.charger_id

    async def scenario() -> tuple[str | None, Any, list[Any]]:
        async with (
            gateway_for(credentials_dir) as gateway,
            _ws(gateway, charger_id, ["ocpp2.0.1"]) as websocket,
            station(websocket, charger_id) as charger,
        ):
            booted = await charger.call(_boot())
            await asyncio.to_thread(
                backend.send, charger_id, json.dumps([2, "r-1", "Reset", {"type": "Immediate"}])
            )
            answer = await asyncio.to_thread(backend.wait_for, charger_id, lambda f: '"r-1"' in f)
            return websocket.subprotocol, booted, json.loads(answer)

    subprotocol, booted, reset_answer = asyncio.run(scenario())

    assert subprotocol == "ocpp2.0.1"
    assert (booted.status, booted.interval) == ("Accepted", backend.heartbeat_interval)
    assert json.loads(backend.frames(charger_id)[0])[2:] == [
        "BootNotification",
        {
            "chargingStation": {"model": "W1", "vendorName": "ACME", "firmwareVersion": "1.0.0"},
            "reason": "PowerUp",
        },
    ]
    assert reset_answer == [3, "r-1", {"status": "Accepted"}]
    assert backend.rules(charger_id) == [INGEST_RULE_201, INGEST_RULE_201]


def test_a_201_station_with_its_own_certificate_boots_through_a_profile_3_gateway(
    provision, backend, broker, credentials_dir, tmp_path
):
    creds = provision()
    server_tls = broker.ca.issue_with_key("gateway", server=True, folder=tmp_path / "gateway-tls")

    async def scenario() -> tuple[str | None, Any]:
        tls = client_tls(broker.ca, (creds.cert_path, creds.key_path))
        async with (
            profile_3_gateway(credentials_dir, broker.ca, server_tls) as gateway,
            connect(
                f"wss://{HOST}:{gateway.port}/ocpp/{creds.charger_id}", subprotocols=["ocpp2.0.1"], ssl=tls
            ) as websocket,
            station(websocket, creds.charger_id) as charger,
        ):
            return websocket.subprotocol, await charger.call(_boot())

    subprotocol, booted = asyncio.run(scenario())

    assert (subprotocol, booted.status) == ("ocpp2.0.1", "Accepted")
    assert backend.rules(creds.charger_id) == [INGEST_RULE_201]


def test_a_201_station_boots_through_a_profile_2_gateway_over_tls_with_its_password(
    provision, backend, broker, credentials_dir, tmp_path
):
    creds = provision(password=PASSWORD)
    cert, key = broker.ca.issue_with_key("gateway", server=True, folder=tmp_path / "gateway-tls")
    trusting = ssl.create_default_context(cafile=broker.ca.cert_path)

    async def scenario() -> tuple[str | None, Any]:
        async with (
            gateway_for(credentials_dir, security_profile=2, tls_cert=cert, tls_key=key) as gateway,
            connect(
                f"wss://{HOST}:{gateway.port}/ocpp/{creds.charger_id}",
                subprotocols=["ocpp2.0.1"],
                ssl=trusting,
                additional_headers={"Authorization": build_authorization_basic(creds.charger_id, PASSWORD)},
            ) as websocket,
            station(websocket, creds.charger_id) as charger,
        ):
            return websocket.subprotocol, await charger.call(_boot())

    subprotocol, booted = asyncio.run(scenario())

    assert (subprotocol, booted.status) == ("ocpp2.0.1", "Accepted")
    assert backend.rules(creds.charger_id) == [INGEST_RULE_201]


@pytest.mark.parametrize(
    ("offered", "spoken", "rule"),
    [
        (["ocpp1.6"], "ocpp1.6", INGEST_RULE),
        (["ocpp2.0.1"], "ocpp2.0.1", INGEST_RULE_201),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1", INGEST_RULE_201),
        (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1", INGEST_RULE_201),
        (["ocpp2.1", "ocpp1.6"], "ocpp1.6", INGEST_RULE),
    ],
    ids=["1.6", "2.0.1", "both-1.6-first", "both-2.0.1-first", "unknown-and-1.6"],
)
def test_the_version_negotiated_picks_the_ingest_rule(
    provision, backend, credentials_dir, offered, spoken, rule
):
    creds = provision(password=PASSWORD)

    async def scenario() -> str | None:
        async with (
            gateway_for(credentials_dir) as gateway,
            _ws(gateway, creds.charger_id, offered) as websocket,
        ):
            await websocket.send('[2,"hb-1","Heartbeat",{}]')
            await asyncio.to_thread(backend.wait_for, creds.charger_id, lambda f: '"hb-1"' in f)
            assert json.loads(await asyncio.wait_for(websocket.recv(), 5))[:2] == [3, "hb-1"]
            return websocket.subprotocol

    assert asyncio.run(scenario()) == spoken
    assert backend.rules(creds.charger_id) == [rule]


def test_a_charger_offering_neither_version_is_refused(provision, credentials_dir):
    creds = provision(password=PASSWORD)

    async def status_of(offered: list[str]) -> int:
        async with gateway_for(credentials_dir) as gateway:
            with pytest.raises(InvalidStatus) as refused:
                async with _ws(gateway, creds.charger_id, offered):
                    pass
            return refused.value.response.status_code

    async def scenario() -> list[int]:
        return [await status_of(offered) for offered in ([], ["ocpp2.1"], ["ocpp1.5", "ocpp2.0"])]

    assert asyncio.run(scenario()) == [400, 400, 400]


# ------------------------------------------------------------------ what the gateway says itself
def test_an_oversized_201_call_is_refused_with_the_201_code_and_never_published(
    provision, backend, credentials_dir
):
    creds = provision(password=PASSWORD)
    padding = "x" * (MAX_FRAME_BYTES + 1)
    oversized = json.dumps([2, "big-1", "DataTransfer", {"vendorId": "ACME", "data": padding}])

    async def scenario() -> list[Any]:
        async with (
            gateway_for(credentials_dir) as gateway,
            _ws(gateway, creds.charger_id, ["ocpp2.0.1"]) as websocket,
        ):
            await websocket.send(oversized)
            refusal = json.loads(await asyncio.wait_for(websocket.recv(), 5))
            # Still connected, and the next frame gets through.
            await websocket.send('[2,"hb-2","Heartbeat",{}]')
            assert json.loads(await asyncio.wait_for(websocket.recv(), 5))[:2] == [3, "hb-2"]
            return refusal

    refusal = asyncio.run(scenario())

    # GenericError is 2.0.1's code too (OCPP-J 2.0.1 4.3), and the backend's for a frame too large.
    assert refusal == [
        4,
        "big-1",
        "GenericError",
        f"frame of {len(oversized)} bytes exceeds {MAX_FRAME_BYTES}",
        {},
    ]
    assert [json.loads(f)[1] for f in backend.frames(creds.charger_id)] == ["hb-2"]


def test_a_201_charger_cannot_speak_for_the_shim(provision, backend, credentials_dir):
    creds = provision(password=PASSWORD)
    sign = [
        2,
        "s-1",
        "SignCertificate",
        {"csr": "-----BEGIN CERTIFICATE REQUEST-----", "certificateType": "ChargingStationCertificate"},
    ]
    retire = [
        2,
        "d-1",
        "DataTransfer",
        {"vendorId": "chargenet", "messageId": "CertificateInstalled", "data": {"serialNumber": "1"}},
    ]

    async def scenario() -> list[list[Any]]:
        async with (
            gateway_for(credentials_dir) as gateway,
            _ws(gateway, creds.charger_id, ["ocpp2.0.1"]) as websocket,
        ):
            answers = []
            for frame in (sign, retire):
                await websocket.send(json.dumps(frame))
                answers.append(json.loads(await asyncio.wait_for(websocket.recv(), 5)))
            return answers

    answers = asyncio.run(scenario())

    assert [answer[:3] for answer in answers] == [[4, "s-1", "NotSupported"], [4, "d-1", "SecurityError"]]
    assert backend.frames(creds.charger_id) == []


@pytest.mark.parametrize(
    ("error", "in_16", "in_201"),
    [
        (FormatViolationError, "FormationViolation", "FormatViolation"),
        (OccurrenceConstraintViolationError, "OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
    ],
)
def test_the_gateways_call_errors_are_spelt_as_the_chargers_version_spells_them(error, in_16, in_201):
    raised = error(details={"cause": "bad location https://u:secret@host/fw?X-Amz-Signature=abc"})

    frames = {version: json.loads(call_error(version, "m-1", raised)) for version in OcppVersion}

    assert frames[OcppVersion.V16][2] == in_16
    assert frames[OcppVersion.V201][2] == in_201
    assert "secret" not in json.dumps(frames) and "X-Amz-Signature" not in json.dumps(frames)


# ------------------------------------------------------------------ firmware
def _update_201(request_id: int, location: str) -> list[Any]:
    return [
        2,
        "u-1",
        "UpdateFirmware",
        {"requestId": request_id, "firmware": {"location": location, "retrieveDateTime": NOW.isoformat()}},
    ]


def _statuses(frames: list[Any]) -> list[tuple[str, int | None]]:
    return [
        (f[3]["status"], f[3].get("requestId"))
        for f in frames
        if f[0] == 2 and f[2] == "FirmwareStatusNotification"
    ]


def test_a_201_station_is_offered_a_verified_release_as_201_update_firmware_and_its_statuses_reach_the_backend(
    provision, backend, credentials_dir, packages, tmp_path
):
    creds = provision(password=PASSWORD)
    charger_id = creds.charger_id
    key_file = tmp_path / "operator.pub.pem"
    key_file.write_bytes(public_pem(OPERATOR))
    published = package("2.0.0")
    vendor = unpack(published)[0].vendor
    update = _update_201(42, packages.publish("fw", published))

    async def scenario() -> Station:
        async with (
            gateway_for(credentials_dir, firmware_key=key_file) as gateway,
            _ws(gateway, charger_id, ["ocpp2.0.1"]) as websocket,
            station(websocket, charger_id) as charger,
        ):
            await charger.call(_boot())
            await asyncio.to_thread(backend.send, charger_id, json.dumps(update))
            await asyncio.to_thread(backend.wait_for, charger_id, lambda f: '"Installed"' in f, 10)
            return charger

    charger = asyncio.run(scenario())

    assert charger.downloaded == IMAGE
    [(request_id, firmware)] = charger.offers
    assert request_id == 42, "the backend's requestId, so the station's statuses carry it"
    assert (firmware["signature"], firmware["signing_certificate"]) == (
        vendor.signature,
        vendor.signing_certificate,
    )
    assert firmware["location"].startswith(f"http://{HOST}:")
    frames = [json.loads(f) for f in backend.frames(charger_id)]
    assert [3, "u-1", {"status": "Accepted"}] in frames
    # The gateway's own download and check, then the station's statuses, in 2.0.1's words.
    assert _statuses(frames) == [
        (status, 42)
        for status in (
            "Downloading",
            "Downloaded",
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "Installed",
        )
    ]
    assert set(backend.rules(charger_id)) == {INGEST_RULE_201}


def test_a_tampered_release_never_reaches_a_201_station_and_the_backend_hears_invalid_signature(packages):
    tampered = package("2.0.0").replace(b"simulated charger firmware", b"simulated charger backdoor")

    async def scenario() -> RelayUnderTest:
        relay = RelayUnderTest(version=OcppVersion.V201)
        try:
            await _boot_relay(relay)
            answer = await relay.relay.from_cloud(
                json.dumps(_update_201(7, packages.publish("fw", tampered)))
            )
            assert json.loads(answer) == [3, "u-1", {"status": "Accepted"}]
            await until(lambda: len(relay.to_cloud) == 4)
            return relay
        finally:
            await relay.relay.close()

    relay = asyncio.run(scenario())

    assert relay.told() == [
        ("FirmwareStatusNotification", "Downloading"),
        ("FirmwareStatusNotification", "Downloaded"),
        ("SecurityEventNotification", "InvalidFirmwareSignature"),
        ("FirmwareStatusNotification", "InvalidSignature"),
    ]
    assert {n.request_id for n in relay.to_cloud if type(n).__name__ == "FirmwareStatusNotification"} == {7}
    assert "SHA-256 differs" in relay.to_cloud[2].tech_info
    assert relay.to_charger == [], "nothing reaches the charger"


def test_a_second_201_update_while_one_is_under_way_is_rejected_and_a_malformed_one_gets_a_201_error(
    packages,
):
    async def scenario() -> tuple[list[Any], list[Any]]:
        relay = RelayUnderTest(version=OcppVersion.V201)
        try:
            await _boot_relay(relay)
            location = packages.publish("fw", package("2.0.0"))
            await relay.relay.from_cloud(json.dumps(_update_201(1, location)))
            busy = json.loads(await relay.relay.from_cloud(json.dumps(_update_201(2, location))))
            malformed = _update_201(3, location)
            malformed[3]["firmware"]["checksum"] = "not a 2.0.1 field"
            refused = json.loads(await relay.relay.from_cloud(json.dumps(malformed)))
            return busy, refused
        finally:
            await relay.relay.close()

    busy, refused = asyncio.run(scenario())

    assert busy[2]["status"] == "Rejected" and busy[2]["statusInfo"]["reasonCode"] == "UpdateInProgress"
    assert refused[:3] == [4, "u-1", "FormatViolation"]


async def _boot_relay(relay: RelayUnderTest, firmware_version: str = "1.0.0") -> None:
    boot = {
        "chargingStation": {"vendorName": "ACME", "model": "W1", "firmwareVersion": firmware_version},
        "reason": "PowerUp",
    }
    assert not await relay.relay.from_charger(
        json.dumps([2, f"b-{firmware_version}", "BootNotification", boot])
    )


def test_a_firmware_job_for_a_201_station_is_offered_as_update_firmware_and_its_statuses_move_the_job(
    packages,
):
    async def status(relay: RelayUnderTest, value: str, request_id: int) -> None:
        frame = [2, f"s-{value}", "FirmwareStatusNotification", {"status": value, "requestId": request_id}]
        assert await relay.relay.from_charger(json.dumps(frame)), "taken by the gateway"

    async def scenario() -> tuple[list[Any], dict, FakeLink, RelayUnderTest]:
        relay = RelayUnderTest(version=OcppVersion.V201)
        link = FakeLink(charger_id="CP-REAL")
        link.go_online()
        jobs = asyncio.create_task(relay.relay.run_jobs(link))
        try:
            await _boot_relay(relay)
            await until(lambda: link.published)
            job = execution("job-201", packages.publish("fw", package("2.0.0")), version="2.0.0")
            link.deliver("$aws/things/CP-REAL/jobs/start-next/accepted", {"execution": job})
            [offer] = await until(lambda: relay.to_charger)
            await relay.relay.from_charger(json.dumps([3, offer[1], {"status": "Accepted"}]))
            request_id = offer[3]["requestId"]
            for value in ("Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting"):
                await status(relay, value, request_id)
            await _boot_relay(relay, "2.0.0")  # the station restarts into the new firmware
            await status(relay, "Installed", request_id)
            end = await until(lambda: terminal_of(link, "$aws/things/CP-REAL/jobs/job-201/update"))
            return offer, end, link, relay
        finally:
            jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs
            await relay.relay.close()

    offer, end, link, relay = asyncio.run(scenario())

    assert offer[2] == "UpdateFirmware" and set(offer[3]["firmware"]) >= {
        "location",
        "signature",
        "signingCertificate",
    }
    progress = [
        m["statusDetails"]["firmwareStatus"]
        for topic, m in link.published
        if topic.endswith("job-201/update") and m["status"] == "IN_PROGRESS"
    ]
    assert set(progress) == {"Downloading", "Downloaded", "Installing"}
    assert end["status"] == "SUCCEEDED"
    assert end["statusDetails"] == {"firmwareStatus": "Installed", "runningVersion": "2.0.0"}
    told = [(n.status, n.request_id) for n in relay.to_cloud]
    assert told[-1] == ("Installed", offer[3]["requestId"]), "the station's own words, the offer's requestId"
    assert ("SignatureVerified", offer[3]["requestId"]) in told
