"""Signed firmware: the signing format, verification with the pinned key, versions, and the A/B installer.

Every key is a real ECDSA key made here; packages are downloaded over real HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from ocpp.v16.enums import FirmwareStatus

from chargenet_firmware_format import (
    FirmwareManifest,
    FirmwareRejected,
    OperatorKey,
    Target,
    pack,
    precedence,
    sign,
    unpack,
    verify,
)
from chargenet_shim.firmware import DowngradeRefused, check_version
from chargenet_shim.sim.firmware_install import FirmwareInstaller, FirmwareSlots

pytestmark = pytest.mark.timeout(15)

IMAGE = b"\x7fELF simulated charger firmware " * 1000
# What a SimulatedCharger's BootNotification says it is by default: the releases here are for it.
TARGET = Target("chargenet", "SimCharger")
# A forced package must expire: a week, as `firmware deploy --force` signs by default.
FORCED = Target("chargenet", "SimCharger", dt.datetime.now(dt.UTC) + dt.timedelta(days=7))


def private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def operator() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def pinned(operator) -> OperatorKey:
    return OperatorKey.from_pem(public_pem(operator))


class PackageServer:
    """Where UpdateFirmware's location points: an HTTP server on 127.0.0.1 answering GETs from `files`."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    def url(self, name: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{name}?X-Amz-Signature=secret-part"

    def publish(self, name: str, package: bytes) -> str:
        self.files[f"/{name}"] = package
        return self.url(name)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.requests.append(path)
                body = server.files.get(path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextlib.contextmanager
def package_server() -> Iterator[PackageServer]:
    server = PackageServer()
    threading.Thread(target=server._server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield server
    finally:
        server._server.shutdown()
        server._server.server_close()


@pytest.fixture
def packages() -> Iterator[PackageServer]:
    with package_server() as server:
        yield server


# ------------------------------------------------------------------ signing
def test_a_signed_image_verifies_with_the_pinned_key(operator, pinned):
    manifest = sign(IMAGE, "1.2.0", private_pem(operator), target=TARGET)

    verify(manifest, IMAGE, pinned)

    assert (manifest.version, manifest.size) == ("1.2.0", len(IMAGE))
    assert manifest.sha256 == hashlib.sha256(IMAGE).hexdigest()
    assert manifest.signer_key_id == pinned.key_id


def test_the_signature_is_plain_ecdsa_sha256_over_the_canonical_statement(operator):
    """What `openssl dgst -sha256 -verify` or AWS Signer's ECDSA-SHA256 would check of the statement."""
    manifest = sign(IMAGE, "1.2.0", private_pem(operator), target=TARGET)
    statement = (
        '{"charge_point_model":"SimCharger","charge_point_vendor":"chargenet","expires_at":null,'
        '"force":false,"format":"chargenet-firmware/2",'
        f'"sha256":"{hashlib.sha256(IMAGE).hexdigest()}","size":{len(IMAGE)},"version":"1.2.0"}}'
    ).encode()

    assert manifest.statement() == statement
    operator.public_key().verify(base64.b64decode(manifest.signature), statement, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(
    "relabel",
    [
        {"version": "9.0.0"},
        {"force": True, "expires_at": FORCED.expires_at},
        {"charge_point_model": "OtherModel"},
        {"charge_point_vendor": "other"},
        {"expires_at": dt.datetime(2099, 1, 1, tzinfo=dt.UTC)},
    ],
    ids=["newer version", "force added", "model changed", "vendor changed", "expiry added"],
)
def test_a_relabelled_manifest_is_rejected(operator, pinned, relabel):
    """Someone who can swap the download cannot call an old signed image newer, nor force it."""
    manifest = sign(IMAGE, "1.0.0", private_pem(operator), target=TARGET)

    with pytest.raises(FirmwareRejected, match="signature does not verify"):
        verify(manifest.model_copy(update=relabel), IMAGE, pinned)


def test_a_tampered_image_is_rejected(operator, pinned):
    manifest = sign(IMAGE, "1.2.0", private_pem(operator), target=TARGET)
    tampered = IMAGE[:-1] + b"!"
    # An attacker who also rewrites the manifest's hash still lacks the operator's signature.
    rehashed = manifest.model_copy(update={"sha256": hashlib.sha256(tampered).hexdigest()})

    with pytest.raises(FirmwareRejected, match="SHA-256 differs"):
        verify(manifest, tampered, pinned)
    with pytest.raises(FirmwareRejected, match="bytes, the manifest says"):
        verify(manifest, IMAGE + b"\0", pinned)
    with pytest.raises(FirmwareRejected, match="signature does not verify"):
        verify(rehashed, tampered, pinned)


def test_an_unsigned_or_garbled_signature_is_rejected(operator, pinned):
    manifest = sign(IMAGE, "1.2.0", private_pem(operator), target=TARGET)

    with pytest.raises(FirmwareRejected, match="not signed"):
        verify(manifest.model_copy(update={"signature": None}), IMAGE, pinned)
    with pytest.raises(FirmwareRejected, match="not signed"):
        verify(manifest.model_copy(update={"signature": ""}), IMAGE, pinned)
    with pytest.raises(FirmwareRejected, match="signature does not verify"):
        verify(manifest.model_copy(update={"signature": "not base64!"}), IMAGE, pinned)


def test_an_image_signed_with_another_key_is_rejected(operator, pinned):
    intruder = ec.generate_private_key(ec.SECP256R1())
    foreign = sign(IMAGE, "1.2.0", private_pem(intruder), target=TARGET)
    # Claiming the operator's key id does not make the intruder's signature the operator's.
    disguised = foreign.model_copy(update={"signer_key_id": pinned.key_id})

    with pytest.raises(FirmwareRejected, match="not the pinned operator key"):
        verify(foreign, IMAGE, pinned)
    with pytest.raises(FirmwareRejected, match="signature does not verify"):
        verify(disguised, IMAGE, pinned)


def test_only_p256_keys_sign_and_verify():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384 = ec.generate_private_key(ec.SECP384R1())

    for key in (rsa_key, p384):
        with pytest.raises(ValueError, match="P-256"):
            OperatorKey.from_pem(public_pem(key))
        with pytest.raises(ValueError, match="P-256"):
            sign(IMAGE, "1.0.0", private_pem(key), target=TARGET)


def test_a_package_carries_the_manifest_then_the_image(operator):
    manifest = sign(IMAGE, "2.0.0-rc.1", private_pem(operator), target=TARGET)

    assert unpack(pack(manifest, IMAGE)) == (manifest, IMAGE)
    with pytest.raises(FirmwareRejected, match="no manifest line"):
        unpack(b"just an image")
    with pytest.raises(FirmwareRejected, match="bad manifest"):
        unpack(b'{"version": "1.0.0"}\n' + IMAGE)


# ----------------------------------------------------------------- versions
def test_versions_follow_semver_precedence():
    # semver.org 2.0.0, section 11.
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.9.0",
        "1.10.0",
        "2.0.0",
    ]

    assert sorted(reversed(ordered), key=precedence) == ordered
    assert precedence("1.0.0+build.7") == precedence("1.0.0+other")


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "7.1 beta", "1.0.0\n", ""])
def test_a_manifest_version_must_be_semantic(version):
    with pytest.raises(ValueError, match="not a semantic version"):
        FirmwareManifest(
            version=version, sha256="0" * 64, size=0, charge_point_vendor="v", charge_point_model="m"
        )


