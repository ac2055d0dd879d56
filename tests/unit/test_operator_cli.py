"""Operator sign-in from the CLI: profiles, the 0600 token cache and its refresh, the operator API
client's errors over real HTTP, and `chargenet login` against moto's Cognito in-process."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chargenet_cli import operator_auth, operator_profile
from chargenet_cli.errors import CliError
from chargenet_cli.main import main
from chargenet_cli.operator_api import OperatorApi
from chargenet_cli.operator_auth import NOT_SIGNED_IN, Tokens
from chargenet_cli.operator_profile import Profile
from chargenet_local import stack as stack_mod
from chargenet_local.stack import StackState

PASSWORD = "Sup3r-secret!pw"


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("CHARGENET_CONFIG_DIR", str(folder))
    return folder


def _profile(**changes: str) -> Profile:
    fields = {
        "key": "test",
        "api_url": "http://127.0.0.1:9/ops/v1",
        "pool_id": "eu-north-1_abc",
        "client_id": "client-1",
        "region": "eu-north-1",
    }
    return Profile(**{**fields, **changes})


def _tokens(expires_at: float, client_id: str = "client-1") -> Tokens:
    return Tokens(
        id_token="id-1",
        access_token="access-1",
        refresh_token="refresh-1",
        expires_at=expires_at,
        client_id=client_id,
        username="alice",
    )


def _cognito() -> object:
    return boto3.client(
        "cognito-idp", region_name="eu-north-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


# --- the token cache -------------------------------------------------------------------------


def test_the_cache_is_0600_from_its_creation_whatever_the_umask(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[tuple[int, int]] = []
    real_open = os.open

    def recording_open(path: object, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        descriptor = real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]
        if flags & os.O_CREAT:
            created.append((mode, stat.S_IMODE(os.fstat(descriptor).st_mode)))
        return descriptor

    monkeypatch.setattr(os, "open", recording_open)
    tokens = _tokens(time.time() + 3600)
    previous = os.umask(0)
    try:
        path = operator_auth.cache_path(_profile())
        operator_auth.save(path, tokens)
    finally:
        os.umask(previous)
    assert created == [(0o600, 0o600)]  # created with the mode, not chmod-ed to it afterwards
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert operator_auth.load(path) == tokens
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_rewrite_keeps_0600_even_over_a_loose_file() -> None:
    path = operator_auth.cache_path(_profile())
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    path.chmod(0o644)
    operator_auth.save(path, _tokens(time.time() + 3600))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tokens_never_show_in_their_repr() -> None:
    shown = repr(_tokens(0))
    assert "access-1" not in shown and "refresh-1" not in shown and "id-1" not in shown


def test_expiry_math_refreshes_within_a_minute_of_expiry() -> None:
    tokens = _tokens(expires_at=1_000_000.0)
    assert not tokens.needs_refresh(now=1_000_000.0 - 61)
    assert tokens.needs_refresh(now=1_000_000.0 - 59)
    assert tokens.needs_refresh(now=1_000_000.0 + 5)


def test_fresh_tokens_are_used_as_they_are() -> None:
    profile = _profile()
    operator_auth.save(operator_auth.cache_path(profile), _tokens(time.time() + 3600))
    cognito = _cognito()
    with Stubber(cognito):  # no response queued: any call to Cognito would fail the test
        assert operator_auth.current(profile, cognito=cognito).access_token == "access-1"


def test_tokens_about_to_expire_are_refreshed_and_cached() -> None:
    profile = _profile()
    path = operator_auth.cache_path(profile)
    operator_auth.save(path, _tokens(time.time() + 30))
    cognito = _cognito()
    with Stubber(cognito) as stubbed:
        stubbed.add_response(
            "initiate_auth",
            {"AuthenticationResult": {"AccessToken": "access-2", "IdToken": "id-2", "ExpiresIn": 3600}},
            {
                "ClientId": "client-1",
                "AuthFlow": "REFRESH_TOKEN_AUTH",
                "AuthParameters": {"REFRESH_TOKEN": "refresh-1"},
            },
        )
        tokens = operator_auth.current(profile, cognito=cognito)
        stubbed.assert_no_pending_responses()
    assert (tokens.access_token, tokens.id_token, tokens.refresh_token) == ("access-2", "id-2", "refresh-1")
    assert 3500 < tokens.expires_at - time.time() <= 3600
    assert operator_auth.load(path) == tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_refused_refresh_signs_out() -> None:
    profile = _profile()
    path = operator_auth.cache_path(profile)
    operator_auth.save(path, _tokens(time.time() - 10))
    cognito = _cognito()
    with Stubber(cognito) as stubbed:
        stubbed.add_client_error("initiate_auth", "NotAuthorizedException", "Refresh Token has expired")
        with pytest.raises(CliError, match=NOT_SIGNED_IN):
            operator_auth.current(profile, cognito=cognito)
    assert not path.exists()


def test_no_cache_or_another_pools_cache_is_not_signed_in() -> None:
    profile = _profile()
    with pytest.raises(CliError, match=NOT_SIGNED_IN):
        operator_auth.current(profile)
    operator_auth.save(operator_auth.cache_path(profile), _tokens(time.time() + 3600, client_id="old"))
    with pytest.raises(CliError, match=NOT_SIGNED_IN):
        operator_auth.current(profile)


def _revocations(monkeypatch: pytest.MonkeyPatch, error: str | None = None, status: int = 400) -> Stubber:
    """Cognito's RevokeToken of the cached refresh token, stubbed (answered, or `error`)."""
    cognito = _cognito()
    stubber = Stubber(cognito)
    expected = {"Token": "refresh-1", "ClientId": "client-1"}
    if error:
        stubber.add_client_error(
            "revoke_token", error, "revocation is off", http_status_code=status, expected_params=expected
        )
    else:
        stubber.add_response("revoke_token", {}, expected)
    stubber.activate()
    monkeypatch.setattr(Profile, "cognito", lambda self: cognito)
    return stubber


