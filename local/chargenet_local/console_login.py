"""The local stack's stand-in for Cognito's managed login, for the operator console.

moto has no hosted login pages, so the local stack serves these three endpoints on the API front's
origin, with Cognito's parameters and answers, and the console's code is the same as in the cloud:

- `GET /local-login/oauth2/authorize?response_type=code&client_id&redirect_uri&scope&state&
  code_challenge&code_challenge_method=S256`: a sign-in form (no script, its own CSP); `POST` of
  the form checks the password with moto's InitiateAuth on the console client and redirects to
  `redirect_uri?code=..&state=..`.
- `POST /local-login/oauth2/token` (form-encoded, authorization_code grant with the PKCE verifier):
  moto's tokens as JSON, or a 400 `{"error": "invalid_grant"}` as Cognito answers.
- `GET /local-login/logout?client_id&logout_uri`: back to the console.

A code is single use (burnt by the first exchange, right or wrong), lives 60 s, and is bound to the
client, the redirect URI and the S256 code challenge. Only the console's exact callback URL is a
valid redirect: anything else is refused on a page, never redirected to.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from chargenet_local.httpserve import Request, Response

PREFIX = "/local-login"
AUTHORIZE_PATH = f"{PREFIX}/oauth2/authorize"
TOKEN_PATH = f"{PREFIX}/oauth2/token"
LOGOUT_PATH = f"{PREFIX}/logout"
PATHS = (AUTHORIZE_PATH, TOKEN_PATH, LOGOUT_PATH)
CODE_LIFETIME_S = 60
ALLOWED_SCOPES = frozenset({"openid", "email", "profile"})
# RFC 7636: the challenge is base64url(sha256(verifier)) without padding, 43 characters; a verifier
# is 43 to 128 unreserved characters.
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
PAGE_CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
NEW_PASSWORD_MESSAGE = "This account must choose its password first: sign in once with `chargenet login`."


def console_environment(api_url: str) -> dict[str, str]:
    """ConsoleFunction's sign-in settings on the local stack: this stand-in, on the API front."""
    return {
        "CONSOLE_AUTHORIZE_URL": f"{api_url}{AUTHORIZE_PATH}",
        "CONSOLE_TOKEN_URL": f"{api_url}{TOKEN_PATH}",
        "CONSOLE_LOGOUT_URL": f"{api_url}{LOGOUT_PATH}",
        "CONSOLE_BASE_URL": api_url,
    }


class SignInRefused(Exception):
    """Wrong user name or password, or an account that cannot sign in here; the message is shown."""


# (user name, password) -> Cognito's AuthenticationResult, or SignInRefused.
Authenticate = Callable[[str, str], dict[str, Any]]


