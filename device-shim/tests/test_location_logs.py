"""A GetDiagnostics or UpdateFirmware location's credentials never reach a log record, whoever logs it.

The charger gets the location whole; every logger (the shim's, `ocpp`'s frame lines at INFO and
its ERROR line for a frame whose handler raised, websockets' frame lines at DEBUG) sees it only
as chargenet_shim.redaction shows it: no user name, password or query.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from booted import command, until
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, DiagnosticsStatus
from shim_stack import HOST
from test_firmware import package_server
from test_firmware_updates import booted, firmware_statuses, update_firmware
from upload_server import upload_server
from websockets.asyncio.client import connect
from websockets.headers import build_authorization_basic

from chargenet_shim import firmware
from chargenet_shim.gateway import GatewayConfig, serve
from chargenet_shim.redaction import redacted_text
from chargenet_shim.sim import diagnostics

pytestmark = pytest.mark.timeout(30)

PASSWORD = "secretpw"
SIGNATURE = "c2lnbmF0dXJlLXNlY3JldA"
FTP = f"ftp://tech:{PASSWORD}@files.example/CP/"
# urllib takes `tech:secretpw@127.0.0.1` for the host: http.client's error quotes the password.
HTTP_WITH_PASSWORD = f"http://tech:{PASSWORD}@127.0.0.1:9/fw.pkg"
# The real charger's own logs (a test's ocpp and websockets client) are not the shim's.
CHARGER_LOGGER = "test.real_charger"


def leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every captured record, formatted with its traceback, that shows a password or a signature."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    shown = [formatter.format(r) for r in caplog.records if not r.name.startswith(CHARGER_LOGGER)]
    return [line for line in shown if PASSWORD in line or SIGNATURE in line]


def signed(url: str) -> str:
    return url.split("?")[0] + f"?X-Amz-Credential=AKIA&X-Amz-Signature={SIGNATURE}"


@pytest.fixture
def transfers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every location an upload or a download was tried at, as the transfer got it."""
    tried: list[str] = []
    get, put = firmware._get, diagnostics._put

    def recording_get(location: str) -> bytes:
        tried.append(location)
        return get(location)

    def recording_put(location: str, body: bytes) -> None:
        tried.append(location)
        put(location, body)

    monkeypatch.setattr(firmware, "_get", recording_get)
    monkeypatch.setattr(diagnostics, "_put", recording_put)
    return tried


def test_the_redaction_finds_every_location_in_a_frame_or_a_traceback():
    frame = json.dumps([2, "1", "UpdateFirmware", {"location": 'ftp://u:p"w?@h/x?y', "retrieveDate": "x"}])
    assert "p" + '\\"w' not in redacted_text(frame)
    assert "ftp://***@h/x" in redacted_text(frame)
    assert redacted_text(f"<Call payload={{'location': '{signed('https://b.s3/f')}'}}>") == (
        "<Call payload={'location': 'https://b.s3/f'}>"
    )
    assert redacted_text("no URL here, http://host/path kept") == "no URL here, http://host/path kept"


def test_a_simulated_charger_logs_no_locations_credentials_yet_gets_them_whole(caplog, transfers):
    """GetDiagnostics and UpdateFirmware with an FTP password, a URL's password and a pre-signed query."""

    async def scenario(upload_url: str, missing_package: str) -> None:
        async with booted() as (charger, link):
            for number, location in enumerate([FTP, HTTP_WITH_PASSWORD, missing_package], start=1):
                await update_firmware(link, location)
                await until(lambda n=number: firmware_statuses(link).count("DownloadFailed") == n)
                await until(lambda: charger._firmware_update is not None and charger._firmware_update.done())
            # A handler that raises: ocpp logs the whole frame at ERROR, with its traceback.
            link.push([2, "bad-date", "UpdateFirmware", {"location": FTP, "retrieveDate": "not a date"}])
            assert (await until(lambda: link.answer_to("bad-date")))[0] == 4
            await command(link, "GetDiagnostics", {"location": FTP})
            await until(
                lambda: (
                    link.calls("DiagnosticsStatusNotification")[-1:] and _last_status(link) == "UploadFailed"
                )
            )
            while "fileName" not in (await command(link, "GetDiagnostics", {"location": upload_url}))[2]:
                await asyncio.sleep(0.01)
            await until(lambda: _last_status(link) == DiagnosticsStatus.uploaded)

    with caplog.at_level(logging.DEBUG), upload_server() as uploads, package_server() as packages:
        asyncio.run(scenario(signed(uploads.url("log")), signed(packages.url("missing"))))
        path, body = uploads.uploads[-1]

    assert path.endswith(f"X-Amz-Signature={SIGNATURE}"), "the upload went to the location whole"
    assert HTTP_WITH_PASSWORD in transfers and signed(packages.url("missing")) in transfers
    assert PASSWORD not in body.decode() and SIGNATURE not in body.decode(), "the journal is the next file"
    assert "firmware update from ftp://***@files.example/CP/" in body.decode()
    assert any(r.name == "ocpp" and "UpdateFirmware" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.ERROR and r.exc_text for r in caplog.records), "the handler's failure"
    assert leaks(caplog) == []


