"""The template's HTTP APIs on localhost: requests become API Gateway payload 2.0 events.

Each route of each `AWS::ApiGatewayV2::Api` (SAM `HttpApi` events) invokes its function
through the local Lambda runtime, synchronously, as API Gateway's Lambda proxy integration
does; the function's answer goes back as the HTTP response. Matching follows API Gateway:
the most specific route wins (literal segments over `{param}` over `{proxy+}`, a method
over ANY), then `$default`; no route is a 404.

Like API Gateway's HTTP APIs, the function gets the path URL-decoded, in `rawPath` (which
Powertools' resolver routes on) and `pathParameters` alike: `/pay/CP-1/%C2%B2` arrives as
`/pay/CP-1/²`, so the function's own input checks are tested on what the cloud sends. A body
over API Gateway's 10 MB payload quota is refused 413 without invoking anything.

A route whose event names a JWT authorizer (`Auth.Authorizer`, SAM `Auth.Authorizers.<name>.
JwtConfiguration`) is checked first, as API Gateway does (`JwtAuthorizer`): no valid token, 401
`{"message": "Unauthorized"}` and no invocation; a valid one, its claims in the event.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import jwt

from chargenet_local.httpserve import Handle, HttpServer, Request, Response, json_response
from chargenet_local.template import ACCOUNT_ID, HttpRouteSpec, JwtAuthorizerSpec

log = logging.getLogger("chargenet.local.api")

Invoke = Callable[[dict[str, Any]], Any]
# API Gateway passes these as text; every other body (form posts too) arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API quota: payload size


@dataclass(frozen=True)
class _Route:
    spec: HttpRouteSpec
    pattern: re.Pattern[str]
    rank: tuple[int, ...]  # smaller is more specific


def _compile(spec: HttpRouteSpec) -> _Route:
    if spec.path == "$default":
        return _Route(spec, re.compile(".*"), (3, 0, 0, 1))
    segments = spec.path.strip("/").split("/")
    parts, greedy, literals = [], 0, 0
    for segment in segments:
        if match := re.fullmatch(r"\{(\w+)\+\}", segment):
            parts.append(f"(?P<{match[1]}>.+)")
            greedy = 1
        elif match := re.fullmatch(r"\{(\w+)\}", segment):
            parts.append(f"(?P<{match[1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
            literals += 1
    pattern = re.compile("/" + "/".join(parts))
    return _Route(spec, pattern, (greedy, -literals, -len(segments), int(spec.method == "ANY")))


def match_route(routes: list[_Route], method: str, path: str) -> tuple[HttpRouteSpec, dict[str, str]] | None:
    candidates = []
    for route in routes:
        if route.spec.method not in ("ANY", method):
            continue
        if found := route.pattern.fullmatch(path):
            candidates.append((route.rank, route.spec, found.groupdict()))
    if not candidates:
        return None
    _, spec, params = min(candidates, key=lambda c: c[0])
    return spec, {name: unquote(value) for name, value in params.items()}


def build_event(
    spec: HttpRouteSpec, path_parameters: dict[str, str], request: Request, now: float
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends the function."""
    headers = {name: value for name, value in request.headers.items() if name != "cookie"}
    headers.setdefault("x-forwarded-for", request.client_ip)
    headers.setdefault("x-forwarded-proto", "http")
    cookies = [c.strip() for c in request.header("cookie").split(";") if c.strip()]
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    path = unquote(request.path)  # routed on encoded, delivered decoded (module docstring)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": spec.route_key,
        "rawPath": path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": spec.api,
            "domainName": request.header("host", "127.0.0.1"),
            "domainPrefix": request.header("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": request.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.client_ip,
                "userAgent": request.header("user-agent"),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": spec.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        event.update(_body(request))
    return event


def _body(request: Request) -> dict[str, Any]:
    if request.header("content-type").lower().startswith(_TEXT_TYPES):
        try:
            return {"body": request.body.decode(), "isBase64Encoded": False}
        except UnicodeDecodeError:
            pass
    return {"body": base64.b64encode(request.body).decode(), "isBase64Encoded": True}


def to_response(result: Any) -> Response:
    """The function's answer as API Gateway turns it into HTTP (payload format 2.0)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Without a statusCode API Gateway assumes 200 and a JSON body of the whole answer.
        body = result if isinstance(result, str) else json.dumps(result)
        return Response(200, body.encode(), [("Content-Type", "application/json")])
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    return Response(int(result["statusCode"]), body, headers)


# -------------------------------------------------------------------- JWT authorizer
JWKS_CACHE_S = 7200  # API Gateway caches an issuer's public keys up to two hours
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512")  # API Gateway supports RSA-based algorithms only
UNAUTHORIZED = {"message": "Unauthorized"}
FORBIDDEN = {"message": "Forbidden"}


class Unauthorized(Exception):
    """The token is missing or fails a check; the message says which (never the token)."""


class Forbidden(Exception):
    """A valid token without any of the route's scopes."""


def cloud_jwks_url(issuer: str) -> str:
    """Where API Gateway reads an issuer's keys (OIDC discovery's jwks_uri; Cognito's form)."""
    return issuer.rstrip("/") + "/.well-known/jwks.json"


def claims_as_strings(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them to the function: every value a string, a list as one string
    in brackets, space-separated (`cognito:groups` -> "[admin technician]")."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + " ".join(text(v) for v in value) + "]"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    return {name: text(value) for name, value in claims.items()}


class JwtAuthorizer:
    """API Gateway's HTTP API JWT authorizer, written by hand: moto does not run authorizers (its
    API Gateway v2 only stores them), and no library emulates one. It follows AWS's documented
    workflow (http-api-jwt-authorizer): the token from the identity source, alone or after
    "Bearer "; RSA signature by the issuer's key named in the header's `kid` (keys cached); `iss`
    equal to the configured issuer; `aud` in the audience, or `client_id` when there is no `aud`;
    `exp` in the future, `nbf` and `iat` not; the route's scopes when it names some. One addition
    for Cognito pools: `token_use` must be id or access (a refresh token is no bearer token).

    `jwks_url` maps an issuer to where its keys are served: the issuer's own URL in the cloud,
    moto's `<moto url>/<pool id>/.well-known/jwks.json` on the local stack.
    """

    def __init__(self, jwks_url: Callable[[str], str] = cloud_jwks_url) -> None:
        self._jwks_url = jwks_url
        self._clients: dict[str, jwt.PyJWKClient] = {}

    def authorize(self, spec: JwtAuthorizerSpec, request: Request) -> dict[str, Any]:
        """`requestContext.authorizer` for the event, or Unauthorized / Forbidden."""
        token = self._token(spec, request)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"malformed token: {exc}") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in _RSA_ALGORITHMS or not kid:
            raise Unauthorized(f"token not RSA-signed with a kid (alg {algorithm})")
        try:
            key = self._client(spec.issuer).get_signing_key(str(kid))
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[str(algorithm)],
                issuer=spec.issuer,
                options={"require": ["iss", "exp"], "verify_aud": False},
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise Unauthorized(str(exc)) from None
        self._check_claims(spec, claims)
        scopes = str(claims.get("scope", claims.get("scp", ""))).split()
        if spec.scopes and not set(spec.scopes) & set(scopes):
            raise Forbidden(f"none of the route's scopes {list(spec.scopes)}")
        return {"jwt": {"claims": claims_as_strings(claims), "scopes": scopes or None}}

    @staticmethod
    def _token(spec: JwtAuthorizerSpec, request: Request) -> str:
        prefix = "$request.header."
        if not spec.identity_source.startswith(prefix):
            raise ValueError(f"identity source {spec.identity_source!r}: only a header runs locally")
        value = request.header(spec.identity_source[len(prefix) :]).strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        if not value:
            raise Unauthorized("no token")
        return value

    @staticmethod
    def _check_claims(spec: JwtAuthorizerSpec, claims: dict[str, Any]) -> None:
        if "aud" in claims:  # API Gateway reads client_id only when there is no aud
            audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        else:
            audiences = [claims["client_id"]] if "client_id" in claims else []
        if spec.audience and not set(map(str, audiences)) & set(spec.audience):
            raise Unauthorized("audience (aud or client_id) not configured")
        iat = claims.get("iat")
        if isinstance(iat, (int, float)) and iat > time.time():
            raise Unauthorized("issued in the future")
        if claims.get("token_use", "id") not in ("id", "access"):
            raise Unauthorized(f"token_use {claims.get('token_use')!r}")

    def _client(self, issuer: str) -> jwt.PyJWKClient:
        if issuer not in self._clients:
            self._clients[issuer] = jwt.PyJWKClient(
                self._jwks_url(issuer), cache_keys=True, lifespan=JWKS_CACHE_S, timeout=5
            )
        return self._clients[issuer]


