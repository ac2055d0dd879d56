"""The operator console's serving (functions/console/app.py) and its template resources: every answer
carries the security headers, files are served by extension and never from outside static/assets,
config.json comes from the environment; the ConsoleCallback custom resource sets the client's URLs
and keeps every other setting."""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from chargenet_local.template import _CfnLoader
from tests.unit.test_iam_policies import _template

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT = {
    "CONSOLE_AUTHORIZE_URL": "https://ops.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
    "CONSOLE_TOKEN_URL": "https://ops.auth.eu-west-1.amazoncognito.com/oauth2/token",
    "CONSOLE_LOGOUT_URL": "https://ops.auth.eu-west-1.amazoncognito.com/logout",
    "CONSOLE_CLIENT_ID": "console-client",
    "CONSOLE_BASE_URL": "",
}
EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' https://ops.auth.eu-west-1.amazoncognito.com; font-src 'self'; base-uri 'none'; "
    "form-action 'self' https://ops.auth.eu-west-1.amazoncognito.com; frame-ancestors 'none'"
)
DOMAIN = "abc123.execute-api.eu-west-1.amazonaws.com"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return _load("console_app_under_test", ROOT / "functions" / "console" / "app.py")


def get(console: ModuleType, path: str, method: str = "GET") -> dict[str, Any]:
    event = {
        "version": "2.0",
        "rawPath": path,
        "requestContext": {"domainName": DOMAIN, "http": {"method": method, "path": path}},
        "headers": {"host": "evil.example"},
    }
    answer: dict[str, Any] = console.lambda_handler(event, None)
    return answer


def body(answer: dict[str, Any]) -> bytes:
    raw = answer["body"]
    return base64.b64decode(raw) if answer["isBase64Encoded"] else str(raw).encode()


def assert_security_headers(answer: dict[str, Any]) -> None:
    headers = answer["headers"]
    assert headers["Content-Security-Policy"] == EXPECTED_CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"]


# ------------------------------------------------------------------ serving
@pytest.mark.parametrize("path", ["/console", "/console/", "/console/callback"])
def test_the_app_answers_at_its_root_and_its_callback(console: ModuleType, path: str) -> None:
    answer = get(console, path)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert answer["headers"]["Cache-Control"] == "no-store"
    assert body(answer) == (ROOT / "functions/console/static/index.html").read_bytes()
    assert_security_headers(answer)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/console/assets/app.js", "text/javascript; charset=utf-8"),
        ("/console/assets/console.css", "text/css; charset=utf-8"),
        ("/console/assets/vendor/chart.umd.js", "text/javascript; charset=utf-8"),
    ],
)
def test_assets_are_served_with_their_type_and_a_short_cache(
    console: ModuleType, path: str, content_type: str
) -> None:
    answer = get(console, path)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == content_type
    assert answer["headers"]["Cache-Control"] == "public, max-age=300"
    assert body(answer) == (ROOT / "functions/console/static" / path.removeprefix("/console/")).read_bytes()
    assert_security_headers(answer)


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/../app.py",  # API Gateway hands the path decoded: %2e%2e arrives as ..
        "/console/assets/../../console/app.py",
        "/console/assets/%2e%2e/app.py",  # encoded twice by the client, decoded once
        "/console/assets/%252e%252e/app.py",
        "/console/assets/..%2fapp.py",
        "/console/assets/..\\app.py",
        "/console/assets//etc/passwd",
        "/console/assets/./app.js",
        "/console/assets/vendor/README.md",  # .md is not served
        "/console/assets/vendor/LICENSE.md",
        "/console/assets/.hidden.js",
        "/console/assets/",
        "/console/assets/views",  # a folder
        "/console/assets/nothing.js",
        "/console/index.html",  # only at /console/ and /console/callback
        "/console/app.py",
        "/console/static/index.html",
        "/console/callback/",
        "/console/config.json/",
        "/console/assets/app.js\0.css",
    ],
)
def test_traversal_unknown_and_unserved_paths_are_404_with_the_headers(
    console: ModuleType, path: str
) -> None:
    answer = get(console, path)
    assert answer["statusCode"] == 404
    assert body(answer) == b"Not Found"
    assert answer["headers"]["Cache-Control"] == "no-store"
    assert_security_headers(answer)


def test_a_symlink_out_of_the_assets_is_not_followed(
    console: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "secret.js").write_text("secret")
    (tmp_path / "assets" / "link.js").symlink_to(tmp_path / "secret.js")
    monkeypatch.setattr(console, "ASSETS", tmp_path / "assets")
    assert get(console, "/console/assets/link.js")["statusCode"] == 404