def test_a_forced_package_must_carry_an_expiry(operator):
    """A downgrade that never expires could be installed by whoever kept the package, at will."""
    with pytest.raises(ValueError, match="a forced package must carry an expiry"):
        sign(IMAGE, "1.0.0", private_pem(operator), target=TARGET, force=True)
    forced = sign(IMAGE, "1.0.0", private_pem(operator), target=FORCED, force=True)
    unexpiring = forced.model_dump_json(exclude={"expires_at"})
    with pytest.raises(FirmwareRejected, match="bad manifest"):
        unpack(unexpiring.encode() + b"\n" + IMAGE)


def test_a_package_signed_in_the_old_format_is_refused(operator, pinned):
    """A /1 statement bound neither model nor expiry: its packages are not firmware packages any more."""
    old_manifest = {"version": "1.0.0", "sha256": hashlib.sha256(IMAGE).hexdigest(), "size": len(IMAGE)}
    statement = json.dumps({"format": "chargenet-firmware/1", "force": True, **old_manifest}, sort_keys=True)
    signature = operator.sign(statement.replace(" ", "").encode(), ec.ECDSA(hashes.SHA256()))
    old_package = {**old_manifest, "force": True, "signature": base64.b64encode(signature).decode()}
    with pytest.raises(FirmwareRejected, match="bad manifest"):
        unpack(json.dumps({**old_package, "signer_key_id": pinned.key_id}).encode() + b"\n" + IMAGE)


