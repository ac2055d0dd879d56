"""The operator API over HTTP (JSON, standard library only): a bearer token on every request, the
server's errors as CliErrors, listings followed page by page (`{"items": [...], "next": cursor}`)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from chargenet_cli.errors import CliError
from chargenet_cli.operator_auth import NOT_SIGNED_IN

# API Gateway's JWT authorizer takes Cognito access tokens (their `client_id` matches the configured
# audience); id tokens carry `aud` instead. Which token the CLI sends, in one place:
TOKEN_KIND = "access_token"
TIMEOUT_S = 30.0
THROTTLED_RETRIES = 4  # 0.5 + 1 + 2 + 4 s at most, unless the API says how long


class OperatorApi:
    def __init__(
        self,
        base_url: str,
        token: Callable[[], str],
        timeout_s: float = TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token  # called per request: a refreshed token is used as soon as there is one
        self.timeout_s = timeout_s
        self._sleep = sleep

    def get(self, path: str, params: Mapping[str, Any] | None = None, action: str = "") -> Any:
        return self.request("GET", path, params=params, action=action)

    def post(self, path: str, body: Any = None, action: str = "") -> Any:
        return self.request("POST", path, body={} if body is None else body, action=action)

    def put(self, path: str, body: Any = None, action: str = "") -> Any:
        return self.request("PUT", path, body={} if body is None else body, action=action)

    def delete(self, path: str, action: str = "") -> Any:
        return self.request("DELETE", path, action=action)

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, limit: int | None = None, action: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following `next` until the server gives none."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if limit is not None:
            query["limit"] = limit
        while True:
            page = self.get(path, query, action=action)
            yield from page.get("items", [])
            cursor = page.get("next")
            if not cursor:
                return
            query = {**query, "next": cursor}

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        action: str = "",
    ) -> Any:
        url = self.base_url + "/" + path.lstrip("/")
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._token()}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        for attempt in range(THROTTLED_RETRIES + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    payload = response.read()
                return json.loads(payload) if payload else None
            except urllib.error.HTTPError as exc:
                # 429: API Gateway's route throttle refused the request before any function ran, so
                # sending it again (a POST too) cannot do anything twice.
                if exc.code == 429 and attempt < THROTTLED_RETRIES:
                    self._sleep(_retry_after(exc.headers.get("Retry-After"), attempt))
                    continue
                raise _error(exc.code, exc.read(), action or f"{method} {path}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                raise CliError(f"cannot reach the operator API at {self.base_url}: {reason}") from None
        raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(header: str | None, attempt: int) -> float:
    if header and header.strip().isdigit():
        return min(float(header), 30.0)
    return 0.5 * 2**attempt


def _error(status: int, payload: bytes, action: str) -> CliError:
    try:
        body = json.loads(payload) if payload else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or body.get("error") or "")
    if status == 401:
        return CliError(NOT_SIGNED_IN)
    if status == 403:
        return CliError(f"your role may not {action}" + (f": {message}" if message else ""))
    if status == 429:
        return CliError(
            f"the operator API kept refusing {action} as too many requests: try again in a minute"
        )
    if 400 <= status < 500:
        return CliError(message or f"the operator API refused {action} (HTTP {status})")
    return CliError(
        f"the operator API failed on {action} (HTTP {status})" + (f": {message}" if message else "")
    )


def for_profile(profile: Any, cognito: Any = None) -> OperatorApi:
    """A client for a profile, signed in with its cached (and, when due, refreshed) tokens."""
    from chargenet_cli import operator_auth

    def token() -> str:
        return str(getattr(operator_auth.current(profile, cognito=cognito), TOKEN_KIND))

    return OperatorApi(profile.api_url, token)
