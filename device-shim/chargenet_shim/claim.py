"""Fleet provisioning by claim: a factory-fresh charger turns the batch claim certificate into its own.

The charger's key is made in its key store and never leaves it. Over a connection with the
claim certificate it asks AWS IoT's MQTT API for a certificate for its CSR
(CreateCertificateFromCsr), registers that certificate under its serial number with the
ownership token (RegisterThing; the cloud's pre-provisioning hook decides), then stores the
certificate and the ChargerCredentials `chargenet-shim simulate` and `gateway` read.
The claim bundle is what the factory installs: claim.pem, claim.key, ca.pem, claim.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awscrt import mqtt
from awsiot import mqtt_connection_builder
from pydantic import BaseModel, ConfigDict, Field

from chargenet_shim.credentials import CHARGER_ID_PATTERN, ChargerCredentials
from chargenet_shim.keystore import FileKeyStore

BUNDLE_FILE = "claim.json"
CREATE_FROM_CSR_TOPIC = "$aws/certificates/create-from-csr/json"
# The claim policy admits only client ids no charger can have (charger ids start with a letter
# or digit): a claim certificate cannot take over a charger's connection.
CLAIM_CLIENT_PREFIX = "claim:"
# The rest is random, not the serial: a client id someone can predict is one they can connect
# with first, taking over (and cutting) the device's claim connection in the middle of its claim.
CLAIM_CLIENT_RANDOM_BYTES = 16
REPLY_TIMEOUT_S = 20.0
# A lost RegisterThing reply is asked again with the same token: the hook answers a repeat
# of the same device's claim the same way.
REGISTER_ATTEMPTS = 3


class ClaimRejected(RuntimeError):
    """The cloud refused the claim (or never answered): the charger has no identity of its own."""


class ClaimBundle(BaseModel):
    """claim.json, beside the batch claim certificate, written by `chargenet provisioning claim-certificate`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mqtt_host: str = Field(min_length=1)
    mqtt_port: int = Field(ge=1, le=65535)
    template_name: str = Field(pattern=r"^[0-9A-Za-z_-]{1,36}$")
    certificate_id: str = ""

    @classmethod
    def load(cls, folder: Path) -> ClaimBundle:
        return cls.model_validate_json((folder / BUNDLE_FILE).read_text())

    def save(self, folder: Path) -> Path:
        target = folder / BUNDLE_FILE
        target.write_text(self.model_dump_json(indent=2))
        return target


@dataclass(frozen=True)
class SignedCertificate:
    certificate_id: str
    certificate_pem: str
    ownership_token: str


@dataclass(frozen=True)
class Registration:
    thing_name: str
    device_configuration: dict[str, str]


def register_thing_topic(template_name: str) -> str:
    return f"$aws/provisioning-templates/{template_name}/provision/json"


def read_certificate_reply(topic: str, payload: bytes) -> SignedCertificate:
    """CreateCertificateFromCsr's accepted or rejected reply."""
    body = _reply_body(topic, payload, "certificate request")
    try:
        return SignedCertificate(
            body["certificateId"], body["certificatePem"], body["certificateOwnershipToken"]
        )
    except KeyError as exc:
        raise ClaimRejected(f"certificate request: reply without {exc.args[0]}") from exc


def read_registration_reply(topic: str, payload: bytes) -> Registration:
    """RegisterThing's accepted or rejected reply."""
    body = _reply_body(topic, payload, "registration")
    thing_name = body.get("thingName")
    if not isinstance(thing_name, str) or not thing_name:
        raise ClaimRejected("registration: reply without thingName")
    configuration = body.get("deviceConfiguration") or {}
    return Registration(thing_name, {str(k): str(v) for k, v in configuration.items()})


def _reply_body(topic: str, payload: bytes, step: str) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ClaimRejected(f"{step}: unreadable reply") from exc
    if not isinstance(body, dict):
        raise ClaimRejected(f"{step}: unreadable reply")
    if topic.endswith("/rejected"):
        raise ClaimRejected(
            f"{step} rejected: {body.get('errorCode', '?')} ({body.get('statusCode', '?')}): "
            f"{body.get('errorMessage', '')}"
        )
    return body


