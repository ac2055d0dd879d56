"""The local HTTP front's JWT authorizer (API Gateway's, by hand: moto runs none).

Tokens come from moto's Cognito in-process (real pool tokens: another pool's verifies against the same
key, so issuer and audience are what refuse it) and from a test RSA key (expired, not yet valid,
tampered, wrong token_use). Each refused request is 401 `{"message": "Unauthorized"}` and the function
is never invoked; an accepted one carries the claims as API Gateway passes them (strings, groups as
"[admin technician]").
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import moto.cognitoidp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws

from chargenet_local.api_front import ApiFront, JwtAuthorizer, claims_as_strings
from chargenet_local.httpserve import HttpServer, Request, json_response
from chargenet_local.template import HttpRouteSpec, JwtAuthorizerSpec, load

REGION = "us-east-1"
PASSWORD = "Correct-Horse-Battery-9"
TEST_KID = "test-key"


# ------------------------------------------------------------------ keys and JWKS
@pytest.fixture(scope="module")
def test_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_server(test_key: rsa.RSAPrivateKey) -> Iterator[tuple[str, list[str]]]:
    """Serves moto's pool keys (kid "dummy") and the test key, as an issuer's jwks_uri does; records
    each fetch (the keys are cached)."""
    moto_keys = json.loads(
        gzip.decompress(
            (Path(moto.cognitoidp.__file__).parent / "resources" / "jwks-public.json.gz").read_bytes()
        )
    )["keys"]
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(test_key.public_key()))
    keys = {"keys": [*moto_keys, {**public, "kid": TEST_KID, "alg": "RS256", "use": "sig"}]}
    fetched: list[str] = []

    def handle(request: Request) -> Any:
        fetched.append(request.path)
        return json_response(200, keys)

    server = HttpServer(handle)
    server.start()
    yield server.url, fetched
    server.stop()


# ------------------------------------------------------------------ Cognito pools in moto
@pytest.fixture(scope="module")
def cognito() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cognito-idp", region_name=REGION)


def _pool(cognito: Any, name: str) -> tuple[str, str]:
    pool = cognito.create_user_pool(PoolName=name)["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="cli", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    for group in ("admin", "technician"):
        cognito.create_group(UserPoolId=pool, GroupName=group)
    cognito.admin_create_user(UserPoolId=pool, Username="ada", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool, Username="ada", Password=PASSWORD, Permanent=True)
    for group in ("admin", "technician"):
        cognito.admin_add_user_to_group(UserPoolId=pool, Username="ada", GroupName=group)
    return pool, client


def _tokens(cognito: Any, client: str) -> dict[str, str]:
    answer = cognito.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada", "PASSWORD": PASSWORD},
    )
    return dict(answer["AuthenticationResult"])


@pytest.fixture(scope="module")
def pools(cognito: Any) -> dict[str, tuple[str, str]]:
    return {"ops": _pool(cognito, "ops"), "other": _pool(cognito, "other")}


def _issuer(pool: str) -> str:
    return f"https://cognito-idp.{REGION}.amazonaws.com/{pool}"


# ------------------------------------------------------------------ the front
class Front:
    def __init__(self, issuer: str, audience: str, jwks_url: str) -> None:
        self.events: list[dict[str, Any]] = []
        authorizer = JwtAuthorizerSpec("OperatorJwt", issuer, (audience,), "$request.header.Authorization")
        routes = [
            HttpRouteSpec("Api", "ANY", "/ops/v1/{proxy+}", "OperatorApiFunction", authorizer),
            HttpRouteSpec("Api", "GET", "/pay/{charger}", "PaymentsApiFunction"),
        ]
        functions = {"OperatorApiFunction": self._invoke, "PaymentsApiFunction": self._invoke}
        self.front = ApiFront(routes, functions, authorizer=JwtAuthorizer(lambda _issuer: jwks_url))

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "body": "{}"}

    def get(self, path: str, authorization: str | None = None) -> tuple[int, Any]:
        headers = {"authorization": authorization} if authorization is not None else {}
        response = self.front.handle(Request("GET", path, "", headers))
        return response.status, json.loads(response.body)


@pytest.fixture
def front(pools: dict[str, tuple[str, str]], jwks_server: tuple[str, list[str]]) -> Front:
    pool, client = pools["ops"]
    return Front(_issuer(pool), client, jwks_server[0] + f"/{pool}/.well-known/jwks.json")


def _unauthorized(front: Front, authorization: str | None) -> None:
    assert front.get("/ops/v1/chargers", authorization) == (401, {"message": "Unauthorized"})
    assert front.events == []  # the function never ran


def _signed(test_key: rsa.RSAPrivateKey, claims: dict[str, Any], kid: str = TEST_KID) -> str:
    return jwt.encode(claims, test_key, algorithm="RS256", headers={"kid": kid})


def _claims(pools: dict[str, tuple[str, str]], **changes: Any) -> dict[str, Any]:
    pool, client = pools["ops"]
    now = int(time.time())
    claims = {
        "sub": "0b1c",
        "iss": _issuer(pool),
        "client_id": client,
        "token_use": "access",
        "username": "ada",
        "cognito:groups": ["admin"],
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


# ------------------------------------------------------------------ refused: 401, nothing invoked
def test_no_token(front: Front) -> None:
    _unauthorized(front, None)
    _unauthorized(front, "")
    _unauthorized(front, "Bearer ")


def test_malformed_token(front: Front) -> None:
    _unauthorized(front, "Bearer not.a.jwt")
    _unauthorized(front, "Basic YWRhOnB3")


def test_expired(front: Front, test_key: rsa.RSAPrivateKey, pools: dict[str, tuple[str, str]]) -> None:
    now = int(time.time())
    _unauthorized(front, "Bearer " + _signed(test_key, _claims(pools, iat=now - 7200, exp=now - 3600)))


def test_not_yet_valid(front: Front, test_key: rsa.RSAPrivateKey, pools: dict[str, tuple[str, str]]) -> None:
    now = int(time.time())
    _unauthorized(front, _signed(test_key, _claims(pools, nbf=now + 600)))
    _unauthorized(front, _signed(test_key, _claims(pools, iat=now + 600)))


def test_without_exp(front: Front, test_key: rsa.RSAPrivateKey, pools: dict[str, tuple[str, str]]) -> None:
    _unauthorized(front, _signed(test_key, _claims(pools, exp=None)))


def test_another_pool(front: Front, cognito: Any, pools: dict[str, tuple[str, str]]) -> None:
    """moto signs every pool with the same key: the signature verifies, the issuer does not."""
    tokens = _tokens(cognito, pools["other"][1])
    _unauthorized(front, "Bearer " + tokens["AccessToken"])
    _unauthorized(front, "Bearer " + tokens["IdToken"])


def test_wrong_audience(front: Front, cognito: Any, pools: dict[str, tuple[str, str]]) -> None:
    """Same pool, another app client: neither its id token's aud nor its access token's client_id."""
    pool, _ = pools["ops"]
    other_client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    tokens = _tokens(cognito, other_client)
    _unauthorized(front, tokens["AccessToken"])
    _unauthorized(front, tokens["IdToken"])


def test_aud_wins_over_client_id(
    front: Front, test_key: rsa.RSAPrivateKey, pools: dict[str, tuple[str, str]]
) -> None:
    """API Gateway reads client_id only when there is no aud."""
    _unauthorized(front, _signed(test_key, _claims(pools, aud="someone-else")))


def test_tampered_signature(front: Front, cognito: Any, pools: dict[str, tuple[str, str]]) -> None:
    token = _tokens(cognito, pools["ops"][1])["AccessToken"]
    header, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["cognito:groups"] = ["admin", "finance"]  # a viewer promoting themself
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    _unauthorized(front, f"Bearer {header}.{forged}.{signature}")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    _unauthorized(front, f"Bearer {header}.{payload}.{flipped}")


def test_unknown_key_or_not_rsa(
    front: Front, test_key: rsa.RSAPrivateKey, pools: dict[str, tuple[str, str]]
) -> None:
    _unauthorized(front, _signed(test_key, _claims(pools), kid="nobody"))
    _unauthorized(
        front, jwt.encode(_claims(pools), "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256")
    )
    _unauthorized(front, jwt.encode(_claims(pools), None, algorithm="none"))


def test_wrong_token_use(
    front: Front, test_key: rsa.RSAPrivateKey, pools: dict[str, tuple[str, str]]
) -> None:
    _unauthorized(front, _signed(test_key, _claims(pools, token_use="refresh")))


# ------------------------------------------------------------------ accepted
def _groups(claims: dict[str, str]) -> set[str]:
    """One string as API Gateway sends it, "[admin technician]" (moto lists groups in any order)."""
    groups = claims["cognito:groups"]
    assert groups.startswith("[") and groups.endswith("]") and "," not in groups and '"' not in groups
    return set(groups[1:-1].split())


def test_access_token_reaches_the_function_with_its_claims(
    front: Front, cognito: Any, pools: dict[str, tuple[str, str]]
) -> None:
    token = _tokens(cognito, pools["ops"][1])["AccessToken"]
    assert front.get("/ops/v1/chargers", f"Bearer {token}")[0] == 200
    [event] = front.events
    authorizer = event["requestContext"]["authorizer"]["jwt"]
    claims = authorizer["claims"]
    assert all(isinstance(value, str) for value in claims.values())
    assert _groups(claims) == {"admin", "technician"}
    assert claims["username"] == "ada" and claims["token_use"] == "access"
    assert claims["client_id"] == pools["ops"][1] and claims["iss"] == _issuer(pools["ops"][0])
    assert claims["exp"].isdigit()
    assert claims["iat"].isdigit()  # what the operator edge compares with a sign-out
    assert "scopes" in authorizer


def test_raw_id_token_without_bearer(front: Front, cognito: Any, pools: dict[str, tuple[str, str]]) -> None:
    token = _tokens(cognito, pools["ops"][1])["IdToken"]
    assert front.get("/ops/v1/me", token)[0] == 200
    claims = front.events[0]["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["token_use"] == "id" and claims["aud"] == pools["ops"][1]
    assert _groups(claims) == {"admin", "technician"}


def test_keys_are_cached(
    front: Front, cognito: Any, pools: dict[str, tuple[str, str]], jwks_server: Any
) -> None:
    _, fetched = jwks_server
    token = _tokens(cognito, pools["ops"][1])["AccessToken"]
    before = len(fetched)
    for _ in range(3):
        assert front.get("/ops/v1/chargers", token)[0] == 200
    assert len(fetched) - before <= 1


def test_public_routes_need_no_token(front: Front) -> None:
    assert front.get("/pay/CP-1") == (200, {})
    assert "authorizer" not in front.events[0]["requestContext"]


def test_scopes_when_the_route_names_some(
    pools: dict[str, tuple[str, str]], jwks_server: tuple[str, list[str]], test_key: rsa.RSAPrivateKey
) -> None:
    pool, client = pools["ops"]
    spec = JwtAuthorizerSpec(
        "OperatorJwt", _issuer(pool), (client,), "$request.header.Authorization", ("ops/write",)
    )
    authorizer = JwtAuthorizer(lambda _issuer: jwks_server[0] + "/jwks.json")
    front = ApiFront(
        [HttpRouteSpec("Api", "POST", "/w", "F", spec)],
        {"F": lambda e: {"statusCode": 204}},
        authorizer=authorizer,
    )
    without = front.handle(Request("POST", "/w", "", {"authorization": _signed(test_key, _claims(pools))}))
    assert (without.status, json.loads(without.body)) == (403, {"message": "Forbidden"})
    scoped = _signed(test_key, _claims(pools, scope="ops/read ops/write"))
    assert front.handle(Request("POST", "/w", "", {"authorization": scoped})).status == 204


def test_claims_as_strings() -> None:
    assert claims_as_strings({"a": ["x", "y"], "b": True, "c": 3, "d": "s", "e": {"k": 1}}) == {
        "a": "[x y]",
        "b": "true",
        "c": "3",
        "d": "s",
        "e": '{"k":1}',
    }


# ------------------------------------------------------------------ the template's wiring
def test_template_routes_name_the_operator_authorizer() -> None:
    """Operator routes carry OperatorJwt with the pool's issuer and the clients (CLI, console) as
    audience; the drivers' pages, Stripe's webhook and the console's files stay public."""
    template = load(Path(__file__).parents[2] / "template.yaml", region=REGION)
    template.physical_ids.update(
        {
            "OperatorUserPool": "us-east-1_pool",
            "OperatorUserPoolClient": "client1",
            "OperatorConsoleClient": "client2",
        }
    )
    routes = template.http_routes()
    for route in routes:
        if route.path.startswith("/ops/"):
            assert route.authorizer == JwtAuthorizerSpec(
                "OperatorJwt",
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool",
                ("client1", "client2"),
                "$request.header.Authorization",
            )
        else:
            assert route.authorizer is None, route.route_key
    assert any(route.path.startswith("/pay/") for route in routes)


def test_a_deployment_can_have_its_first_admin_invited_by_email_without_a_password_in_it() -> None:
    template = load(Path(__file__).parents[2] / "template.yaml", region=REGION)
    [user] = template.of_type("AWS::Cognito::UserPoolUser").values()
    [attachment] = template.of_type("AWS::Cognito::UserPoolUserToGroupAttachment").values()
    assert user["Condition"] == attachment["Condition"] == "HasFirstAdmin"
    properties = user["Properties"]
    assert properties["DesiredDeliveryMediums"] == ["EMAIL"]
    assert "TemporaryPassword" not in properties and "MessageAction" not in properties
    assert {"Name": "email", "Value": {"Ref": "FirstAdminEmail"}} in properties["UserAttributes"]
    assert attachment["Properties"]["GroupName"] == {"Ref": "OperatorAdminGroup"}
    assert attachment["Properties"]["Username"] == {"Ref": "FirstOperatorAdmin"}