def test_logout_signs_out_of_the_api_revokes_the_refresh_token_and_deletes_the_cache(
    server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _profile(api_url=server)
    monkeypatch.setattr(operator_profile, "resolve", lambda home, stack: profile)
    revocations = _revocations(monkeypatch)
    path = operator_auth.cache_path(profile)
    operator_auth.save(path, _tokens(time.time() + 3600))
    assert main(["logout"]) == 0
    assert not path.exists()
    assert ("POST", "/ops/v1/sign-out", "Bearer access-1", b"{}") in _Handler.seen
    revocations.assert_no_pending_responses()
    assert main(["logout"]) == 0
    assert capsys.readouterr().out.splitlines() == ["signed out", "not signed in"]


@pytest.mark.parametrize(("status", "said"), [(400, "revocation is off"), (500, "Cognito failed (HTTP 500)")])
def test_logout_says_what_failed_and_deletes_the_cache_anyway(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], status: int, said: str
) -> None:
    profile = _profile()  # its API does not answer
    monkeypatch.setattr(operator_profile, "resolve", lambda home, stack: profile)
    _revocations(monkeypatch, error="UnsupportedTokenTypeException", status=status)
    path = operator_auth.cache_path(profile)
    operator_auth.save(path, _tokens(time.time() + 3600))
    assert main(["logout"]) == 0
    assert not path.exists()
    api, cognito, done = capsys.readouterr().out.splitlines()
    assert api.startswith("the operator API did not record the sign-out (cannot reach")
    assert cognito == f"the refresh token was not revoked: {said}"
    assert done == "signed out"


# --- profiles ----------------------------------------------------------------------------------


class _StateWithOperators(StackState):
    """The state file's operator fields (H1 adds them to StackState; this works before and after)."""

    operator_pool_id: str = ""
    operator_client_id: str = ""
    operator_api_url: str = ""


def _local_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **operator: str) -> None:
    state = _StateWithOperators(
        pid=os.getpid(),
        status="ready",
        region="us-east-1",
        home=str(tmp_path),
        moto_url="http://127.0.0.1:5999",
        api_url="http://127.0.0.1:6001",
        **operator,
    )
    monkeypatch.setattr(stack_mod, "read_state", lambda home: state)


def test_the_local_profile_comes_from_the_stack_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _local_state(tmp_path, monkeypatch, operator_pool_id="us-east-1_pool", operator_client_id="cli-client")
    profile = operator_profile.resolve(tmp_path, None)
    assert profile.api_url == "http://127.0.0.1:6001/ops/v1"
    assert (profile.pool_id, profile.client_id, profile.region) == (
        "us-east-1_pool",
        "cli-client",
        "us-east-1",
    )
    assert profile.endpoint_url == "http://127.0.0.1:5999"
    assert profile.key.startswith("local-")
    assert operator_profile.resolve(tmp_path / "other", None).key != profile.key  # one cache per stack
    assert profile.cognito().meta.endpoint_url == "http://127.0.0.1:5999"


