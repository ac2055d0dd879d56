"""Signed firmware for real chargers behind the gateway: verification first, SignedUpdateFirmware, status mapping.

Packages are downloaded over real HTTP, keys are real (the operator's ECDSA P-256, the
manufacturer's RSA with a self-signed certificate, RSA-PSS over the image as the security
whitepaper has it). The last tests run the real gateway with an `ocpp` ChargePoint as the
charger and the shim's mosquitto + fake backend behind it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from booted import until
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, FirmwareStatus, UpdateFirmwareStatus
from pydantic import ValidationError
from shim_stack import HOST
from test_firmware import IMAGE, PackageServer, package_server, private_pem, public_pem
from websockets.asyncio.client import connect
from websockets.datastructures import Headers
from websockets.headers import build_authorization_basic
from websockets.http11 import Request, Response

from chargenet_firmware_format import OperatorKey, Target, VendorSignature, pack, sign, unpack
from chargenet_shim.firmware import core_notifications
from chargenet_shim.gateway import GatewayConfig, serve
from chargenet_shim.gateway_firmware import (
    ChargerCalls,
    FirmwareImages,
    FirmwareRelay,
    SiteFirmware,
    refusal,
)
from chargenet_shim.ocpp_version import OcppVersion

pytestmark = pytest.mark.timeout(30)

OPERATOR = ec.generate_private_key(ec.SECP256R1())
PINNED = OperatorKey.from_pem(public_pem(OPERATOR))
MANUFACTURER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PASSWORD = "site password, 16+ bytes"
NOW = dt.datetime.now(dt.UTC)
# What the real charger's BootNotification names (RelayUnderTest.boot): the releases are for it.
W1 = Target("ACME", "W1")
FORCED_W1 = Target("ACME", "W1", NOW + dt.timedelta(days=7))


def manufacturer_certificate() -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME firmware signing")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(MANUFACTURER.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .sign(MANUFACTURER, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


CERTIFICATE = manufacturer_certificate()
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)


def vendor_signed(image: bytes) -> VendorSignature:
    signature = MANUFACTURER.sign(image, PSS, hashes.SHA256())
    return VendorSignature(signature=base64.b64encode(signature).decode(), signing_certificate=CERTIFICATE)


@pytest.fixture
def packages() -> Iterator[PackageServer]:
    with package_server() as server:
        yield server


def package(version: str, image: bytes = IMAGE, *, vendor: bool = True, force: bool = False) -> bytes:
    manifest = sign(
        image,
        version,
        private_pem(OPERATOR),
        target=FORCED_W1 if force else W1,
        force=force,
        vendor=vendor_signed(image) if vendor else None,
    )
    return pack(manifest, image)


# ------------------------------------------------------------------ mapping
@pytest.mark.parametrize(
    ("extension_status", "core_status"),
    [
        ("Downloading", "Downloading"),
        ("DownloadScheduled", "Downloading"),
        ("DownloadPaused", "Downloading"),
        ("Downloaded", "Downloaded"),
        ("SignatureVerified", "Downloaded"),
        ("DownloadFailed", "DownloadFailed"),
        ("Installing", "Installing"),
        ("InstallScheduled", "Installing"),
        ("InstallRebooting", "Installing"),
        ("Installed", "Installed"),
        ("InstallationFailed", "InstallationFailed"),
        ("InstallVerificationFailed", "InstallationFailed"),
        ("Idle", "Idle"),
    ],
)
def test_each_extension_status_is_told_in_16s_words(extension_status, core_status):
    [notification] = core_notifications(FirmwareStatus(extension_status), "", "2026-11-26T10:00:00Z")

    assert isinstance(notification, call.FirmwareStatusNotification)
    assert notification.status == core_status


def test_invalid_signature_is_installation_failed_after_the_security_event():
    event, status = core_notifications(FirmwareStatus.invalid_signature, "x" * 300, "2026-11-26T10:00:00Z")

    assert (event.type, len(event.tech_info), event.timestamp) == (
        "InvalidFirmwareSignature",
        255,
        "2026-11-26T10:00:00Z",
    )
    assert status.status == "InstallationFailed"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([3, "g", {"status": "Accepted"}], None),
        ([3, "g", {"status": "AcceptedCanceled"}], None),
        ([3, "g", {"status": "Rejected"}], ("Rejected", None)),
        (
            [3, "g", {"status": "InvalidCertificate"}],
            ("InvalidCertificate", "InvalidFirmwareSigningCertificate"),
        ),
        (
            [3, "g", {"status": "RevokedCertificate"}],
            ("RevokedCertificate", "InvalidFirmwareSigningCertificate"),
        ),
        ([4, "g", "NotImplemented", "no such action", {}], ("NotImplemented", None)),
    ],
)
def test_the_chargers_answer_to_signed_update_firmware(answer, expected):
    refused = refusal(answer)

    if expected is None:
        assert refused is None
    else:
        assert refused is not None
        assert expected[0] in refused.reason
        assert refused.security_event == expected[1]


# -------------------------------------------------------- manifest fields
def test_the_vendor_signature_is_part_of_the_signed_statement():
    genuine, image = unpack(package("2.0.0"))
    swapped = genuine.model_copy(update={"vendor": vendor_signed(b"another image")})
    stripped = genuine.model_copy(update={"vendor": None})

    assert genuine.vendor is not None
    assert len({genuine.statement(), swapped.statement(), stripped.statement()}) == 3
    # Without one, the statement is what it was before vendor signatures existed.
    assert b'"vendor"' not in sign(image, "2.0.0", private_pem(OPERATOR), target=W1).statement()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"signature": "not base64!", "signing_certificate": CERTIFICATE}, "not base64"),
        ({"signature": "", "signing_certificate": CERTIFICATE}, "empty"),
        ({"signature": "A" * 804, "signing_certificate": CERTIFICATE}, "at most 800"),
        ({"signature": "AAAA", "signing_certificate": "-----BEGIN CERTIFICATE-----\nxx"}, "not a PEM"),
    ],
)
def test_a_malformed_vendor_signature_or_certificate_is_refused(fields, problem):
    with pytest.raises(ValidationError, match=problem):
        VendorSignature(**fields)


# ------------------------------------------------------------------ images
class FakeConnection:
    def respond(self, status: int, text: str) -> Response:
        return Response(int(status), "", Headers(), text.encode())


def get(images: FirmwareImages, path: str) -> Response | None:
    return images.respond(FakeConnection(), Request(path, Headers()))


def test_each_offer_has_its_own_unguessable_path_that_expires():
    clock = [100.0]
    images = FirmwareImages(ttl_s=60, clock=lambda: clock[0])

    first, second = images.offer("CP-1", b"image"), images.offer("CP-1", b"image")
    served = get(images, first)
    clock[0] += 61
    expired = get(images, first)

    assert first != second and first.startswith("/firmware/") and len(first) > len("/firmware/") + 40
    assert (served.status_code, served.body) == (200, b"image")
    assert expired.status_code == 404
    assert get(images, "/firmware/guessed").status_code == 404
    assert get(images, "/ocpp/CP-1") is None


# ----------------------------------------------------------- the relay
class RelayUnderTest:
    """A FirmwareRelay whose backend and charger are lists: what it told each of them."""

    def __init__(
        self,
        key: OperatorKey | None = PINNED,
        *,
        backend_down: bool = False,
        version: OcppVersion = OcppVersion.V16,
    ) -> None:
        self.to_cloud: list[Any] = []
        self.to_charger: list[list[Any]] = []
        self.backend_down = backend_down
        self.version = version
        self.site = SiteFirmware(key, FirmwareImages())
        self.relay: FirmwareRelay = self.site.relay(
            "CP-REAL",
            "http://gateway.local:8180",
            self._send_call,
            ChargerCalls(self._to_charger, timeout_s=2),
            version,
        )

    async def _send_call(self, request: Any) -> Any:
        if self.backend_down:
            raise TimeoutError("no answer")
        self.to_cloud.append(request)
        return getattr(self.version.call_results, type(request).__name__)()

    async def _to_charger(self, frame: str) -> None:
        self.to_charger.append(json.loads(frame))

    def told(self) -> list[tuple[str, str]]:
        """What the backend heard: (action, status or event type)."""
        return [
            (type(n).__name__, n.type if type(n).__name__ == "SecurityEventNotification" else n.status)
            for n in self.to_cloud
        ]

    async def update_firmware(self, location: str) -> list[Any]:
        frame = [2, "b-1", "UpdateFirmware", {"location": location, "retrieveDate": NOW.isoformat()}]
        return json.loads(await self.relay.from_cloud(json.dumps(frame)))

    async def boot(self, version: str) -> bool:
        boot = {"chargePointVendor": "ACME", "chargePointModel": "W1", "firmwareVersion": version}
        return await self.relay.from_charger(json.dumps([2, "c-1", "BootNotification", boot]))


@contextlib.asynccontextmanager
async def relay_with(**options: Any) -> AsyncIterator[RelayUnderTest]:
    under_test = RelayUnderTest(**options)
    try:
        yield under_test
    finally:
        await under_test.relay.close()


REFUSED = [
    ("FirmwareStatusNotification", "Downloading"),
    ("FirmwareStatusNotification", "Downloaded"),
    ("SecurityEventNotification", "InvalidFirmwareSignature"),
    ("FirmwareStatusNotification", "InstallationFailed"),
]


def _tampered() -> bytes:
    return package("2.0.0").replace(b"simulated charger firmware", b"simulated charger backdoor")


def _unsigned() -> bytes:
    manifest, image = unpack(package("2.0.0"))
    return pack(manifest.model_copy(update={"signature": None, "signer_key_id": None}), image)


def _other_operator() -> bytes:
    other = ec.generate_private_key(ec.SECP256R1())
    return pack(sign(IMAGE, "2.0.0", private_pem(other), target=W1, vendor=vendor_signed(IMAGE)), IMAGE)


@pytest.mark.parametrize(
    ("make_package", "reason"),
    [(_tampered, "SHA-256 differs"), (_unsigned, "not signed"), (_other_operator, "not the pinned")],
    ids=["tampered", "unsigned", "other-operator"],
)
def test_a_package_the_operator_did_not_sign_is_refused_as_a_simulated_charger_refuses_it(
    packages, make_package, reason
):
    async def scenario() -> RelayUnderTest:
        async with relay_with() as relay:
            await relay.boot("1.0.0")
            answer = await relay.update_firmware(packages.publish("fw", make_package()))
            assert answer == [3, "b-1", {}]
            await until(lambda: len(relay.to_cloud) == 4)
            return relay

    relay = asyncio.run(scenario())

    assert relay.told() == REFUSED
    assert reason in relay.to_cloud[2].tech_info
    assert relay.to_charger == [], "nothing reaches the charger"


def test_without_a_pinned_operator_key_every_package_is_refused(packages):
    async def scenario() -> RelayUnderTest:
        async with relay_with(key=None) as relay:
            await relay.update_firmware(packages.publish("fw", package("2.0.0")))
            await until(lambda: len(relay.to_cloud) == 4)
            return relay

    relay = asyncio.run(scenario())

    assert relay.told() == REFUSED
    assert relay.to_charger == []


def test_a_release_for_another_model_never_reaches_the_charger(packages):
    """The BootNotification through the gateway says ACME W1: a forced W2 release is refused there."""
    image = IMAGE
    other_model = sign(
        image,
        "2.0.0",
        private_pem(OPERATOR),
        target=Target("ACME", "W2", NOW + dt.timedelta(days=1)),
        force=True,
        vendor=vendor_signed(image),
    )

    async def scenario() -> RelayUnderTest:
        async with relay_with() as relay:
            await relay.boot("3.0.0")
            await relay.update_firmware(packages.publish("fw", pack(other_model, image)))
            await until(lambda: len(relay.to_cloud) == 3)
            return relay

    relay = asyncio.run(scenario())

    assert relay.told()[-1] == ("FirmwareStatusNotification", "InstallationFailed")
    assert relay.to_charger == []


@pytest.mark.parametrize(
    ("booted_version", "forced", "offered"),
    # Before a BootNotification the charger's vendor and model are unknown too: nothing is for it.
    [("3.0.0", False, False), ("3.0.0", True, True), (None, False, False), (None, True, False)],
    ids=["downgrade", "forced-downgrade", "unknown-running", "unknown-charger-forced"],
)
def test_the_downgrade_rule_uses_the_version_the_charger_booted_with(
    packages, booted_version, forced, offered
):
    async def scenario() -> RelayUnderTest:
        async with relay_with() as relay:
            if booted_version is not None:
                assert not await relay.boot(booted_version), "the BootNotification is relayed"
            await relay.update_firmware(packages.publish("fw", package("2.0.0", force=forced)))
            await until(lambda: relay.to_charger if offered else len(relay.to_cloud) == 3)
            return relay

    relay = asyncio.run(scenario())

    if offered:
        assert [frame[2] for frame in relay.to_charger] == ["SignedUpdateFirmware"]
    else:
        assert relay.told()[-1] == ("FirmwareStatusNotification", "InstallationFailed")
        assert relay.to_charger == []
        assert "SecurityEventNotification" not in {action for action, _ in relay.told()}


def test_a_release_without_the_manufacturers_signature_never_reaches_the_charger(packages, caplog):
    async def scenario() -> RelayUnderTest:
        async with relay_with() as relay:
            await relay.boot("1.0.0")
            await relay.update_firmware(packages.publish("fw", package("2.0.0", vendor=False)))
            await until(lambda: len(relay.to_cloud) == 3)
            return relay

    relay = asyncio.run(scenario())

    assert relay.told() == [
        ("FirmwareStatusNotification", "Downloading"),
        ("FirmwareStatusNotification", "Downloaded"),
        ("FirmwareStatusNotification", "InstallationFailed"),
    ]
    assert relay.to_charger == []
    assert "has no manufacturer signature" in caplog.text


def test_a_verified_release_is_offered_with_the_image_from_the_gateway(packages):
    published = package("2.0.0")
    vendor = unpack(published)[0].vendor

    async def scenario() -> tuple[RelayUnderTest, list[Any]]:
        async with relay_with() as relay:
            await relay.boot("1.0.0")
            await relay.update_firmware(packages.publish("fw", published))
            [offer] = await until(lambda: relay.to_charger)
            taken = await relay.relay.from_charger(json.dumps([3, offer[1], {"status": "Accepted"}]))
            assert taken, "the answer is the gateway's, not the backend's"
            return relay, offer

    relay, offer = asyncio.run(scenario())

    firmware = offer[3]["firmware"]
    assert (firmware["signature"], firmware["signingCertificate"]) == (vendor.signature, CERTIFICATE)
    assert firmware["location"].startswith("http://gateway.local:8180/firmware/")
    assert get(relay.site.images, urlsplit(firmware["location"]).path).body == IMAGE
    assert relay.told() == [
        ("FirmwareStatusNotification", "Downloading"),
        ("FirmwareStatusNotification", "Downloaded"),
    ]


@pytest.mark.parametrize(
    ("answer", "told"),
    [
        ([3, "{id}", {"status": "Rejected"}], [("FirmwareStatusNotification", "InstallationFailed")]),
        (
            [3, "{id}", {"status": "InvalidCertificate"}],
            [
                ("SecurityEventNotification", "InvalidFirmwareSigningCertificate"),
                ("FirmwareStatusNotification", "InstallationFailed"),
            ],
        ),
        (
            [3, "{id}", {"status": "RevokedCertificate"}],
            [
                ("SecurityEventNotification", "InvalidFirmwareSigningCertificate"),
                ("FirmwareStatusNotification", "InstallationFailed"),
            ],
        ),
        (
            [4, "{id}", "NotImplemented", "SignedUpdateFirmware", {}],
            [("FirmwareStatusNotification", "InstallationFailed")],
        ),
    ],
    ids=["rejected", "invalid-certificate", "revoked-certificate", "not-implemented"],
)
def test_a_charger_refusing_the_offer_ends_the_job(packages, answer, told):
    async def scenario() -> RelayUnderTest:
        async with relay_with() as relay:
            await relay.boot("1.0.0")
            await relay.update_firmware(packages.publish("fw", package("2.0.0")))
            [offer] = await until(lambda: relay.to_charger)
            frame = [offer[1] if part == "{id}" else part for part in answer]
            await relay.relay.from_charger(json.dumps(frame))
            await until(lambda: len(relay.to_cloud) == 2 + len(told))
            return relay

    relay = asyncio.run(scenario())

    assert relay.told()[2:] == told


def test_a_charger_that_never_answers_the_offer_ends_the_job(packages):
    async def scenario() -> RelayUnderTest:
        async with relay_with() as relay:
            await relay.boot("1.0.0")
            await relay.update_firmware(packages.publish("fw", package("2.0.0")))
            await until(lambda: len(relay.to_cloud) == 3, timeout=5)
            return relay

    relay = asyncio.run(scenario())

    assert relay.told()[-1] == ("FirmwareStatusNotification", "InstallationFailed")


@pytest.mark.parametrize(
    ("status", "told"),
    [
        ("SignatureVerified", [("FirmwareStatusNotification", "Downloaded")]),
        ("InstallRebooting", [("FirmwareStatusNotification", "Installing")]),
        ("Installed", [("FirmwareStatusNotification", "Installed")]),
        (
            "InvalidSignature",
            [
                ("SecurityEventNotification", "InvalidFirmwareSignature"),
                ("FirmwareStatusNotification", "InstallationFailed"),
            ],
        ),
    ],
)
def test_the_chargers_signed_status_is_told_to_the_backend_in_16s_words_then_answered(status, told):
    async def scenario() -> RelayUnderTest:
        relay = RelayUnderTest()
        notification = [2, "s-1", "SignedFirmwareStatusNotification", {"status": status, "requestId": 7}]
        assert await relay.relay.from_charger(json.dumps(notification)), "not relayed verbatim"
        await until(lambda: relay.to_charger)
        await relay.relay.close()
        return relay

    relay = asyncio.run(scenario())

    assert relay.told() == told
    assert relay.to_charger == [[3, "s-1", {}]]


def test_a_signed_status_the_backend_did_not_take_is_answered_with_an_error_so_the_charger_sends_it_again():
    async def scenario() -> RelayUnderTest:
        relay = RelayUnderTest(backend_down=True)
        notification = [2, "s-1", "SignedFirmwareStatusNotification", {"status": "Installed", "requestId": 7}]
        await relay.relay.from_charger(json.dumps(notification))
        await until(lambda: relay.to_charger)
        return relay

    relay = asyncio.run(scenario())

    assert relay.to_charger[0][:3] == [4, "s-1", "InternalError"]


def test_a_malformed_signed_status_or_update_firmware_gets_a_call_error():
    async def scenario() -> tuple[RelayUnderTest, list[Any]]:
        relay = RelayUnderTest()
        bad_status = [2, "s-1", "SignedFirmwareStatusNotification", {"status": "Exploded"}]
        await relay.relay.from_charger(json.dumps(bad_status))
        await until(lambda: relay.to_charger)
        bad_date = [2, "b-1", "UpdateFirmware", {"location": "http://x/fw", "retrieveDate": "soon"}]
        answer = json.loads(await relay.relay.from_cloud(json.dumps(bad_date)))
        return relay, answer

    relay, answer = asyncio.run(scenario())

    assert relay.to_charger[0][:2] == [4, "s-1"]
    assert answer[:3] == [4, "b-1", "PropertyConstraintViolation"]
    assert relay.to_cloud == []


# ---------------------------------------------------- through the gateway
class InstallsOffers:
    """What a charger does with an offered image: download it, check the manufacturer's signature
    itself, then 'install' it, reporting each step with `_status` (its version's notification)."""

    downloaded: bytes | None = None

    async def _status(self, status: str, request_id: int) -> None:
        raise NotImplementedError

    async def install_offered(self, request_id: int, firmware: dict[str, Any]) -> None:
        await self._status("Downloading", request_id)
        self.downloaded = await asyncio.to_thread(_download, firmware["location"])
        await self._status("Downloaded", request_id)
        # ocpp hands the payload over in snake_case, nested keys included.
        certificate = x509.load_pem_x509_certificate(firmware["signing_certificate"].encode())
        signature = base64.b64decode(firmware["signature"])
        try:
            certificate.public_key().verify(signature, self.downloaded, PSS, hashes.SHA256())
        except InvalidSignature:
            await self._status("InvalidSignature", request_id)
            return
        for status in ("SignatureVerified", "Installing", "Installed"):
            await self._status(status, request_id)


class RealCharger(InstallsOffers, ChargePoint):
    """A charger with the security extension: checks the manufacturer's signature itself, then 'installs'."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offers: list[dict[str, Any]] = []

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(
        self, request_id: int, firmware: dict, **_: Any
    ) -> call_result.SignedUpdateFirmware:
        self.offers.append(firmware)
        return call_result.SignedUpdateFirmware(status=UpdateFirmwareStatus.accepted)

    @after(Action.signed_update_firmware)
    async def install(self, request_id: int, firmware: dict, **_: Any) -> None:
        await self.install_offered(request_id, firmware)

    async def _status(self, status: str, request_id: int) -> None:
        await self.call(call.SignedFirmwareStatusNotification(status=status, request_id=request_id))


def _download(location: str) -> bytes:
    with urllib.request.urlopen(location, timeout=5) as response:
        return response.read()


def test_the_gateway_offers_a_verified_release_to_an_ocpp_charger_and_relays_its_statuses(
    provision, backend, credentials_dir, packages, tmp_path
):
    creds = provision(password=PASSWORD)
    key_file = tmp_path / "operator.pub.pem"
    key_file.write_bytes(public_pem(OPERATOR))
    update = [2, "u-1", "UpdateFirmware", {"location": "", "retrieveDate": NOW.isoformat()}]
    update[3]["location"] = packages.publish("fw", package("2.0.0"))

    async def scenario() -> RealCharger:
        config = GatewayConfig(
            port=0, credentials_dir=credentials_dir, allow_plain_ws=True, firmware_key=key_file
        )
        gateway = await serve(config)
        headers = {"Authorization": build_authorization_basic(creds.charger_id, PASSWORD)}
        try:
            async with connect(
                f"ws://{HOST}:{gateway.port}/ocpp/{creds.charger_id}",
                subprotocols=["ocpp1.6"],
                additional_headers=headers,
            ) as websocket:
                charger = RealCharger(creds.charger_id, websocket, response_timeout=5)
                receiver = asyncio.create_task(charger.start())
                try:
                    await charger.call(
                        call.BootNotification(
                            charge_point_model="W1", charge_point_vendor="ACME", firmware_version="1.0.0"
                        )
                    )
                    await asyncio.to_thread(backend.send, creds.charger_id, json.dumps(update))
                    await asyncio.to_thread(
                        backend.wait_for, creds.charger_id, lambda f: '"Installed"' in f, 10
                    )
                    guessed = f"http://{HOST}:{gateway.port}/firmware/guessed"
                    with pytest.raises(urllib.error.HTTPError, match="404"):
                        await asyncio.to_thread(_download, guessed)
                finally:
                    receiver.cancel()
                return charger
        finally:
            await gateway.close()

    charger = asyncio.run(scenario())

    assert charger.downloaded == IMAGE
    [offer] = charger.offers
    assert offer["location"].startswith(f"http://{HOST}:")
    frames = [json.loads(f) for f in backend.frames(creds.charger_id)]
    assert [3, "u-1", {}] in frames, "the gateway answered the backend's UpdateFirmware"
    statuses = [f[3]["status"] for f in frames if f[0] == 2 and f[2] == "FirmwareStatusNotification"]
    # The gateway's own download and check, then the charger's statuses in 1.6's words.
    assert statuses == [
        "Downloading",
        "Downloaded",
        "Downloading",
        "Downloaded",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert not [f for f in frames if f[0] == 2 and f[2] == "SignedFirmwareStatusNotification"]


def test_the_gateway_refuses_a_firmware_key_that_is_not_p256(credentials_dir, tmp_path):
    wrong = tmp_path / "p384.pem"
    wrong.write_bytes(public_pem(ec.generate_private_key(ec.SECP384R1())))

    with pytest.raises(ValidationError, match="P-256"):
        GatewayConfig(port=0, credentials_dir=credentials_dir, firmware_key=wrong)


def test_the_gateway_cli_takes_the_firmware_key(tmp_path, capsys):
    from chargenet_shim.cli import main

    wrong = tmp_path / "p384.pem"
    wrong.write_bytes(public_pem(ec.generate_private_key(ec.SECP384R1())))
    args = ["gateway", "--credentials-dir", str(tmp_path), "--port", "0", "--firmware-key", str(wrong)]

    assert main(args) == 2
    assert "P-256" in capsys.readouterr().err
