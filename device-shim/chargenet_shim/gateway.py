"""The site gateway: real chargers speak OCPP-J 1.6 or 2.0.1 to it, it relays each one over its own MQTT link.

The charger's version is the WebSocket subprotocol it negotiated (`ocpp2.0.1` when it offers both,
no connection when it offers neither), and it picks the ingest topic the link publishes to (one
IoT rule per version, credentials.ChargerCredentials.ingest_topic_for): the backend reads each
frame in the version it came in. Everything the gateway says itself, to the charger or for it,
is in that version's words.

Frames are relayed verbatim in both directions; the gateway does not parse
OCPP, so message ids, payloads and errors stay end to end between the
charger and the cloud backend. The one exception is the shim's own certificate
rotation for a charger's MQTT link, while the charger is connected: its CALLs and
the cloud's answers to them are the shim's, taken out of the relay (ocpp_issuer.py,
RelayedCalls). The cloud certificate is the shim's alone: a charger's own SignCertificate is
answered NotSupported and never relayed (the certificate it asked for would let the charger
reach IoT Core directly, past this gateway), and a charger's DataTransfer in the shim's vendor
id is refused (refuse_shim_messages). Firmware is the other
exception: the backend's UpdateFirmware is verified here and offered to the charger as
SignedUpdateFirmware (2.0.1: UpdateFirmware, with the manufacturer's signature), and the
charger's status notifications reach the backend in its version's words (gateway_firmware.py,
firmware_dialects.py); the gateway's listener also serves the verified image.
Cloud rollouts arrive as IoT Jobs on each charger's MQTT link and take the same firmware path
(gateway_firmware.py, jobs.py).

A frame over the backend's limit (frame_limit.py, 64 KiB) is never published: the broker would
drop the charger's MQTT link for it. The gateway answers such a CALL with the backend's own
CALLERROR and drops anything else with a log line; the charger stays connected. A WebSocket
message over MAX_WEBSOCKET_MESSAGE_BYTES (2 MiB) is not read at all: websockets closes the
connection with 1009 (message too big).

A relayed GetDiagnostics or UpdateFirmware names a location that may carry credentials: whatever
the gateway logs of a frame (websockets' DEBUG frame lines included) shows URLs only as
chargenet_shim.redaction redacts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from chargenet_firmware_format import OperatorKey
from chargenet_shim.auth import CertificateAuthenticator, ChargerAuthenticator
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.frame_limit import Oversized, oversized
from chargenet_shim.gateway_firmware import (
    DEFAULT_OFFER_TTL_S,
    ChargerCalls,
    FirmwareImages,
    FirmwareRelay,
    SiteFirmware,
)
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.limiter import Lockouts
from chargenet_shim.link import ChargerLink, LinkError
from chargenet_shim.ocpp_issuer import VENDOR_ID, OcppIssuer, RelayedCalls
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.redaction import redacting_logger
from chargenet_shim.rotation import DEFAULT_CHECK_EVERY_S, DEFAULT_RENEW_BEFORE, renew_before_expiry

LOG = logging.getLogger(__name__)

# websockets picks the first of these the charger offers: 2.0.1 when it offers both, and it
# refuses the handshake (400) when the charger offers neither.
SUBPROTOCOLS = [Subprotocol(OcppVersion.V201.value), Subprotocol(OcppVersion.V16.value)]
# websockets reads a message whole before the gateway sees it. Up to this size a frame over the
# frame limit is still read, so the charger gets a CALLERROR for it; beyond it websockets closes
# with 1009 unread: no OCPP message of either version comes near 2 MiB, and buffering more per
# connection would only serve a hostile charger (websockets' own default, 1 MiB, would close on a
# ~1 MB CALL).
MAX_WEBSOCKET_MESSAGE_BYTES = 2 * 1024 * 1024

Authenticator = ChargerAuthenticator | CertificateAuthenticator


class GatewayConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535, description="0 picks a free port")
    credentials_dir: Path
    security_profile: Literal[1, 2, 3] = 1
    allow_plain_ws: bool = Field(
        default=False,
        description="profile 1 sends Basic Auth passwords in clear: a trusted site LAN only, and only when set",
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = Field(
        default=None, description="profile 3: the CA that signs charger certificates"
    )
    operator_org: str | None = Field(
        default=None, min_length=1, description="profile 3: the O every charger certificate must carry"
    )
    mqtt_connect_timeout: float = Field(default=10.0, gt=0)
    renew_before_days: int = Field(
        default=DEFAULT_RENEW_BEFORE.days,
        ge=1,
        description="rotate a link's certificate this close to expiry",
    )
    renew_check_s: float = Field(default=DEFAULT_CHECK_EVERY_S, gt=0)
    firmware_key: Path | None = Field(
        default=None,
        description="the operator's firmware signing public key (PEM, P-256); none: every update is refused",
    )
    firmware_offer_s: float = Field(
        default=DEFAULT_OFFER_TTL_S, gt=0, description="how long a verified image stays downloadable"
    )

    @field_validator("firmware_key")
    @classmethod
    def _p256_key(cls, path: Path | None) -> Path | None:
        if path is not None:
            OperatorKey.from_pem(path.read_bytes())
        return path

    def operator_key(self) -> OperatorKey | None:
        return None if self.firmware_key is None else OperatorKey.from_pem(self.firmware_key.read_bytes())

    @model_validator(mode="after")
    def _tls_matches_profile(self) -> GatewayConfig:
        has_tls = self.tls_cert is not None and self.tls_key is not None
        if self.security_profile in (2, 3) and not has_tls:
            raise ValueError(f"security profile {self.security_profile} needs tls_cert and tls_key")
        if self.security_profile == 1 and not self.allow_plain_ws:
            raise ValueError(
                "security profile 1 is plain ws: charger passwords cross the network in clear, so it is for a "
                "trusted site LAN only and must be enabled explicitly (allow_plain_ws, --allow-plain-ws); "
                "otherwise use profile 2 (tls_cert, tls_key) or 3"
            )
        if self.security_profile == 1 and (self.tls_cert or self.tls_key):
            raise ValueError("security profile 1 is plain ws: tls_cert/tls_key are for profiles 2 and 3")
        client_certs = self.client_ca is not None and self.operator_org is not None
        if self.security_profile == 3 and not client_certs:
            raise ValueError("security profile 3 needs client_ca and operator_org")
        # Set on another profile they would look like protection that is not there.
        if self.security_profile != 3 and (self.client_ca or self.operator_org):
            raise ValueError("client_ca/operator_org are for security profile 3")
        return self


class Gateway:
    def __init__(self, config: GatewayConfig, lockouts: Lockouts | None = None) -> None:
        self.config = config
        self._authenticate = _authenticator(config, lockouts or Lockouts())
        self._firmware = SiteFirmware(config.operator_key(), FirmwareImages(config.firmware_offer_s))
        # One live link per charger id: the MQTT client id is the charger id.
        self._links: dict[str, ChargerLink] = {}
        self._server: Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when the configured port is 0)."""
        return int(self._require_server().sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await ws_serve(
            self._handle,
            self.config.host,
            self.config.port,
            subprotocols=SUBPROTOCOLS,
            process_request=self._process_request,
            max_size=MAX_WEBSOCKET_MESSAGE_BYTES,
            ssl=_server_tls(self.config),
            # websockets logs every frame at DEBUG: a relayed location's credentials never with it.
            logger=redacting_logger("websockets.server"),
        )
        LOG.info(
            "OCPP gateway listening on %s:%d (profile %d)",
            self.config.host,
            self.port,
            self.config.security_profile,
        )

    async def serve_forever(self) -> None:
        await self._require_server().serve_forever()

    async def close(self) -> None:
        """Drop every charger's MQTT link, then the chargers' WebSockets and the listening socket."""
        await asyncio.gather(*(link.close() for link in list(self._links.values())))
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """A verified firmware image's download (its path is its credential), else the charger's handshake check."""
        image = self._firmware.images.respond(connection, request)
        return image if image is not None else await self._authenticate(connection, request)

    def _require_server(self) -> Server:
        if self._server is None:
            raise RuntimeError("gateway is not running")
        return self._server

    async def _handle(self, websocket: ServerConnection) -> None:
        charger_id = websocket.username
        # websockets has answered 400 to a charger offering no subprotocol of SUBPROTOCOLS.
        version = OcppVersion(cast(str, websocket.subprotocol))
        link = ChargerLink(
            ChargerCredentials.load(self.config.credentials_dir / charger_id), ocpp_version=version
        )
        # A charger that reconnects before its old connection is noticed dead would otherwise
        # have two links taking the same MQTT client id from each other: the newest one wins.
        previous, self._links[charger_id] = self._links.get(charger_id), link
        try:
            if previous is not None:
                LOG.info("%s: new connection replaces the previous one", charger_id)
                await previous.close()
            await self._connect_and_relay(websocket, link)
        finally:
            if self._links.get(charger_id) is link:
                del self._links[charger_id]
            await link.close()

    async def _connect_and_relay(self, websocket: ServerConnection, link: ChargerLink) -> None:
        try:
            await link.connect(self.config.mqtt_connect_timeout)
        except LinkError as exc:
            LOG.error("%s", exc)
            await websocket.close(CloseCode.INTERNAL_ERROR, "cloud link unavailable")
            return
        keystore = FileKeyStore(link.credentials.cert_path.parent)
        shim_calls = RelayedCalls(link)
        shim_calls.issuer = OcppIssuer(keystore, shim_calls.send_call, ocpp_version=link.ocpp_version)
        firmware = self._firmware.relay(
            link.credentials.charger_id,
            self._base_url(websocket),
            shim_calls.send_call,
            ChargerCalls(websocket.send),
            link.ocpp_version,
        )
        renewal = asyncio.create_task(
            renew_before_expiry(
                link,
                keystore,
                shim_calls.issuer,
                renew_before=timedelta(days=self.config.renew_before_days),
                check_every_s=self.config.renew_check_s,
            )
        )
        jobs = asyncio.create_task(firmware.run_jobs(link))
        try:
            await _relay(websocket, link, shim_calls, firmware)
        finally:
            for background in (renewal, jobs):
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
            await firmware.close()

    def _base_url(self, websocket: ServerConnection) -> str:
        """Where the charger finds this gateway: the host it connected to, over the WebSocket's transport."""
        scheme = "http" if self.config.security_profile == 1 else "https"
        host = websocket.request.headers.get("Host") if websocket.request else None
        return f"{scheme}://{host or f'{self.config.host}:{self.port}'}"


async def serve(config: GatewayConfig) -> Gateway:
    gateway = Gateway(config)
    await gateway.start()
    return gateway


def _authenticator(config: GatewayConfig, lockouts: Lockouts) -> Authenticator:
    if config.security_profile == 3 and config.operator_org is not None:
        return CertificateAuthenticator(config.credentials_dir, config.operator_org)
    return ChargerAuthenticator(config.credentials_dir, lockouts)


def _server_tls(config: GatewayConfig) -> ssl.SSLContext | None:
    if config.security_profile == 1 or config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.security_profile == 3 and config.client_ca is not None:
        # OpenSSL refuses, during the TLS handshake, a missing certificate, one from another CA,
        # an expired one and one not made for client authentication; the subject is auth.py's.
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=config.client_ca)
    return context