def test_a_local_stack_without_operator_sign_in_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _local_state(tmp_path, monkeypatch)
    with pytest.raises(CliError, match="no operator sign-in"):
        operator_profile.resolve(tmp_path, None)


def test_no_local_stack_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="chargenet local up"):
        operator_profile.local_profile(tmp_path)


def _cloudformation() -> object:
    return boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _stack(outputs: dict[str, str]) -> dict[str, object]:
    return {
        "Stacks": [
            {
                "StackName": "chargenet-prod",
                "CreationTime": "2026-01-01T00:00:00Z",
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
            }
        ]
    }


def test_a_deployed_stack_profile_comes_from_its_outputs() -> None:
    cloudformation = _cloudformation()
    outputs = {
        "OperatorApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/ops/v1/",
        "OperatorUserPoolId": "eu-west-1_XyZ",
        "OperatorUserPoolClientId": "5abc",
        "AlertsTopicArn": "arn:aws:sns:eu-west-1:1:alerts",
    }
    with Stubber(cloudformation) as stubbed:
        stubbed.add_response("describe_stacks", _stack(outputs), {"StackName": "chargenet-prod"})
        profile = operator_profile.stack_profile("chargenet-prod", cloudformation)
    assert profile == Profile(
        key="stack-chargenet-prod",
        api_url="https://abc.execute-api.eu-west-1.amazonaws.com/ops/v1",
        pool_id="eu-west-1_XyZ",
        client_id="5abc",
        region="eu-west-1",  # the pool's, not the caller's default region
    )
    assert profile.cognito().meta.region_name == "eu-west-1"


def test_a_stack_without_the_operator_outputs_or_no_stack_is_a_clear_error() -> None:
    cloudformation = _cloudformation()
    with Stubber(cloudformation) as stubbed:
        stubbed.add_response("describe_stacks", _stack({"OperatorApiUrl": "https://x/ops/v1"}))
        stubbed.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id nope does not exist", 400
        )
        with pytest.raises(CliError, match="OperatorUserPoolId, OperatorUserPoolClientId"):
            operator_profile.stack_profile("old", cloudformation)
        with pytest.raises(CliError, match="nope does not exist"):
            operator_profile.stack_profile("nope", cloudformation)


# --- the API client over real HTTP -----------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str | None, bytes]] = []
    responses: dict[str, tuple[int, object]] = {
        "/ops/v1/whoami": (
            200,
            {
                "subject": "s-1",
                "username": "alice",
                "email": None,
                "roles": ["admin"],
                "permissions": ["audit:read"],
            },
        ),
        "/ops/v1/unauthorized": (401, {"message": "Unauthorized"}),
        "/ops/v1/sign-out": (200, {"signed_out": True}),
        "/ops/v1/audit-denied": (403, {"error": "forbidden", "message": "requires audit:read"}),
        "/ops/v1/chargers/CP-9": (404, {"error": "not_found", "message": "no charger CP-9"}),
        "/ops/v1/faults/f1/ack": (409, {"error": "conflict", "message": "fault f1 is resolved"}),
        "/ops/v1/bad": (400, {"error": "bad_request", "message": "limit must be 1..100"}),
        "/ops/v1/broken": (502, "<html>bad gateway</html>"),
    }

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization"), body))
        if path == "/ops/v1/throttled":
            throttled = sum(1 for seen in type(self).seen if seen[1].startswith("/ops/v1/throttled"))
            status, payload = (
                (429, {"message": "Too Many Requests"}) if throttled <= 2 else (200, {"ok": True})
            )
        elif path == "/ops/v1/always-throttled":
            status, payload = 429, {"message": "Too Many Requests"}
        elif path == "/ops/v1/audit":
            pages = {"": ("c1", [{"n": 1}, {"n": 2}]), "c1": ("c2", [{"n": 3}]), "c2": (None, [{"n": 4}])}
            cursor = dict(p.split("=", 1) for p in query.split("&") if p).get("next", "")
            following, items = pages[cursor]
            status, payload = 200, {"items": items, "next": following}
        else:
            status, payload = self.responses.get(path, (404, {"error": "not_found", "message": "no route"}))
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/ops/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_requests_carry_the_bearer_token_and_json(server: str) -> None:
    api = OperatorApi(server + "/", lambda: "tok-1")
    assert api.get("/whoami")["username"] == "alice"
    with pytest.raises(CliError):
        api.post("faults/f1/ack", {"note": "on it"})
    assert [(m, p, a) for m, p, a, _ in _Handler.seen] == [
        ("GET", "/ops/v1/whoami", "Bearer tok-1"),
        ("POST", "/ops/v1/faults/f1/ack", "Bearer tok-1"),
    ]
    assert json.loads(_Handler.seen[1][3]) == {"note": "on it"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/unauthorized", "^not signed in or session expired: chargenet login$"),
        ("/audit-denied", "^your role may not read the audit trail: requires audit:read$"),
        ("/chargers/CP-9", "^no charger CP-9$"),
        ("/faults/f1/ack", "^fault f1 is resolved$"),
        ("/bad", "^limit must be 1..100$"),
        ("/broken", r"failed on read the audit trail \(HTTP 502\)"),
    ],
)
def test_server_errors_become_cli_errors(server: str, path: str, message: str) -> None:
    api = OperatorApi(server, lambda: "tok-1")
    with pytest.raises(CliError, match=message) as raised:
        api.get(path, action="read the audit trail")
    assert raised.value.exit_code != 0