def test_binary_assets_are_base64_encoded(
    console: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    (tmp_path / "icon.png").write_bytes(png)
    monkeypatch.setattr(console, "ASSETS", tmp_path)
    answer = get(console, "/console/assets/icon.png")
    assert (answer["statusCode"], answer["headers"]["Content-Type"]) == (200, "image/png")
    assert answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == png


def test_head_has_the_headers_and_no_body(console: ModuleType) -> None:
    answer = get(console, "/console/assets/app.js", method="HEAD")
    assert answer["statusCode"] == 200
    assert answer["body"] == ""
    assert answer["headers"]["Content-Type"] == "text/javascript; charset=utf-8"
    assert_security_headers(answer)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_only_get_and_head(console: ModuleType, method: str) -> None:
    answer = get(console, "/console/", method=method)
    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "GET, HEAD"
    assert_security_headers(answer)


def test_config_comes_from_the_environment_and_the_apis_own_domain(console: ModuleType) -> None:
    answer = get(console, "/console/config.json")
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["headers"]["Cache-Control"] == "no-store"
    assert_security_headers(answer)
    assert json.loads(body(answer)) == {
        "api": "/ops/v1",
        "authorize_url": ENVIRONMENT["CONSOLE_AUTHORIZE_URL"],
        "token_url": ENVIRONMENT["CONSOLE_TOKEN_URL"],
        "logout_url": ENVIRONMENT["CONSOLE_LOGOUT_URL"],
        "client_id": "console-client",
        # requestContext.domainName, never the Host header the client wrote
        "redirect_uri": f"https://{DOMAIN}/console/callback",
        "scopes": "openid email profile",
    }


def test_config_names_the_public_base_url_when_set(
    console: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSOLE_BASE_URL", "https://charge.example.com/")
    config = json.loads(body(get(console, "/console/config.json")))
    assert config["redirect_uri"] == "https://charge.example.com/console/callback"


def test_the_handler_imports_no_aws_sdk() -> None:
    """Cold start: the standard library only."""
    tree = ast.parse((ROOT / "functions/console/app.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {str(node.module) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {"__future__"}


# ------------------------------------------------------------------ template
def _document() -> dict[str, Any]:
    return dict(yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader))


def client_settings_digest(document: dict[str, Any]) -> str:
    properties = document["Resources"]["OperatorConsoleClient"]["Properties"]
    return hashlib.sha256(json.dumps(properties, sort_keys=True).encode()).hexdigest()[:16]


def test_console_callback_reruns_whenever_the_console_client_changes() -> None:
    """A CloudFormation update of the client puts back its placeholder URLs; the digest makes the
    update reach ConsoleCallback too, which sets the real ones again. Changed the client? Copy the
    digest this test prints into ConsoleCallback's ClientSettingsDigest."""
    document = _document()
    expected = client_settings_digest(document)
    actual = document["Resources"]["ConsoleCallback"]["Properties"]["ClientSettingsDigest"]
    assert actual == expected, f"set ConsoleCallback's ClientSettingsDigest to {expected!r}"


def test_console_routes_are_public_and_the_authorizer_takes_both_clients() -> None:
    template = _template()
    routes = {r.route_key: r for r in template.http_routes() if r.function == "ConsoleFunction"}
    assert set(routes) == {"GET /console", "GET /console/{proxy+}"}
    assert all(route.authorizer is None for route in routes.values())
    [authorizer] = {r.authorizer for r in template.http_routes() if r.authorizer is not None}
    assert set(authorizer.audience) == {"OperatorUserPoolClient", "OperatorConsoleClient"}


def test_the_console_client_is_a_public_code_and_pkce_client() -> None:
    properties = _document()["Resources"]["OperatorConsoleClient"]["Properties"]
    assert properties["GenerateSecret"] is False
    assert properties["AllowedOAuthFlows"] == ["code"]
    assert properties["AllowedOAuthFlowsUserPoolClient"] is True
    assert set(properties["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    assert "ALLOW_USER_PASSWORD_AUTH" not in properties["ExplicitAuthFlows"]


# ------------------------------------------------------------ the custom resource
POOL_CLIENT_SETTINGS: dict[str, Any] = {
    "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"],
    "AllowedOAuthFlowsUserPoolClient": True,
    "AllowedOAuthFlows": ["code"],
    "AllowedOAuthScopes": ["openid", "email", "profile"],
    "SupportedIdentityProviders": ["COGNITO"],
    "CallbackURLs": ["https://set-by-console-callback.invalid/console/callback"],
    "LogoutURLs": ["https://set-by-console-callback.invalid/console/"],
    "AccessTokenValidity": 60,
    "IdTokenValidity": 60,
    "RefreshTokenValidity": 60,
    "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "minutes"},
    "PreventUserExistenceErrors": "ENABLED",
}


@pytest.fixture
def callback(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any, list[dict[str, Any]]]]:
    """The handler against moto's Cognito; CloudFormation's answers captured instead of PUT."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        module = _load("console_callback_under_test", ROOT / "functions" / "console_callback" / "app.py")
        cognito = boto3.client("cognito-idp")
        answers: list[dict[str, Any]] = []

        class Sent:
            status = 200

            def __enter__(self) -> Sent:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

        def urlopen(request: Any, timeout: float) -> Sent:
            assert request.get_method() == "PUT" and request.full_url == "https://cfn.example/response"
            answers.append(json.loads(request.data))
            return Sent()

        monkeypatch.setattr(module.urllib.request, "urlopen", urlopen)
        yield module, cognito, answers


def _event(request_type: str, pool: str, client: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": "https://cfn.example/response",
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/chargenet/1",
        "RequestId": "req-1",
        "LogicalResourceId": "ConsoleCallback",
        "ResourceType": "Custom::ConsoleCallback",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:cb",
            "UserPoolId": pool,
            "ClientId": client,
            "CallbackUrl": "https://api.example/console/callback",
            "LogoutUrl": "https://api.example/console/",
        },
    }


def _pool_and_client(cognito: Any) -> tuple[str, str]:
    pool = cognito.create_user_pool(PoolName="ops")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(UserPoolId=pool, ClientName="console", **POOL_CLIENT_SETTINGS)
    return pool, client["UserPoolClient"]["ClientId"]


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_set_the_urls_and_keep_every_other_setting(
    callback: Any, request_type: str
) -> None:
    module, cognito, answers = callback
    pool, client = _pool_and_client(cognito)
    before = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]

    module.lambda_handler(_event(request_type, pool, client), None)
    module.lambda_handler(_event(request_type, pool, client), None)  # idempotent

    after = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
    assert after["CallbackURLs"] == ["https://api.example/console/callback"]
    assert after["LogoutURLs"] == ["https://api.example/console/"]
    for key in POOL_CLIENT_SETTINGS.keys() - {"CallbackURLs", "LogoutURLs"}:
        assert after.get(key) == before.get(key), key
    assert [a["Status"] for a in answers] == ["SUCCESS", "SUCCESS"]
    assert answers[0]["PhysicalResourceId"] == f"{pool}/{client}/console-callback"
    assert (answers[0]["StackId"], answers[0]["RequestId"], answers[0]["LogicalResourceId"]) == (
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/chargenet/1",
        "req-1",
        "ConsoleCallback",
    )


def test_delete_does_nothing_and_succeeds(callback: Any) -> None:
    module, cognito, answers = callback
    pool, client = _pool_and_client(cognito)
    event = {**_event("Delete", pool, client), "PhysicalResourceId": "old-id"}
    module.lambda_handler(event, None)
    after = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
    assert after["CallbackURLs"] == POOL_CLIENT_SETTINGS["CallbackURLs"]
    assert [(a["Status"], a["PhysicalResourceId"]) for a in answers] == [("SUCCESS", "old-id")]


def test_a_failure_is_reported_failed_to_cloudformation(callback: Any) -> None:
    module, cognito, answers = callback
    pool, _ = _pool_and_client(cognito)
    module.lambda_handler(_event("Create", pool, "no-such-client"), None)
    [answer] = answers
    assert answer["Status"] == "FAILED"
    assert "ResourceNotFoundException" in answer["Reason"]


def test_the_local_front_takes_a_trailing_slash_as_api_gateway_does() -> None:
    """`/console/` reaches `GET /console` (its function sees the path as sent); other paths are unchanged."""
    from chargenet_local.api_front import ApiFront
    from chargenet_local.httpserve import Request
    from chargenet_local.template import HttpRouteSpec

    seen: list[str] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["rawPath"])
        return {"statusCode": 200, "body": ""}

    routes = [
        HttpRouteSpec("Api", "GET", "/console", "Fn"),
        HttpRouteSpec("Api", "GET", "/console/{proxy+}", "Fn"),
    ]
    front = ApiFront(routes, {"Fn": invoke})
    assert [front.handle(Request("GET", path, "", {})).status for path in ("/console/", "/console/a.js")] == [
        200,
        200,
    ]
    assert seen == ["/console/", "/console/a.js"]
    assert front.handle(Request("GET", "/other/", "", {})).status == 404
