"""The local stack's stand-in login (chargenet_local.console_login) against moto's Cognito: the
authorization code flow with PKCE S256 as Cognito runs it, and what it refuses."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest
from moto import mock_aws

from chargenet_local.console_login import (
    AUTHORIZE_PATH,
    CODE_LIFETIME_S,
    LOGOUT_PATH,
    NEW_PASSWORD_MESSAGE,
    TOKEN_PATH,
    ConsoleLogin,
    moto_authenticate,
    s256,
)
from chargenet_local.httpserve import Request, Response

CONSOLE = "http://127.0.0.1:4000/console/"
CALLBACK = CONSOLE + "callback"
PASSWORD = "Correct-horse-battery-9"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ConsoleLogin, str, Clock]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool = cognito.create_user_pool(PoolName="ops")["UserPool"]["Id"]
        client = cognito.create_user_pool_client(
            UserPoolId=pool, ClientName="console", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"]
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool, Username="admin", MessageAction="SUPPRESS")
        cognito.admin_set_user_password(UserPoolId=pool, Username="admin", Password=PASSWORD, Permanent=True)
        cognito.admin_create_user(
            UserPoolId=pool, Username="newbie", TemporaryPassword=PASSWORD, MessageAction="SUPPRESS"
        )
        clock = Clock()
        yield ConsoleLogin(client, CONSOLE, moto_authenticate(cognito, client), clock), client, clock


def authorize_query(client_id: str, challenge: str, /, **changes: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid email profile",
        "state": "st4te",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **changes,
    }
    return urlencode(params)


def request(method: str, path: str, query: str = "", form: dict[str, str] | None = None) -> Request:
    body = urlencode(form).encode() if form is not None else b""
    return Request(method, path, query, {"content-type": "application/x-www-form-urlencoded"}, body)


def header(response: Response, name: str) -> str:
    return next(value for key, value in response.headers if key.lower() == name.lower())


def sign_in(login: ConsoleLogin, client_id: str, verifier: str, username: str = "admin") -> Response:
    query = authorize_query(client_id, s256(verifier))
    return login.handle(request("POST", AUTHORIZE_PATH, query, {"username": username, "password": PASSWORD}))


def code_of(response: Response) -> str:
    assert response.status == 302
    location = urlsplit(header(response, "Location"))
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    params = parse_qs(location.query)
    assert params["state"] == ["st4te"]
    return params["code"][0]


def exchange(login: ConsoleLogin, client_id: str, code: str, verifier: str, /, **changes: str) -> Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        **changes,
    }
    return login.handle(request("POST", TOKEN_PATH, form=form))


def error_of(response: Response) -> str:
    assert response.status == 400
    assert header(response, "Content-Type") == "application/json"
    return str(json.loads(response.body)["error"])


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def test_the_form_has_no_script_and_its_own_policy(world: Any) -> None:
    login, client, _ = world
    response = login.handle(request("GET", AUTHORIZE_PATH, authorize_query(client, s256(new_verifier()))))
    assert response.status == 200
    page = response.body.decode()
    assert '<form method="post">' in page and "<script" not in page and "style" not in page
    assert "default-src 'none'" in header(response, "Content-Security-Policy")
    assert "form-action 'self'" in header(response, "Content-Security-Policy")


def test_code_and_pkce_give_moto_tokens_once(world: Any) -> None:
    login, client, _ = world
    verifier = new_verifier()
    code = code_of(sign_in(login, client, verifier))
    answer = exchange(login, client, code, verifier)
    assert answer.status == 200
    tokens = json.loads(answer.body)
    assert set(tokens) == {"access_token", "id_token", "expires_in", "token_type"}
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    assert header(answer, "Cache-Control") == "no-store"
    assert error_of(exchange(login, client, code, verifier)) == "invalid_grant"  # single use


@pytest.mark.parametrize(
    "changes",
    [
        {"code_verifier": "W" * 64},  # another verifier
        {"code_verifier": ""},
        {"redirect_uri": "http://127.0.0.1:4000/console/other"},
        {"client_id": "another-client"},
    ],
)
def test_a_code_is_bound_to_its_verifier_redirect_and_client(world: Any, changes: dict[str, str]) -> None:
    login, client, _ = world
    verifier = new_verifier()
    code = code_of(sign_in(login, client, verifier))
    assert error_of(exchange(login, client, code, verifier, **changes)) == "invalid_grant"
    # a failed exchange burns the code: the right one cannot follow a guess
    assert error_of(exchange(login, client, code, verifier)) == "invalid_grant"


def test_an_unknown_code_is_an_invalid_grant(world: Any) -> None:
    login, client, _ = world
    assert error_of(exchange(login, client, "made-up", new_verifier())) == "invalid_grant"


def test_a_code_expires_after_a_minute(world: Any) -> None:
    login, client, clock = world
    verifier = new_verifier()
    code = code_of(sign_in(login, client, verifier))
    clock.now += CODE_LIFETIME_S + 1
    assert error_of(exchange(login, client, code, verifier)) == "invalid_grant"


def test_only_the_authorization_code_grant(world: Any) -> None:
    login, client, _ = world
    answer = exchange(login, client, "x", new_verifier(), grant_type="refresh_token")
    assert error_of(answer) == "unsupported_grant_type"


def test_a_wrong_password_shows_the_form_again_escaped(world: Any) -> None:
    login, client, _ = world
    query = authorize_query(client, s256(new_verifier()))
    form = {"username": "<b>admin</b>", "password": "wrong"}
    response = login.handle(request("POST", AUTHORIZE_PATH, query, form))
    assert response.status == 400
    page = response.body.decode()
    assert "Incorrect user name or password." in page
    assert "&lt;b&gt;admin&lt;/b&gt;" in page and "<b>admin" not in page
    response = login.handle(
        request("POST", AUTHORIZE_PATH, query, {"username": "admin", "password": "wrong"})
    )
    assert response.status == 400


def test_an_account_with_a_temporary_password_is_sent_to_the_cli(world: Any) -> None:
    login, client, _ = world
    response = sign_in(login, client, new_verifier(), username="newbie")
    assert response.status == 400
    assert "chargenet login" in response.body.decode()
    assert NEW_PASSWORD_MESSAGE.split(":")[0] in response.body.decode()


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": "another-client"},
        {"redirect_uri": "https://evil.example/console/callback"},
        {"redirect_uri": CALLBACK + "/"},
        {"response_type": "token"},
        {"code_challenge_method": "plain"},
        {"code_challenge": ""},
        {"scope": "openid aws.cognito.signin.user.admin"},
    ],
)
def test_a_request_not_the_consoles_is_refused_on_a_page_never_redirected(
    world: Any, changes: dict[str, str]
) -> None:
    login, client, _ = world
    query = authorize_query(client, s256(new_verifier()), **changes)
    for method, form in (("GET", None), ("POST", {"username": "admin", "password": PASSWORD})):
        response = login.handle(request(method, AUTHORIZE_PATH, query, form))
        assert response.status == 400
        assert not any(key == "Location" for key, _ in response.headers)


def test_logout_goes_back_to_the_console_only(world: Any) -> None:
    login, client, _ = world
    back = login.handle(request("GET", LOGOUT_PATH, urlencode({"client_id": client, "logout_uri": CONSOLE})))
    assert (back.status, header(back, "Location")) == (302, CONSOLE)
    elsewhere = urlencode({"client_id": client, "logout_uri": "https://evil.example/"})
    assert login.handle(request("GET", LOGOUT_PATH, elsewhere)).status == 400


def test_s256_is_rfc_7636s_example() -> None:
    assert (
        s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
