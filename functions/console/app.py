"""The operator console (GET /console, GET /console/{proxy+}): its static files and its sign-in settings.

Served by the API, on the origin of /ops/v1: the console calls the API without CORS, and the
Content-Security-Policy is set here, by our code, on every answer. No authorizer: nothing here is
private (static files and public OAuth settings); every datum the console shows comes from /ops/v1
with the operator's token.

Thin and quick to start: the standard library only (no boto3, no Powertools), no AWS call. Files
are read once per container and kept in memory (the console is a few hundred kilobytes).
"""

from __future__ import annotations

import base64
import json
import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STATIC = (Path(__file__).parent / "static").resolve()
ASSETS = STATIC / "assets"
INDEX = STATIC / "index.html"
# The single-page app answers at its root and at the OAuth callback (it reads ?code&state there).
INDEX_PATHS = frozenset({"/console", "/console/", "/console/callback"})
CONFIG_PATH = "/console/config.json"
ASSETS_PREFIX = "/console/assets/"
OPERATOR_API = "/ops/v1"
SCOPES = "openid email profile"
# Served extensions; anything else (README.md, LICENSE.md, source maps) is a 404.
TEXT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
BINARY_TYPES = {".png": "image/png", ".ico": "image/x-icon"}
# Assets have no content hash in their names: cached briefly, so a deploy reaches browsers soon.
ASSET_CACHE = "public, max-age=300"
NO_STORE = "no-store"
ALLOWED_METHODS = ("GET", "HEAD")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    if method not in ALLOWED_METHODS:
        return _answer(
            405, "text/plain; charset=utf-8", b"Method Not Allowed", NO_STORE, {"Allow": "GET, HEAD"}
        )
    answer = _route(str(event.get("rawPath", "")), event)
    if method == "HEAD":
        answer["body"], answer["isBase64Encoded"] = "", False
    return answer


def _route(path: str, event: dict[str, Any]) -> dict[str, Any]:
    if path in INDEX_PATHS:
        return _file(INDEX, NO_STORE)
    if path == CONFIG_PATH:
        body = json.dumps(console_config(os.environ, _request_domain(event))).encode()
        return _answer(200, TEXT_TYPES[".json"], body, NO_STORE)
    if path.startswith(ASSETS_PREFIX) and (asset := resolve_asset(path[len(ASSETS_PREFIX) :])):
        return _file(asset, ASSET_CACHE)
    return _not_found()


def resolve_asset(relative: str) -> Path | None:
    """The file under static/assets/ that `relative` names, or None: no traversal, no hidden or
    unserved files. API Gateway hands the path decoded once; a `%` left in it (`%2e%2e` sent as
    `%252e%252e`) or a backslash is refused rather than decoded again."""
    parts = relative.split("/")
    if any(not part or part.startswith(".") or "%" in part or "\\" in part or "\0" in part for part in parts):
        return None
    candidate = ASSETS.joinpath(*parts).resolve()
    if not candidate.is_relative_to(ASSETS) or not candidate.is_file():
        return None
    return candidate if candidate.suffix in TEXT_TYPES or candidate.suffix in BINARY_TYPES else None


def console_config(environ: Any, request_domain: str) -> dict[str, str]:
    """What the front end needs to sign in: Cognito's endpoints and the console's client."""
    return {
        "api": OPERATOR_API,
        "authorize_url": environ.get("CONSOLE_AUTHORIZE_URL", ""),
        "token_url": environ.get("CONSOLE_TOKEN_URL", ""),
        "logout_url": environ.get("CONSOLE_LOGOUT_URL", ""),
        "client_id": environ.get("CONSOLE_CLIENT_ID", ""),
        "redirect_uri": f"{base_url(environ, request_domain)}/console/callback",
        "scopes": SCOPES,
    }


def base_url(environ: Any, request_domain: str) -> str:
    """The template's PublicBaseUrl; when it is empty, the API's own domain as API Gateway names it
    (requestContext.domainName): never the Host header, which the client writes. The redirect URI
    must match the client's callback URL exactly, which the ConsoleCallback resource set from the
    same two sources."""
    configured = str(environ.get("CONSOLE_BASE_URL", "")).rstrip("/")
    return configured or f"https://{request_domain}"


def _request_domain(event: dict[str, Any]) -> str:
    return str(event.get("requestContext", {}).get("domainName", ""))


def security_headers(environ: Any) -> dict[str, str]:
    """On every answer. The token endpoint is the one cross-origin call (a fetch); the login page the
    one cross-origin navigation the policy names (form-action also covers redirects after a form)."""
    token_origin = _origin(environ.get("CONSOLE_TOKEN_URL", ""))
    login_origin = _origin(environ.get("CONSOLE_AUTHORIZE_URL", ""))
    policy = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        _directive("connect-src 'self'", token_origin),
        "font-src 'self'",
        "base-uri 'none'",
        _directive("form-action 'self'", login_origin),
        "frame-ancestors 'none'",
    ]
    return {
        "Content-Security-Policy": "; ".join(policy),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _directive(base: str, origin: str) -> str:
    return f"{base} {origin}" if origin else base


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("https", "http") and parts.netloc else ""


def _file(path: Path, cache_control: str) -> dict[str, Any]:
    suffix = path.suffix
    content_type = TEXT_TYPES.get(suffix) or BINARY_TYPES[suffix]
    return _answer(200, content_type, _read(path), cache_control)


@cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


def _not_found() -> dict[str, Any]:
    return _answer(404, "text/plain; charset=utf-8", b"Not Found", NO_STORE)


def _answer(
    status: int, content_type: str, body: bytes, cache_control: str, extra: dict[str, str] | None = None
) -> dict[str, Any]:
    """A payload format 2.0 answer; binary bodies base64-encoded, as API Gateway expects."""
    headers = {
        **security_headers(os.environ),
        "Content-Type": content_type,
        "Cache-Control": cache_control,
        **(extra or {}),
    }
    binary = content_type in BINARY_TYPES.values()
    text = base64.b64encode(body).decode() if binary else body.decode()
    return {"statusCode": status, "headers": headers, "body": text, "isBase64Encoded": binary}