async def _relay(
    websocket: ServerConnection, link: ChargerLink, shim_calls: RelayedCalls, firmware: FirmwareRelay
) -> None:
    """Until either side goes away; then the other direction is stopped too."""
    directions = {
        asyncio.create_task(_charger_to_cloud(websocket, link, firmware)),
        asyncio.create_task(_cloud_to_charger(link, websocket, shim_calls, firmware)),
    }
    _, pending = await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _charger_to_cloud(websocket: ServerConnection, link: ChargerLink, firmware: FirmwareRelay) -> None:
    try:
        async for frame in websocket:
            if not isinstance(frame, str):
                await websocket.close(CloseCode.UNSUPPORTED_DATA, "OCPP-J frames are text")
                return
            # Before anything parses it: it may be 2 MiB, and it must never reach the link.
            if (too_large := oversized(frame)) is not None:
                await _refuse_oversized(websocket, too_large)
                continue
            if (refusal := refuse_shim_messages(frame)) is not None:
                await websocket.send(refusal)
                continue
            if await firmware.from_charger(frame):
                continue
            await link.send(frame)
    except ConnectionClosed:
        return
    except LinkError as exc:
        LOG.error("%s", exc)
        await websocket.close(CloseCode.INTERNAL_ERROR, "cloud link lost")