def test_a_downgrade_is_refused_unless_forced():
    check_version("1.2.0", "1.3.0")
    check_version("1.2.0", "1.2.0+rebuild")  # the same version again: a reinstall
    check_version("1.2.0", "1.1.9", force=True)

    with pytest.raises(DowngradeRefused, match=r"older than the running 1\.2\.0"):
        check_version("1.2.0", "1.1.9")
    with pytest.raises(DowngradeRefused, match="older"):
        check_version("1.2.0", "1.2.0-rc.9")
    # A factory version that is no semantic version cannot be compared: only the operator decides.
    with pytest.raises(DowngradeRefused, match="cannot compare"):
        check_version("7.1", "7.2.0")
    check_version("7.1", "7.2.0", force=True)


# ---------------------------------------------------------------- installer
class Charger:
    """What the installer drives: the statuses it reports and the firmware it boots into."""

    def __init__(self, running: str = "1.0.0", unbootable: frozenset[str] = frozenset()) -> None:
        self.slots = FirmwareSlots(running)
        self.statuses: list[FirmwareStatus] = []
        self.details: list[str] = []
        self.boots: list[str] = []
        self.unbootable = unbootable
        # The charger's BootNotification identity and its clock.
        self.identity = (TARGET.charge_point_vendor, TARGET.charge_point_model)
        self.now = dt.datetime.now(dt.UTC)

    async def report(self, status: FirmwareStatus, detail: str) -> None:
        self.statuses.append(status)
        self.details.append(detail)

    async def boot(self, version: str) -> bool:
        self.boots.append(version)
        return version not in self.unbootable

    def installer(self, key: OperatorKey | None) -> FirmwareInstaller:
        return FirmwareInstaller(
            self.slots, key, self.report, self.boot, identity=self.identity, now=lambda: self.now
        )


REFUSED_AFTER_DOWNLOAD = [FirmwareStatus.downloading, FirmwareStatus.downloaded]
INSTALLED = [
    FirmwareStatus.downloading,
    FirmwareStatus.downloaded,
    FirmwareStatus.installing,
    FirmwareStatus.installed,
]


def test_happy_path_installs_into_the_other_slot_and_boots_it(operator, pinned, packages):
    charger = Charger()
    first = packages.publish(
        "fw-1.1.0", pack(sign(IMAGE, "1.1.0", private_pem(operator), target=TARGET), IMAGE)
    )
    second = packages.publish(
        "fw-1.2.0", pack(sign(IMAGE + b"2", "1.2.0", private_pem(operator), target=TARGET), IMAGE + b"2")
    )

    async def scenario() -> list[tuple[FirmwareStatus, str, str]]:
        installer = charger.installer(pinned)
        outcomes = []
        for location in (first, second):
            outcomes.append(
                (await installer.update(location), charger.slots.active, charger.slots.running_version)
            )
        return outcomes

    assert asyncio.run(scenario()) == [
        (FirmwareStatus.installed, "B", "1.1.0"),
        (FirmwareStatus.installed, "A", "1.2.0"),
    ]
    assert charger.statuses == INSTALLED * 2
    assert charger.boots == ["1.1.0", "1.2.0"]


