"""The local HTTP API: routes from the SAM template, payload 2.0 events that Powertools' resolver reads."""

from __future__ import annotations

import base64
import importlib.util
import json
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chargenet_local.api_front import ApiFront, build_event, to_response
from chargenet_local.httpserve import Request
from chargenet_local.lambda_runtime import LambdaContext
from chargenet_local.template import HttpRouteSpec, load

TEMPLATE = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  StripeApiKeySecret:
    Type: AWS::SecretsManager::Secret
    Properties:
      Description: the Stripe secret key
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.11
      Environment:
        Variables:
          STRIPE_SECRET_ARN: !Ref StripeApiKeySecret
      Events:
        Pay:
          Type: HttpApi
          Properties: {Path: "/pay/{charger}/{connector}", Method: GET}
        Checkout:
          Type: HttpApi
          Properties: {Path: "/pay/{charger}/{connector}/checkout", Method: POST}
        Webhook:
          Type: HttpApi
          Properties: {Path: /stripe/webhook, Method: POST}
        Files:
          Type: HttpApi
          Properties: {Path: "/files/{proxy+}", Method: ANY}
        Fixed:
          Type: HttpApi
          Properties: {Path: /pay/special/1, Method: GET}
"""

# The product's style of handler: Powertools' resolver over the payload 2.0 event.
HANDLER = """
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

app = APIGatewayHttpResolver()


@app.get("/pay/<charger>/<connector>")
def pay(charger, connector):
    event = app.current_event
    return {"charger": charger, "connector": connector, "lang": event.get_query_string_value("lang"),
            "cookies": event.cookies}


@app.post("/pay/<charger>/<connector>/checkout")
def checkout(charger, connector):
    return Response(303, headers={"Location": f"/done/{charger}"}, cookies=["token=abc; HttpOnly"], body="")


@app.post("/stripe/webhook")
def webhook():
    event = app.current_event
    return {"body": event.body, "base64": event.is_base64_encoded, "signature": event.headers["stripe-signature"]}


@app.get("/pay/special/1")
def fixed():
    return {"route": "fixed"}