class ApiFront:
    def __init__(
        self,
        routes: list[HttpRouteSpec],
        functions: Mapping[str, Invoke],
        port: int = 0,
        authorizer: JwtAuthorizer | None = None,
    ) -> None:
        self._routes = [_compile(spec) for spec in routes]
        self._functions = functions
        self._authorizer = authorizer or JwtAuthorizer()
        # Paths the local stack serves itself on this origin, before any route: the console's
        # stand-in login (chargenet_local.console_login), Cognito's part in the cloud.
        self.local_pages: dict[str, Handle] = {}
        self._server = HttpServer(self.handle, port)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def handle(self, request: Request) -> Response:
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return json_response(413, {"message": "Request Entity Too Large"})
        if page := self.local_pages.get(request.path):
            return page(request)
        found = match_route(self._routes, request.method, request.path)
        if found is None and len(request.path) > 1 and request.path.endswith("/"):
            # API Gateway ignores a trailing slash when it matches (`/console/` takes `GET /console`);
            # the function still gets the path as sent.
            found = match_route(self._routes, request.method, request.path[:-1])
        if found is None:
            return json_response(404, {"message": "Not Found"})
        spec, path_parameters = found
        event = build_event(spec, path_parameters, request, time.time())
        if spec.authorizer is not None:
            try:
                event["requestContext"]["authorizer"] = self._authorizer.authorize(spec.authorizer, request)
            except Unauthorized as exc:
                log.info("%s: 401 (%s)", spec.route_key, exc)
                return json_response(401, UNAUTHORIZED)
            except Forbidden as exc:
                log.info("%s: 403 (%s)", spec.route_key, exc)
                return json_response(403, FORBIDDEN)
        try:
            result = self._functions[spec.function](event)
        except TimeoutError:  # the worker hung past the function's timeout
            return json_response(503, {"message": "Service Unavailable"})
        except Exception as exc:  # the function raised: API Gateway answers 500, the log says why
            log.error("%s failed: %s", spec.route_key, str(exc).splitlines()[0] if str(exc) else exc)
            return json_response(500, {"message": "Internal Server Error"})
        try:
            return to_response(result)
        except (TypeError, ValueError) as exc:  # a malformed answer is API Gateway's 500 too
            log.error("%s answered malformed: %s", spec.route_key, exc)
            return json_response(500, {"message": "Internal Server Error"})