def test_a_tampered_package_is_refused_before_anything_is_installed(operator, pinned, packages):
    charger = Charger()
    manifest = sign(IMAGE, "1.1.0", private_pem(operator), target=TARGET)
    location = packages.publish("fw", pack(manifest, IMAGE.replace(b"firmware", b"malware!")))

    status = asyncio.run(charger.installer(pinned).update(location))

    assert status == FirmwareStatus.invalid_signature
    assert charger.statuses == [*REFUSED_AFTER_DOWNLOAD, FirmwareStatus.invalid_signature]
    assert "SHA-256 differs" in charger.details[-1]
    assert charger.boots == []
    assert (charger.slots.active, charger.slots.running_version) == ("A", "1.0.0")


@pytest.mark.parametrize("case", ["unsigned", "another key", "no key pinned", "not a package"])
def test_unsigned_foreign_or_unverifiable_packages_report_invalid_signature(case, operator, pinned, packages):
    charger = Charger()
    signed = sign(IMAGE, "1.1.0", private_pem(operator), target=TARGET)
    package, key = {
        "unsigned": (pack(signed.model_copy(update={"signature": None}), IMAGE), pinned),
        "another key": (
            pack(
                sign(IMAGE, "1.1.0", private_pem(ec.generate_private_key(ec.SECP256R1())), target=TARGET),
                IMAGE,
            ),
            pinned,
        ),
        "no key pinned": (pack(signed, IMAGE), None),
        "not a package": (IMAGE, pinned),
    }[case]

    status = asyncio.run(charger.installer(key).update(packages.publish("fw", package)))

    assert status == FirmwareStatus.invalid_signature
    assert charger.statuses == [*REFUSED_AFTER_DOWNLOAD, FirmwareStatus.invalid_signature]
    assert charger.boots == []


def test_a_downgrade_is_refused_and_installs_only_when_the_operator_signed_it_forced(
    operator, pinned, packages
):
    charger = Charger(running="2.0.0")
    older = packages.publish(
        "fw-1.5.0", pack(sign(IMAGE, "1.5.0", private_pem(operator), target=TARGET), IMAGE)
    )
    forced = packages.publish(
        "fw-1.5.0-forced", pack(sign(IMAGE, "1.5.0", private_pem(operator), target=FORCED, force=True), IMAGE)
    )

    async def scenario() -> tuple[FirmwareStatus, FirmwareStatus]:
        installer = charger.installer(pinned)
        return await installer.update(older), await installer.update(forced)

    refused, installed = asyncio.run(scenario())

    assert refused == FirmwareStatus.installation_failed
    assert charger.details[len(REFUSED_AFTER_DOWNLOAD)] == "1.5.0 is older than the running 2.0.0"
    assert installed == FirmwareStatus.installed
    assert charger.statuses == [*REFUSED_AFTER_DOWNLOAD, FirmwareStatus.installation_failed, *INSTALLED]
    assert (charger.boots, charger.slots.running_version) == (["1.5.0"], "1.5.0")


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        (
            ("chargenet", "OtherModel"),
            "signed for chargenet SimCharger, this charger is chargenet OtherModel",
        ),
        (("ACME", "SimCharger"), "signed for chargenet SimCharger, this charger is ACME SimCharger"),
    ],
    ids=["another model", "another vendor"],
)
def test_a_package_signed_for_another_vendor_or_model_is_refused_before_install(
    operator, pinned, packages, identity, reason
):
    """The signed statement names the chargers it is for: another model never installs it, forced or not."""
    charger = Charger(running="2.0.0")
    charger.identity = identity
    forced = pack(sign(IMAGE, "1.5.0", private_pem(operator), target=FORCED, force=True), IMAGE)

    status = asyncio.run(charger.installer(pinned).update(packages.publish("fw", forced)))

    assert status == FirmwareStatus.installation_failed
    assert charger.details[len(REFUSED_AFTER_DOWNLOAD)] == reason
    assert (charger.boots, charger.slots.running_version) == ([], "2.0.0")