async def claim(claim_dir: Path, serial_number: str, out_dir: Path) -> Path:
    """Provision this charger as `serial_number`; returns the folder holding its credentials.

    Its site is the operator's to say (the allow-list entry), not the device's.
    """
    if not re.fullmatch(CHARGER_ID_PATTERN, serial_number):
        raise ClaimRejected(f"invalid serial number {serial_number!r}: it becomes the charger id")
    bundle = ClaimBundle.load(claim_dir)
    keystore = FileKeyStore(out_dir)
    csr = keystore.create_csr(serial_number)
    async with ClaimConnection(claim_dir, bundle) as connection:
        signed = read_certificate_reply(
            *await connection.request(CREATE_FROM_CSR_TOPIC, {"certificateSigningRequest": csr})
        )
        registration = await _register(connection, bundle, signed, {"SerialNumber": serial_number})
    if registration.thing_name != serial_number:
        raise ClaimRejected(f"registered as {registration.thing_name!r}, not as {serial_number!r}")
    keystore.install_certificate(signed.certificate_pem, (claim_dir / "ca.pem").read_text())
    ingest_rule = registration.device_configuration.get("IngestRule")
    if not ingest_rule:
        raise ClaimRejected("registration: the device configuration names no IngestRule")
    ChargerCredentials(
        charger_id=serial_number,
        mqtt_host=bundle.mqtt_host,
        mqtt_port=bundle.mqtt_port,
        ingest_rule=ingest_rule,
        ca_path=keystore.ca_path,
        cert_path=keystore.cert_path,
        key_path=keystore.key_path,
    ).save(out_dir)
    return out_dir


async def _register(
    connection: ClaimConnection, bundle: ClaimBundle, signed: SignedCertificate, parameters: dict[str, str]
) -> Registration:
    request = {"certificateOwnershipToken": signed.ownership_token, "parameters": parameters}
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            return read_registration_reply(
                *await connection.request(register_thing_topic(bundle.template_name), request)
            )
        except TimeoutError:
            if attempt == REGISTER_ATTEMPTS - 1:
                raise ClaimRejected("registration: no reply") from None
    raise AssertionError("unreachable")


def claim_client_id() -> str:
    """A fresh MQTT client id for one claim: the claim policy's prefix, then 128 random bits."""
    return CLAIM_CLIENT_PREFIX + secrets.token_hex(CLAIM_CLIENT_RANDOM_BYTES)


class ClaimConnection:
    """The claim certificate's MQTT connection: one request at a time, its accepted/rejected reply back."""

    def __init__(self, claim_dir: Path, bundle: ClaimBundle) -> None:
        self.client_id = claim_client_id()
        self._connection = mqtt_connection_builder.mtls_from_path(
            endpoint=bundle.mqtt_host,
            port=bundle.mqtt_port,
            cert_filepath=str(claim_dir / "claim.pem"),
            pri_key_filepath=str(claim_dir / "claim.key"),
            ca_filepath=str(claim_dir / "ca.pem"),
            client_id=self.client_id,
            clean_session=True,
            keep_alive_secs=30,
        )
        self._replies: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._subscribed: set[str] = set()

    async def __aenter__(self) -> ClaimConnection:
        self._loop = asyncio.get_running_loop()
        try:
            await _wait(self._connection.connect())
        except Exception as exc:
            raise ClaimRejected(f"cannot connect with the claim certificate: {exc}") from exc
        return self

    async def __aexit__(self, *_: object) -> None:
        # The claim's outcome is what counts, not a clean goodbye.
        with contextlib.suppress(Exception):
            await _wait(self._connection.disconnect())

    async def request(self, topic: str, body: dict[str, Any]) -> tuple[str, bytes]:
        """Subscribe to the replies first (IoT does not keep them), publish, wait for the reply."""
        for outcome in ("accepted", "rejected"):
            await self._subscribe(f"{topic}/{outcome}")
        while not self._replies.empty():  # a late reply to an earlier attempt
            self._replies.get_nowait()
        publish, _ = self._connection.publish(topic, json.dumps(body).encode(), mqtt.QoS.AT_LEAST_ONCE)
        await _wait(publish)
        while True:
            reply_topic, payload = await asyncio.wait_for(self._replies.get(), REPLY_TIMEOUT_S)
            if reply_topic.startswith(f"{topic}/"):
                return reply_topic, payload

    async def _subscribe(self, topic: str) -> None:
        if topic in self._subscribed:
            return
        loop = self._loop

        def deliver(topic: str, payload: bytes, **_: object) -> None:
            loop.call_soon_threadsafe(self._replies.put_nowait, (topic, payload))

        subscribed, _ = self._connection.subscribe(topic, mqtt.QoS.AT_LEAST_ONCE, deliver)
        result = await _wait(subscribed)
        if result.get("qos") is None:
            raise ClaimRejected(f"the claim certificate may not subscribe to {topic}")
        self._subscribed.add(topic)


async def _wait(future: Future[Any]) -> Any:
    return await asyncio.wait_for(asyncio.wrap_future(future), REPLY_TIMEOUT_S)
