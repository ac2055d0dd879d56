"""The gateway's handshake check: which charger is this, and is it who it claims to be.

Runs as websockets' `process_request` hook, before the upgrade, so a refused
charger gets a plain HTTP status and never reaches the cloud link.

Profiles 1 and 2 (ChargerAuthenticator): Basic Auth; 404 for a path that names no
charger id, 429 locked out (by charger id or by source address), 401 otherwise. An
unknown id, a charger without a password and a wrong password get the same 401 after
the same scrypt work, so the handshake does not tell which charger ids exist.
Profile 3 (CertificateAuthenticator): the TLS layer has already refused certificates
that are missing, expired or not from the configured CA; here the certificate must
name the charger of the URL and the operator: 403 otherwise, then 404 unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import secrets
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidHeader
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response

from chargenet_shim.credentials import (
    CHARGER_ID_PATTERN,
    FILE_NAME,
    ChargerCredentials,
    hash_password,
    verify_password,
)
from chargenet_shim.limiter import Lockouts

LOG = logging.getLogger(__name__)

REALM = "chargenet"
_PATH = re.compile(r"^/ocpp/(?P<charger_id>[^/]+)$")
_CHARGER_ID = re.compile(CHARGER_ID_PATTERN)


def charger_id_from_path(path: str) -> str | None:
    """The id in `/ocpp/<id>` (query ignored); None otherwise, and for ids that could escape a folder."""
    match = _PATH.match(urlsplit(path).path)
    if match is None:
        return None
    charger_id = unquote(match["charger_id"])
    # fullmatch: `match` with `$` would take an id with a trailing newline.
    return charger_id if _CHARGER_ID.fullmatch(charger_id) else None


def load_charger(credentials_dir: Path, charger_id: str) -> ChargerCredentials | None:
    """The charger's stored credentials, or None if it has none or they name another charger."""
    folder = credentials_dir / charger_id
    if not (folder / FILE_NAME).is_file():
        return None
    credentials = ChargerCredentials.load(folder)
    if credentials.charger_id != charger_id:
        # The link would otherwise run under another charger's certificate.
        LOG.error("%s: %s names charger %s, refusing", charger_id, folder / FILE_NAME, credentials.charger_id)
        return None
    return credentials


class ChargerAuthenticator:
    """HTTP Basic Auth with user = charger id against the charger's stored scrypt hash."""

    def __init__(self, credentials_dir: Path, lockouts: Lockouts) -> None:
        self._credentials_dir = credentials_dir
        self._lockouts = lockouts
        # Verified against when the id has no stored hash, so an unknown id costs what a known one does.
        self._stand_in_hash = hash_password(secrets.token_urlsafe(32))
        # One check at a time per charger id and per source address: parallel guesses would
        # all pass the lockout test before the first failure is recorded.
        self._one_at_a_time = _KeyedLocks()

    async def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        charger_id = charger_id_from_path(request.path)
        if charger_id is None:
            # Not a charger's URL at all: says nothing about which chargers exist.
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charger\n")
        address = source_address(connection)
        # Always the id first, then the address: one order, no deadlock.
        async with self._one_at_a_time.hold(f"id:{charger_id}"), self._one_at_a_time.hold(f"ip:{address}"):
            return await self._check(connection, request, charger_id, address)

    async def _check(
        self, connection: ServerConnection, request: Request, charger_id: str, address: str
    ) -> Response | None:
        if self._lockouts.is_locked(charger_id, address):
            return connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "Too many failed attempts, try later\n")
        supplied = _basic_credentials(request)
        if supplied is None:
            return _unauthorized(connection, "Missing or unsupported credentials\n")
        username, password = supplied
        stored = self._password_hash(charger_id)
        # scrypt is deliberately slow: keep it off the event loop. Always run, so the time taken
        # does not tell an unknown id or a wrong user name from a wrong password.
        matches = await asyncio.to_thread(verify_password, password, stored or self._stand_in_hash)
        if not (matches and stored is not None and username == charger_id):
            self._lockouts.record_failure(charger_id, address)
            LOG.warning("%s: wrong Basic Auth credentials from %s", charger_id, address)
            return _unauthorized(connection, "Invalid credentials\n")
        self._lockouts.record_success(charger_id)
        connection.username = charger_id
        return None

    def _password_hash(self, charger_id: str) -> str | None:
        """The charger's stored hash; None, logged here only, for an unknown id or one without a password."""
        credentials = load_charger(self._credentials_dir, charger_id)
        if credentials is None:
            LOG.warning("%s: refused, no such charger", charger_id)
            return None
        if credentials.password_hash is None:
            LOG.warning("%s: refused, no password configured for this charger", charger_id)
        return credentials.password_hash


class _KeyedLocks:
    """One asyncio.Lock per key, forgotten once nobody holds or waits for it (keys come from clients)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def source_address(connection: ServerConnection) -> str:
    """The peer's address as a lockout key: an IPv6 peer by its /64, which one host can fill at will."""
    peer = connection.remote_address
    host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # an IPv4 peer on a dual-stack listener
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class CertificateAuthenticator:
    """Security profile 3: the client certificate's CN is the charger id of the URL, its O the operator's.

    Only certificates the TLS handshake verified reach this check (chain to the configured
    CA, validity dates, client-auth usage), so it checks the subject alone. There is no
    password to guess, hence no lockout.
    """

    def __init__(self, credentials_dir: Path, operator_org: str) -> None:
        self._credentials_dir = credentials_dir
        self._operator_org = operator_org

    async def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        charger_id = charger_id_from_path(request.path)
        if charger_id is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charger\n")
        certificate = _peer_certificate(connection)
        if certificate is None:
            # Unreachable while the TLS layer requires a certificate; refuse rather than trust that.
            LOG.warning("%s: refused, no client certificate from %s", charger_id, connection.remote_address)
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Client certificate required\n")
        # The subject is checked before the charger is looked up: a certificate holder can
        # only ever learn whether its own charger id is known here.
        common_name, organization = (
            _subject_value(certificate, NameOID.COMMON_NAME),
            _subject_value(certificate, NameOID.ORGANIZATION_NAME),
        )
        if common_name != charger_id or organization != self._operator_org:
            LOG.warning(
                "%s: refused client certificate serial %x (CN=%r, O=%r) from %s",
                charger_id,
                certificate.serial_number,
                common_name,
                organization,
                connection.remote_address,
            )
            return connection.respond(HTTPStatus.FORBIDDEN, "Certificate does not match this charger\n")
        if load_charger(self._credentials_dir, charger_id) is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charger\n")
        connection.username = charger_id
        return None


def _peer_certificate(connection: ServerConnection) -> x509.Certificate | None:
    tls = connection.transport.get_extra_info("ssl_object")
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    return x509.load_der_x509_certificate(der) if der else None


def _subject_value(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    """The subject's one value for `oid`; None when absent or repeated (which one would count?)."""
    values = certificate.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if len(values) == 1 else None


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    try:
        return parse_authorization_basic(header)
    except InvalidHeader:
        return None


def _unauthorized(connection: ServerConnection, text: str) -> Response:
    response = connection.respond(HTTPStatus.UNAUTHORIZED, text)
    response.headers["WWW-Authenticate"] = build_www_authenticate_basic(REALM)
    return response