def test_an_expired_forced_package_cannot_be_replayed(operator, pinned, packages):
    """Kept after its rollout, a signed downgrade is refused on the charger's clock once it has expired."""
    charger = Charger(running="2.0.0")
    forced = pack(sign(IMAGE, "1.5.0", private_pem(operator), target=FORCED, force=True), IMAGE)
    location = packages.publish("fw", forced)
    assert FORCED.expires_at is not None
    charger.now = FORCED.expires_at + dt.timedelta(seconds=1)

    status = asyncio.run(charger.installer(pinned).update(location))

    assert status == FirmwareStatus.installation_failed
    assert charger.details[len(REFUSED_AFTER_DOWNLOAD)].startswith("the package expired at ")
    assert (charger.boots, charger.slots.running_version) == ([], "2.0.0")

    charger.now = FORCED.expires_at - dt.timedelta(minutes=1)  # the same package, within its time
    assert asyncio.run(charger.installer(pinned).update(location)) == FirmwareStatus.installed


def test_an_old_image_relabelled_as_newer_is_refused_before_install(operator, pinned, packages):
    charger = Charger(running="2.0.0")
    old = sign(IMAGE, "1.5.0", private_pem(operator), target=TARGET)
    relabelled = packages.publish("fw", pack(old.model_copy(update={"version": "3.0.0"}), IMAGE))

    status = asyncio.run(charger.installer(pinned).update(relabelled))

    assert status == FirmwareStatus.invalid_signature
    assert "signature does not verify" in charger.details[-1]
    assert (charger.boots, charger.slots.running_version) == ([], "2.0.0")


def test_a_firmware_that_does_not_boot_is_rolled_back(operator, pinned, packages):
    charger = Charger(unbootable=frozenset({"1.1.0"}))
    location = packages.publish("fw", pack(sign(IMAGE, "1.1.0", private_pem(operator), target=TARGET), IMAGE))

    status = asyncio.run(charger.installer(pinned).update(location))

    assert status == FirmwareStatus.installation_failed
    assert charger.statuses == [*INSTALLED[:3], FirmwareStatus.installation_failed]
    assert charger.details[-1] == "1.1.0 did not boot: rolled back to 1.0.0"
    assert charger.boots == ["1.1.0", "1.0.0"]
    assert (charger.slots.active, charger.slots.running_version) == ("A", "1.0.0")


def test_a_failed_download_is_retried_then_reported_without_the_url_query(pinned, packages, caplog):
    charger = Charger()

    with caplog.at_level(logging.WARNING, logger="chargenet_shim.firmware"):
        status = asyncio.run(charger.installer(pinned).update(packages.url("missing"), attempts=2))
        ftp = asyncio.run(charger.installer(pinned).update("ftp://example.invalid/fw"))

    assert (status, ftp) == (FirmwareStatus.download_failed, FirmwareStatus.download_failed)
    assert charger.statuses == [FirmwareStatus.downloading, FirmwareStatus.download_failed] * 2
    assert packages.requests == ["/missing", "/missing"]
    assert "only http(s)" in charger.details[-1]
    assert caplog.records and not any("secret-part" in r.getMessage() for r in caplog.records)
    assert not any("secret-part" in detail for detail in charger.details)
