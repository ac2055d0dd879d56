"""The gateway's handshake check: which charger is this, and is it who it claims to be.

Runs as websockets' `process_request` hook, before the upgrade, so a refused
charger gets a plain HTTP status (404 unknown, 403 no password set up, 429
locked out, 401 wrong credentials) and never reaches the cloud link.
"""

from __future__ import annotations

import asyncio
import logging
import re
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidHeader
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response

from chargenet_shim.credentials import CHARGER_ID_PATTERN, FILE_NAME, ChargerCredentials, verify_password
from chargenet_shim.limiter import AttemptLimiter

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
    return charger_id if _CHARGER_ID.match(charger_id) else None


class ChargerAuthenticator:
    """HTTP Basic Auth with user = charger id against the charger's stored scrypt hash."""

    def __init__(self, credentials_dir: Path, limiter: AttemptLimiter) -> None:
        self._credentials_dir = credentials_dir
        self._limiter = limiter
        # One check at a time per charger: parallel guesses would all pass the
        # lockout test before the first failure is recorded.
        self._locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        charger_id = charger_id_from_path(request.path)
        credentials = self._credentials_for(charger_id) if charger_id else None
        if charger_id is None or credentials is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charger\n")
        if credentials.password_hash is None:
            LOG.warning("%s: refused, no password configured for this charger", charger_id)
            return connection.respond(HTTPStatus.FORBIDDEN, "No password configured for this charger\n")
        async with self._locks.setdefault(charger_id, asyncio.Lock()):
            return await self._check(connection, request, charger_id, credentials.password_hash)

    def _credentials_for(self, charger_id: str) -> ChargerCredentials | None:
        folder = self._credentials_dir / charger_id
        if not (folder / FILE_NAME).is_file():
            return None
        credentials = ChargerCredentials.load(folder)
        if credentials.charger_id != charger_id:
            # The link would otherwise run under another charger's certificate.
            LOG.error(
                "%s: %s names charger %s, refusing", charger_id, folder / FILE_NAME, credentials.charger_id
            )
            return None
        return credentials

    async def _check(
        self, connection: ServerConnection, request: Request, charger_id: str, password_hash: str
    ) -> Response | None:
        if self._limiter.is_locked(charger_id):
            return connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "Too many failed attempts, try later\n")
        supplied = _basic_credentials(request)
        if supplied is None:
            return _unauthorized(connection, "Missing or unsupported credentials\n")
        username, password = supplied
        # scrypt is deliberately slow: keep it off the event loop.
        valid = username == charger_id and await asyncio.to_thread(verify_password, password, password_hash)
        if not valid:
            self._limiter.record_failure(charger_id)
            LOG.warning("%s: wrong Basic Auth credentials from %s", charger_id, connection.remote_address)
            return _unauthorized(connection, "Invalid credentials\n")
        self._limiter.record_success(charger_id)
        connection.username = charger_id
        return None


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