async def _refuse_oversized(websocket: ServerConnection, frame: Oversized) -> None:
    """Answer an oversized CALL as the backend would; anything else over the limit is dropped, and said so."""
    answer = frame.call_error()
    if answer is None:
        LOG.error("%s: %s: not relayed, nothing to answer, dropped", websocket.username, frame)
        return
    LOG.warning("%s: %s: not relayed, answered with a CALLERROR", websocket.username, frame)
    await websocket.send(answer)


def refuse_shim_messages(frame: str) -> str | None:
    """The CALLERROR for a charger's CALL that speaks for the shim, None for anything else.

    The backend reads DataTransfer from vendor "chargenet" as the shim's word about the MQTT
    link's certificates (CertificateInstalled retires every other certificate of the thing): a
    charger behind the gateway could otherwise retire the shim's own certificate. The backend
    signs a SignCertificate's CSR as the charger's cloud certificate, which would let the charger
    connect to IoT Core itself, past this gateway's filters: the link's certificate is the shim's
    to rotate (rotation.py), and this gateway signs no OCPP-level charger certificates. Both
    versions have the same action names, payload field and error codes for these.
    """
    try:
        message = json.loads(frame)
    except ValueError:
        return None  # not for the gateway to judge: the backend answers malformed frames
    if not (isinstance(message, list) and len(message) == 4 and message[0] == 2):
        return None
    action, payload = message[2], message[3]
    if action == "SignCertificate":
        reason = "the gateway signs no charger certificates; the cloud link's is the shim's"
        return json.dumps([4, message[1], "NotSupported", reason, {}])
    if action == "DataTransfer" and isinstance(payload, dict) and payload.get("vendorId") == VENDOR_ID:
        reason = f"vendor {VENDOR_ID} is reserved for the gateway"
        return json.dumps([4, message[1], "SecurityError", reason, {}])
    return None


async def _cloud_to_charger(
    link: ChargerLink, websocket: ServerConnection, shim_calls: RelayedCalls, firmware: FirmwareRelay
) -> None:
    try:
        while True:
            frame = await link.recv()
            answer = shim_calls.take(frame)
            if answer is None:
                answer = await firmware.from_cloud(frame)
            if answer is None:
                await websocket.send(frame)
            elif answer:
                await link.send(answer)
    except ConnectionClosed:
        return
    except LinkError:
        # The link was closed here: the gateway is shutting down or the charger reconnected.
        await websocket.close(CloseCode.GOING_AWAY, "cloud link closed")