def _last_status(link: Any) -> str:
    return link.calls("DiagnosticsStatusNotification")[-1][3]["status"]


class DiagnosingCharger(ChargePoint):
    """A real charger behind the gateway: keeps every diagnostics location it is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.locations: list[str] = []

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        self.locations.append(location)
        return call_result.GetDiagnostics(file_name="real.log")


def test_the_gateway_relays_locations_whole_and_logs_none_of_their_credentials(
    provision, backend, credentials_dir, caplog, transfers
):
    creds = provision(password="site password, 16+ bytes")
    charger_id = creds.charger_id

    async def scenario(diagnostics_locations: list[str], firmware_locations: list[str]) -> DiagnosingCharger:
        gateway = await serve(GatewayConfig(port=0, credentials_dir=credentials_dir, allow_plain_ws=True))
        headers = {"Authorization": build_authorization_basic(charger_id, "site password, 16+ bytes")}
        try:
            async with connect(
                f"ws://{HOST}:{gateway.port}/ocpp/{charger_id}",
                subprotocols=["ocpp1.6"],
                additional_headers=headers,
                logger=logging.getLogger(CHARGER_LOGGER + ".websockets"),
            ) as websocket:
                charger = DiagnosingCharger(charger_id, websocket, 5, logging.getLogger(CHARGER_LOGGER))
                receiver = asyncio.create_task(charger.start())
                try:
                    await charger.call(
                        call.BootNotification(charge_point_model="W1", charge_point_vendor="ACME")
                    )
                    for number, location in enumerate(diagnostics_locations, start=1):
                        frame = [2, f"d-{number}", "GetDiagnostics", {"location": location}]
                        await asyncio.to_thread(backend.send, charger_id, json.dumps(frame))
                        await asyncio.to_thread(
                            backend.wait_for, charger_id, lambda f, n=number: f'"d-{n}"' in f
                        )
                    for number, location in enumerate(firmware_locations, start=1):
                        frame = [
                            2,
                            f"u-{number}",
                            "UpdateFirmware",
                            {"location": location, "retrieveDate": "2020-01-01T00:00:00Z"},
                        ]
                        await asyncio.to_thread(backend.send, charger_id, json.dumps(frame))
                        await asyncio.to_thread(
                            backend.wait_until,
                            lambda n=number: (
                                sum('"DownloadFailed"' in f for f in backend.frames(charger_id)) == n
                            ),
                            10,
                        )
                        # The update's task ends just after its last status.
                        await asyncio.sleep(0.05)
                finally:
                    receiver.cancel()
                return charger
        finally:
            await gateway.close()

    with caplog.at_level(logging.DEBUG), upload_server() as uploads, package_server() as packages:
        upload_url, package_url = signed(uploads.url("log")), signed(packages.url("missing"))
        charger = asyncio.run(scenario([FTP, upload_url], [FTP, HTTP_WITH_PASSWORD, package_url]))

    assert charger.locations == [FTP, upload_url], "the real charger got each location whole"
    assert HTTP_WITH_PASSWORD in transfers and package_url in transfers, (
        "the gateway downloaded from them whole"
    )
    assert any(r.name == "websockets.server" and "GetDiagnostics" in r.getMessage() for r in caplog.records)
    assert leaks(caplog) == []