def test_paginate_follows_next_until_there_is_none(server: str) -> None:
    api = OperatorApi(server, lambda: "tok-1")
    items = list(api.paginate("/audit", {"day": "2026-12-07", "ignored": None}, limit=2))
    assert items == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
    assert [p for _, p, _, _ in _Handler.seen] == [
        "/ops/v1/audit?day=2026-12-07&limit=2",
        "/ops/v1/audit?day=2026-12-07&limit=2&next=c1",
        "/ops/v1/audit?day=2026-12-07&limit=2&next=c2",
    ]


def test_a_throttled_request_is_sent_again_after_a_growing_pause(server: str) -> None:
    pauses: list[float] = []
    api = OperatorApi(server, lambda: "tok-1", sleep=pauses.append)
    assert api.post("/throttled", {"n": 1}) == {"ok": True}
    assert pauses == [0.5, 1.0]
    assert [seen[0] for seen in _Handler.seen] == ["POST"] * 3
    with pytest.raises(CliError, match="kept refusing read as too many requests"):
        api.get("/always-throttled", action="read")
    assert pauses[2:] == [0.5, 1.0, 2.0, 4.0]


def test_an_unreachable_api_is_a_clear_error() -> None:
    with pytest.raises(CliError, match=r"cannot reach the operator API at http://127\.0\.0\.1:9/ops/v1"):
        OperatorApi("http://127.0.0.1:9/ops/v1", lambda: "t", timeout_s=5).get("/whoami")


# --- login against moto's Cognito --------------------------------------------------------------


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[Profile]:
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(PoolName="operators", MfaConfiguration="OPTIONAL")["UserPool"][
            "Id"
        ]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="cli",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool_id, Username="alice", MessageAction="SUPPRESS")
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True
        )
        profile = _profile(pool_id=pool_id, client_id=client_id, region="us-east-1")
        monkeypatch.setattr(operator_profile, "resolve", lambda home, stack: profile)
        yield profile


def _login(monkeypatch: pytest.MonkeyPatch, password: str, *extra: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["login", "--username", "alice", "--password-stdin", *extra])