def moto_authenticate(cognito: Any, client_id: str) -> Authenticate:
    """InitiateAuth (USER_PASSWORD_AUTH) on the console client in moto's Cognito."""

    def authenticate(username: str, password: str) -> dict[str, Any]:
        try:
            answer = cognito.initiate_auth(
                ClientId=client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
        except cognito.exceptions.NotAuthorizedException:
            raise SignInRefused("Incorrect user name or password.") from None
        except cognito.exceptions.UserNotFoundException:
            raise SignInRefused("Incorrect user name or password.") from None
        if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
            raise SignInRefused(NEW_PASSWORD_MESSAGE)
        if "AuthenticationResult" not in answer:
            raise SignInRefused(f"This account needs {answer.get('ChallengeName')}: use `chargenet login`.")
        return dict(answer["AuthenticationResult"])

    return authenticate


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    tokens: dict[str, Any]
    expires: float


class AuthorizeError(ValueError):
    """The authorize request is not the console's: refused on a page (no redirect)."""


class ConsoleLogin:
    """The three endpoints (PATHS), as a front: `handle(request)`."""

    def __init__(
        self,
        client_id: str,
        console_url: str,
        authenticate: Authenticate,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_id = client_id
        self._callback = f"{console_url}callback"
        self._console = console_url
        self._authenticate = authenticate
        self._clock = clock
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route in (("GET", AUTHORIZE_PATH), ("POST", AUTHORIZE_PATH)):
            return self._authorize(request)
        if route == ("POST", TOKEN_PATH):
            return self._token(request)
        if route == ("GET", LOGOUT_PATH):
            return self._logout(request)
        return _page(405, "Method not allowed.")

    # ------------------------------------------------------------ authorize
    def _authorize(self, request: Request) -> Response:
        query = dict(parse_qsl(request.query, keep_blank_values=True))
        try:
            self._check_authorize(query)
        except AuthorizeError as exc:
            return _page(400, str(exc))
        if request.method == "GET":
            return _form(200, "")
        fields = dict(parse_qsl(request.body.decode(errors="replace"), keep_blank_values=True))
        username = fields.get("username", "")
        try:
            tokens = self._authenticate(username, fields.get("password", ""))
        except SignInRefused as exc:
            return _form(400, str(exc), username)
        code = self._grant(query, tokens)
        location = f"{self._callback}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        return Response(302, b"", [("Location", location), *NO_STORE])

    def _check_authorize(self, query: dict[str, str]) -> None:
        if query.get("client_id") != self._client_id:
            raise AuthorizeError("Unknown client.")
        if query.get("redirect_uri") != self._callback:
            raise AuthorizeError("This redirect URI is not the console's callback.")
        if query.get("response_type") != "code":
            raise AuthorizeError("Only the authorization code flow is allowed.")
        if query.get("code_challenge_method") != "S256" or not CHALLENGE.fullmatch(
            query.get("code_challenge", "")
        ):
            raise AuthorizeError("A PKCE code challenge (S256) is required.")
        if not set(query.get("scope", "openid").split()) <= ALLOWED_SCOPES:
            raise AuthorizeError("Scopes allowed: openid, email, profile.")

    def _grant(self, query: dict[str, str], tokens: dict[str, Any]) -> str:
        code = secrets.token_urlsafe(32)
        grant = _Grant(
            query["client_id"],
            query["redirect_uri"],
            query["code_challenge"],
            tokens,
            self._clock() + CODE_LIFETIME_S,
        )
        with self._lock:
            self._forget_expired()
            self._grants[code] = grant
        return code

    def _forget_expired(self) -> None:
        now = self._clock()
        for code in [code for code, grant in self._grants.items() if grant.expires <= now]:
            del self._grants[code]

    # ------------------------------------------------------------ token
    def _token(self, request: Request) -> Response:
        fields = dict(parse_qsl(request.body.decode(errors="replace"), keep_blank_values=True))
        if fields.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type")
        with self._lock:
            self._forget_expired()
            grant = self._grants.pop(fields.get("code", ""), None)  # single use, right or wrong
        if grant is None or not self._matches(grant, fields):
            return _oauth_error("invalid_grant")
        tokens = grant.tokens
        answer = {
            "access_token": tokens["AccessToken"],
            "id_token": tokens["IdToken"],
            "expires_in": int(tokens.get("ExpiresIn", 3600)),
            "token_type": tokens.get("TokenType", "Bearer"),
        }
        return Response(200, json.dumps(answer).encode(), [("Content-Type", "application/json"), *NO_STORE])

    @staticmethod
    def _matches(grant: _Grant, fields: dict[str, str]) -> bool:
        verifier = fields.get("code_verifier", "")
        return (
            fields.get("client_id") == grant.client_id
            and fields.get("redirect_uri") == grant.redirect_uri
            and VERIFIER.fullmatch(verifier) is not None
            and secrets.compare_digest(s256(verifier), grant.challenge)
        )

    # ------------------------------------------------------------ logout
    def _logout(self, request: Request) -> Response:
        query = dict(parse_qsl(request.query, keep_blank_values=True))
        if query.get("client_id") != self._client_id or query.get("logout_uri") != self._console:
            return _page(400, "This sign-out URI is not the console's.")
        return Response(302, b"", [("Location", self._console), *NO_STORE])


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _oauth_error(error: str) -> Response:
    return Response(
        400, json.dumps({"error": error}).encode(), [("Content-Type", "application/json"), *NO_STORE]
    )


def _page(status: int, message: str, body: str = "") -> Response:
    alert = f'<p role="alert">{html.escape(message)}</p>' if message else ""
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>chargenet local sign-in</title></head><body>"
        "<h1>chargenet operators (local stack)</h1>"
        f"{alert}{body}</body></html>"
    )
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Security-Policy", PAGE_CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        *NO_STORE,
    ]
    return Response(status, text.encode(), headers)


def _form(status: int, message: str, username: str = "") -> Response:
    """The form posts to its own URL (no action): the query string carries the OAuth parameters."""
    form = (
        '<form method="post">'
        f'<p><label>User name <input name="username" autocomplete="username" required '
        f'value="{html.escape(username)}"></label></p>'
        '<p><label>Password <input name="password" type="password" autocomplete="current-password" '
        "required></label></p>"
        '<p><button type="submit">Sign in</button></p></form>'
    )
    return _page(status, message, form)
