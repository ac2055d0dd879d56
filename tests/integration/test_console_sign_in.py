"""The operator console's sign-in on the real local stack, over real HTTP: the console served by
the template's ConsoleFunction behind the API front, its config pointing at the stand-in login, the
authorization code flow with PKCE for the first admin, and the token accepted by the operator API's
JWT check like the CLI's."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from chargenet_local.console_login import s256
from chargenet_local.stack import FIRST_ADMIN, FIRST_ADMIN_PASSWORD_FILE, StackState


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The test follows each redirect itself, to check where it goes."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _call(url: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        return _OPENER.open(request, timeout=30)
    except urllib.error.HTTPError as answer:  # 3xx and 4xx: the answer itself is what is checked
        return answer


def _authorize_url(config: dict[str, str], state: str, verifier: str) -> str:
    """Where the console sends the browser to sign in."""
    query = {
        "response_type": "code",
        "client_id": config["client_id"],
        "redirect_uri": config["redirect_uri"],
        "scope": config["scopes"],
        "state": state,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    return f"{config['authorize_url']}?{urlencode(query)}"


@pytest.fixture(scope="module")
def config(stack: StackState) -> dict[str, str]:
    with _call(f"{stack.console_url}config.json") as answer:
        assert answer.status == 200
        return dict(json.load(answer))


def test_the_console_is_served_with_its_policy(stack: StackState) -> None:
    assert stack.console_url == f"{stack.api_url}/console/"
    with _call(stack.console_url) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cache-Control"] == "no-store"
        assert b'src="/console/assets/app.js"' in answer.read()
    with _call(f"{stack.console_url}assets/app.js") as answer:
        assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert _call(f"{stack.console_url}assets/%2e%2e/app.py").status == 404


def test_config_points_at_the_stand_in_login_and_the_consoles_client(
    stack: StackState, config: dict[str, str]
) -> None:
    assert config == {
        "api": "/ops/v1",
        "authorize_url": f"{stack.api_url}/local-login/oauth2/authorize",
        "token_url": f"{stack.api_url}/local-login/oauth2/token",
        "logout_url": f"{stack.api_url}/local-login/logout",
        "client_id": stack.console_client_id,
        "redirect_uri": f"{stack.console_url}callback",
        "scopes": "openid email profile",
    }
    assert stack.console_client_id and stack.console_client_id != stack.operator_client_id


def test_the_first_admin_signs_in_with_code_and_pkce_and_calls_the_operator_api(
    stack: StackState, config: dict[str, str]
) -> None:
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    authorize = _authorize_url(config, state, verifier)
    with _call(authorize) as form_page:
        assert form_page.status == 200 and b"<form" in form_page.read()

    password = (Path(stack.home) / FIRST_ADMIN_PASSWORD_FILE).read_text().strip()
    signed_in = _call(authorize, {"username": FIRST_ADMIN, "password": password})
    assert signed_in.status == 302
    location = urlsplit(signed_in.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == config["redirect_uri"]
    params = parse_qs(location.query)
    assert params["state"] == [state]
    with _call(signed_in.headers["Location"]) as callback_page:  # the console answers there
        assert callback_page.status == 200

    exchange = {
        "grant_type": "authorization_code",
        "client_id": config["client_id"],
        "code": params["code"][0],
        "redirect_uri": config["redirect_uri"],
        "code_verifier": verifier,
    }
    with _call(config["token_url"], exchange) as answer:
        tokens = json.load(answer)
    assert tokens["token_type"] == "Bearer"
    assert _call(config["token_url"], exchange).status == 400  # single use

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    with _call(f"{stack.api_url}{config['api']}/whoami", headers=bearer) as whoami:
        assert whoami.status == 200
        assert "admin" in json.load(whoami)["roles"]


def test_a_wrong_password_gets_no_code(stack: StackState, config: dict[str, str]) -> None:
    authorize = _authorize_url(config, "s", secrets.token_urlsafe(48))
    answer = _call(authorize, {"username": FIRST_ADMIN, "password": "not-the-password-1A!"})
    assert answer.status == 400
    assert "Location" not in answer.headers