def test_login_caches_tokens_0600(
    pool: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _login(monkeypatch, PASSWORD) == 0
    output = capsys.readouterr()
    assert output.out.strip() == "signed in as alice"
    path = operator_auth.cache_path(pool)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = operator_auth.load(path)
    assert tokens is not None and tokens.client_id == pool.client_id
    assert tokens.refresh_token and 3000 < tokens.expires_at - time.time() <= 3600
    assert tokens.access_token not in output.out + output.err
    # The access token is what the API gets; a nearly expired one is refreshed through Cognito.
    operator_auth.save(path, dataclasses.replace(tokens, expires_at=time.time() + 10))
    renewed = operator_auth.current(pool)
    assert renewed.refresh_token == tokens.refresh_token
    assert renewed.expires_at > time.time() + 3000


@pytest.mark.parametrize("user", ["alice", "mallory"])
def test_a_wrong_password_or_unknown_user_is_a_message_and_exit_1(
    pool: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Wr0ng-guess!\n"))
    assert main(["login", "--username", user, "--password-stdin"]) == 1
    output = capsys.readouterr()
    assert output.err.strip() == "chargenet: error: sign-in failed: wrong user name or password"
    assert "Wr0ng-guess!" not in output.out + output.err
    assert not operator_auth.cache_path(pool).exists()


def test_the_pools_totp_challenge_is_answered_with_a_prompted_code(
    pool: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    cognito = pool.cognito()
    access = cognito.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    cognito.associate_software_token(AccessToken=access)
    cognito.verify_software_token(AccessToken=access, UserCode="123456")
    cognito.set_user_mfa_preference(
        AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "123456")
    assert _login(monkeypatch, PASSWORD) == 0
    assert asked == ["Authenticator code: "]
    assert operator_auth.load(operator_auth.cache_path(pool)) is not None


def test_whoami_and_audit_list_call_the_api_signed_in(
    pool: Profile, server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = dataclasses.replace(pool, api_url=server)
    monkeypatch.setattr(operator_profile, "resolve", lambda home, stack: profile)
    assert main(["whoami"]) == 1
    assert capsys.readouterr().err.strip() == f"chargenet: error: {NOT_SIGNED_IN}"
    assert _login(monkeypatch, PASSWORD) == 0
    capsys.readouterr()
    assert main(["whoami", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["roles"] == ["admin"]
    access = operator_auth.load(operator_auth.cache_path(profile)).access_token  # type: ignore[union-attr]
    assert _Handler.seen[-1][2] == f"Bearer {access}"
    assert main(["audit", "list", "--day", "2026-12-07", "--json"]) == 0
    assert [r["n"] for r in json.loads(capsys.readouterr().out)] == [1, 2, 3, 4]
    assert main(["audit", "list", "--day", "7.12.2026"]) == 2


def test_the_stack_option_reaches_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    monkeypatch.setattr(operator_profile, "resolve", lambda home, stack: seen.append(stack) or _profile())
    assert main(["--stack", "chargenet-prod", "logout"]) == 0
    assert seen == ["chargenet-prod"]


def test_a_stack_without_an_aws_region_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(CliError, match="stack chargenet-prod: You must specify a region"):
        operator_profile.stack_profile("chargenet-prod")


TEMPORARY = "Temp0rary-pass!"
CHOSEN = "Ch0sen-password!x"


def _invite(pool: Profile) -> None:
    pool.cognito().admin_create_user(
        UserPoolId=pool.pool_id, Username="bea", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS"
    )


def test_a_first_sign_in_sets_the_new_password_from_stdin(
    pool: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _invite(pool)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{TEMPORARY}\n{CHOSEN}\n"))
    assert main(["login", "--username", "bea", "--password-stdin", "--new-password-stdin"]) == 0
    output = capsys.readouterr()
    assert output.out.strip() == "signed in as bea" and CHOSEN not in output.out + output.err
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{CHOSEN}\n"))
    assert main(["login", "--username", "bea", "--password-stdin"]) == 0  # the new one is the password


def test_a_first_sign_in_asks_the_new_password_twice(
    pool: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _invite(pool)
    answers = iter([CHOSEN, "Different-pass1!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{TEMPORARY}\n"))
    assert main(["login", "--username", "bea", "--password-stdin"]) == 2
    assert "the new passwords differ" in capsys.readouterr().err
    assert not operator_auth.cache_path(pool).exists()
    answers = iter([CHOSEN, CHOSEN])
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{TEMPORARY}\n"))
    assert main(["login", "--username", "bea", "--password-stdin"]) == 0


class _Accounts:
    """The operator API's account routes, as `chargenet operator` calls them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []

    def post(self, path: str, body: object = None, action: str = "") -> object:
        self.calls.append(("POST", path, body))
        return {"username": "bea", "email": "bea@example.com", "temporary_password": TEMPORARY}

    def put(self, path: str, body: object = None, action: str = "") -> object:
        self.calls.append(("PUT", path, body))
        return {}

    def delete(self, path: str, action: str = "") -> object:
        self.calls.append(("DELETE", path, None))
        return {}

    def paginate(self, path: str, params: object = None, limit: object = None, action: str = "") -> object:
        self.calls.append(("GET", path, None))
        return iter([{"username": "bea", "email": "bea@example.com", "roles": ["viewer"], "enabled": True}])


def test_the_operator_commands_call_their_routes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chargenet_cli import operator_cmd

    accounts = _Accounts()
    monkeypatch.setattr(operator_cmd, "api", lambda args: accounts)
    assert main(["operator", "add", "bea", "--email", "bea@example.com", "--role", "finance"]) == 0
    assert TEMPORARY in capsys.readouterr().out  # the local stack's answer, printed once
    assert main(["operator", "set-role", "bea", "viewer"]) == 0
    assert main(["operator", "list", "--json"]) == 0
    capsys.readouterr()
    assert main(["operator", "list"]) == 0
    assert "bea@example.com" in capsys.readouterr().out
    assert main(["operator", "remove", "bea"]) == 0
    with pytest.raises(SystemExit):  # argparse: not a role
        main(["operator", "set-role", "bea", "root"])
    assert accounts.calls == [
        ("POST", "/operators", {"username": "bea", "email": "bea@example.com", "role": "finance"}),
        ("PUT", "/operators/bea/role", {"role": "viewer"}),
        ("GET", "/operators", None),
        ("GET", "/operators", None),
        ("DELETE", "/operators/bea", None),
    ]


def test_mfa_setup_adds_an_authenticator_that_every_later_sign_in_asks_for(
    pool: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _login(monkeypatch, PASSWORD) == 0
    codes = iter(["123456", "654321"])
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or next(codes))
    capsys.readouterr()
    assert main(["mfa", "setup"]) == 0
    output = capsys.readouterr()
    assert "otpauth://totp/chargenet%3Aalice?secret=" in output.err  # the secret: terminal only
    assert "otpauth" not in output.out
    assert _login(monkeypatch, PASSWORD) == 0
    assert asked == ["Authenticator code: ", "Authenticator code: "]


def test_mfa_setup_needs_a_signed_in_operator(pool: Profile, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mfa", "setup"]) == 1
    assert operator_auth.NOT_SIGNED_IN in capsys.readouterr().err


class _PoolRequiringMfa:
    """Cognito with MfaConfiguration ON for an operator without TOTP (moto never asks MFA_SETUP)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def initiate_auth(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("initiate_auth", kwargs))
        return {"ChallengeName": "MFA_SETUP", "Session": "s1"}

    def associate_software_token(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("associate_software_token", kwargs))
        return {"SecretCode": "JBSWY3DPEHPK3PXP", "Session": "s2"}

    def verify_software_token(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("verify_software_token", kwargs))
        return {"Status": "SUCCESS", "Session": "s3"}

    def respond_to_auth_challenge(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("respond_to_auth_challenge", kwargs))
        result = {"AccessToken": "a", "IdToken": "i", "RefreshToken": "r", "ExpiresIn": 3600}
        return {"AuthenticationResult": result}


def test_a_pool_requiring_mfa_has_the_operator_set_up_totp_while_signing_in() -> None:
    cognito = _PoolRequiringMfa()
    shown: list[operator_auth.TotpEnrolment] = []
    profile = _profile()
    tokens = operator_auth.login(
        profile, "alice", PASSWORD, lambda: " 123456 ", cognito=cognito, show_enrolment=shown.append
    )
    assert tokens.access_token == "a"
    assert [s.secret for s in shown] == ["JBSWY3DPEHPK3PXP"]
    assert "JBSWY3DPEHPK3PXP" not in repr(shown[0])
    names = [name for name, _ in cognito.calls]
    assert names == [
        "initiate_auth",
        "associate_software_token",
        "verify_software_token",
        "respond_to_auth_challenge",
    ]
    assert cognito.calls[1][1] == {"Session": "s1"}
    assert cognito.calls[2][1]["Session"] == "s2" and cognito.calls[2][1]["UserCode"] == "123456"
    assert cognito.calls[3][1]["ChallengeName"] == "MFA_SETUP" and cognito.calls[3][1]["Session"] == "s3"


def test_without_an_interactive_enrolment_a_pool_requiring_mfa_is_a_clear_error() -> None:
    with pytest.raises(CliError, match="requires an authenticator app"):
        operator_auth.login(_profile(), "alice", PASSWORD, lambda: "1", cognito=_PoolRequiringMfa())