def handler(event, context):
    if event["rawPath"] == "/boom":
        raise RuntimeError("boom")
    return app.resolve(event, context)
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    (root / "fn").mkdir()
    (root / "fn" / "app.py").write_text(HANDLER)
    (root / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    return load(root / "template.yaml", region="us-east-1")


@pytest.fixture(scope="module")
def handler(template):
    spec = importlib.util.spec_from_file_location("api_front_test_app", Path(template.root) / "fn" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = LambdaContext(
        "ApiFunction", 128, "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction", "r", 1e12
    )
    return lambda event: module.handler(event, context)


@pytest.fixture
def front(template, handler):
    return ApiFront(template.http_routes(), {"ApiFunction": handler})


def request(method, path, query="", body=b"", **headers):
    return Request(method, path, query, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def test_routes_come_from_the_templates_http_api_events(template):
    routes = {(r.method, r.path): r.function for r in template.http_routes()}

    assert routes == {
        ("GET", "/pay/{charger}/{connector}"): "ApiFunction",
        ("POST", "/pay/{charger}/{connector}/checkout"): "ApiFunction",
        ("POST", "/stripe/webhook"): "ApiFunction",
        ("ANY", "/files/{proxy+}"): "ApiFunction",
        ("GET", "/pay/special/1"): "ApiFunction",
    }


def test_a_secret_reference_is_its_arn(template):
    arn = template.functions()["ApiFunction"].environment["STRIPE_SECRET_ARN"]

    assert arn == "arn:aws:secretsmanager:us-east-1:123456789012:secret:StripeApiKeySecret"


def test_path_parameters_arrive_url_decoded_as_api_gateway_sends_them(front):
    # SPEC section 10: the function must see "²", not "%C2%B2", to be tested on what the cloud sends.
    response = front.handle(request("GET", "/pay/CP%2D001/%C2%B2"))

    assert response.status == 200
    assert json.loads(response.body)["charger"] == "CP-001"
    assert json.loads(response.body)["connector"] == "²"


def test_a_body_over_api_gateways_payload_quota_is_refused_413_without_an_invocation(template):
    def never(event):
        raise AssertionError("the function was invoked")

    front = ApiFront(template.http_routes(), {"ApiFunction": never})
    response = front.handle(request("POST", "/stripe/webhook", body=b"x" * (10 * 1024 * 1024 + 1)))

    assert response.status == 413


def test_path_and_query_parameters_reach_the_resolver(front):
    response = front.handle(request("GET", "/pay/CP-001/2", "lang=sv", cookie="a=1; b=2"))

    assert response.status == 200
    assert json.loads(response.body) == {
        "charger": "CP-001",
        "connector": "2",
        "lang": "sv",
        "cookies": ["a=1", "b=2"],
    }


def test_a_literal_route_wins_over_parameters(front):
    assert json.loads(front.handle(request("GET", "/pay/special/1")).body) == {"route": "fixed"}


def test_redirects_and_cookies_come_back(front):
    response = front.handle(
        request(
            "POST", "/pay/CP-001/1/checkout", body=b"x=1", content_type="application/x-www-form-urlencoded"
        )
    )

    assert response.status == 303
    assert ("Location", "/done/CP-001") in response.headers
    assert ("Set-Cookie", "token=abc; HttpOnly") in response.headers


def test_a_json_body_arrives_as_text(front):
    body = b'{"type": "checkout.session.completed"}'
    response = front.handle(
        request(
            "POST",
            "/stripe/webhook",
            body=body,
            content_type="application/json; charset=utf-8",
            stripe_signature="t=1,v1=ab",
        )
    )

    assert json.loads(response.body) == {"body": body.decode(), "base64": False, "signature": "t=1,v1=ab"}


def test_form_posts_arrive_base64_encoded_as_api_gateway_sends_them():
    spec = HttpRouteSpec("Api", "POST", "/pay/{charger}/{connector}/checkout", "ApiFunction")
    form = request(
        "POST",
        "/pay/CP-1/1/checkout",
        body=b"email=a%40b.test",
        content_type="application/x-www-form-urlencoded",
    )

    event = build_event(spec, {"charger": "CP-1", "connector": "1"}, form, now=1_800_000_000.5)

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"email=a%40b.test"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /pay/{charger}/{connector}/checkout"
    assert event["rawPath"] == "/pay/CP-1/1/checkout"
    assert event["pathParameters"] == {"charger": "CP-1", "connector": "1"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["timeEpoch"] == 1_800_000_000_500
    assert event["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_unknown_routes_are_404_and_failures_500(front):
    assert front.handle(request("GET", "/nowhere")).status == 404
    assert front.handle(request("DELETE", "/stripe/webhook")).status == 404
    assert front.handle(request("GET", "/files/a/b")).status == 404  # the resolver has no such route


def test_a_function_error_is_a_500():
    spec = HttpRouteSpec("Api", "GET", "/boom", "Fn")

    def fail(event):
        raise RuntimeError("boom")

    response = ApiFront([spec], {"Fn": fail}).handle(request("GET", "/boom"))

    assert (response.status, json.loads(response.body)) == (500, {"message": "Internal Server Error"})


def test_an_answer_without_status_code_is_200_json():
    response = to_response({"ok": True})

    assert (response.status, json.loads(response.body)) == (200, {"ok": True})
    assert to_response({"statusCode": 204}).status == 204
    assert (
        to_response(
            {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
        ).body
        == b"\x00\x01"
    )


def test_served_over_http(front):
    front.start()
    try:
        with urllib.request.urlopen(f"{front.url}/pay/CP-9/1?lang=en") as reply:
            assert json.loads(reply.read())["charger"] == "CP-9"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{front.url}/missing")
        assert missing.value.code == 404
    finally:
        front.stop()
