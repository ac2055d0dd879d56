"""The payments HTTP API handler on API Gateway HTTP API v2 events, its services on fakes."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from chargenet.adapters.stripe_gateway import StripeWebhookVerifier
from chargenet.composition.payments import PaymentServices
from chargenet.domain.payments import CheckoutMethod
from tests.payment_fakes import PaymentWorld
from tests.unit.handler_modules import imported_handler
from tests.unit.test_payments_webhooks import SECRET, checkout_completed, sign

API_DIR = Path(__file__).resolve().parents[2] / "functions" / "payments_api"
PUBLIC_BASE_URL = "https://pay.chargenet.example"


@pytest.fixture(scope="module")
def api():
    yield from imported_handler("payments_api", "payment_pages")


@pytest.fixture
def world(api, monkeypatch) -> PaymentWorld:
    world = PaymentWorld()
    world.clock.now = world.clock.now.fromtimestamp(time.time(), world.clock.now.tzinfo)
    world.add_charger()
    services = PaymentServices(
        world.desk, world.settlements, world.authorizations, world.capture, world.monitor
    )
    hooks = world.webhooks(StripeWebhookVerifier(secret=lambda: SECRET))
    monkeypatch.setattr(api, "payment_services", lambda: services)
    monkeypatch.setattr(api, "provider_webhooks", lambda: hooks)
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    return world


class Context:
    function_name = "PaymentsApiFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:PaymentsApiFunction"
    aws_request_id = "req-1"


def call(api, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> dict:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "pay.example", "x-forwarded-proto": "https", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "pay.example",
            "domainPrefix": "pay",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "1.2.3.4",
                "userAgent": "t",
            },
            "requestId": "r",
            "routeKey": "$default",
            "stage": "$default",
            "time": "26/Nov/2026:09:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": body is not None,
        "body": base64.b64encode(body).decode() if body is not None else None,
    }
    return api.lambda_handler(event, Context())


def html(response: dict) -> str:
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert response["headers"]["Cache-Control"] == "no-store"
    return response["body"]


def test_the_pay_page_shows_price_hold_and_a_payment_button(api, world) -> None:
    response = call(api, "GET", "/pay/CP-1/1")
    body = html(response)
    assert response["statusCode"] == 200
    assert "0.50 EUR/kWh incl. 25% VAT" in body and "50.00 EUR" in body
    assert 'action="/pay/CP-1/1/checkout"' in body and 'value="card"' in body


def test_an_offline_charger_gets_a_clear_page_without_a_button(api, world) -> None:
    world.registry.chargers["CP-1"] = world.registry.chargers["CP-1"].model_copy(update={"online": False})
    body = html(call(api, "GET", "/pay/CP-1/1"))
    assert "offline" in body and "<form" not in body


def test_an_unknown_charger_is_a_404_page(api, world) -> None:
    assert call(api, "GET", "/pay/CP-404/1")["statusCode"] == 404


@pytest.mark.parametrize("path", ["/pay/CP-1/0", "/pay/CP-1/x", "/pay/CP%201/1", "/session/short"])
def test_bad_input_is_a_json_400(api, world, path) -> None:
    response = call(api, "GET", path)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"] == "bad_request"


def test_checkout_redirects_to_the_hosted_page(api, world) -> None:
    response = call(api, "POST", "/pay/CP-1/1/checkout", urlencode({"method": "card"}).encode())
    assert response["statusCode"] == 303
    assert response["headers"]["Location"] == "https://checkout.test/cs_1"
    assert world.gateway.requests[0].success_url.startswith(f"{PUBLIC_BASE_URL}/session/")


def test_stripes_redirects_come_from_configuration_never_from_the_requests_host(api, world) -> None:
    forged = {"host": "evil.example", "x-forwarded-proto": "http"}
    assert call(api, "POST", "/pay/CP-1/1/checkout", b"method=card", forged)["statusCode"] == 303
    [request] = world.gateway.requests
    assert request.success_url.startswith(f"{PUBLIC_BASE_URL}/session/")
    assert request.cancel_url == f"{PUBLIC_BASE_URL}/pay/CP-1/1"


def test_without_a_configured_url_redirects_go_to_the_apis_own_domain(api, world, monkeypatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "")
    forged = {"host": "evil.example", "x-forwarded-proto": "http"}
    assert call(api, "POST", "/pay/CP-1/1/checkout", b"method=card", forged)["statusCode"] == 303
    assert world.gateway.requests[0].success_url.startswith("https://pay.example/session/")


@pytest.fixture
def no_parsing(api, monkeypatch):
    """Fails the test if the handler parses a form."""

    def parse_qs(*args, **kwargs):
        raise AssertionError("the form was parsed")

    monkeypatch.setattr(api, "parse_qs", parse_qs)


def test_a_large_form_is_refused_413_before_it_is_decoded_or_parsed(api, world, no_parsing) -> None:
    body = b"method=card&x=" + b"a" * 4_400_000  # 4.4 MB: parsed, it took 1.7 s and 400 MB
    response = call(api, "POST", "/pay/CP-1/1/checkout", body)
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (413, "payload_too_large")
    assert world.payments.payments == {} and world.gateway.requests == []


def test_the_charger_and_connector_are_checked_before_the_form(api, world, no_parsing) -> None:
    unknown = call(api, "POST", "/pay/CP-404/1/checkout", b"method=cash")
    assert (unknown["statusCode"], json.loads(unknown["body"])["error"]) == (404, "not_found")
    world.set_status("CP-1", 1, "Charging")
    busy = call(api, "POST", "/pay/CP-1/1/checkout", b"method=cash")
    assert (busy["statusCode"], json.loads(busy["body"])["error"]) == (409, "not_payable")


@pytest.mark.parametrize(
    "body",
    [
        b"method=card&amount=1",
        b"method=card&method=swish",
        b"method",
        b"method=card&",
        "méthode=card".encode(),
    ],
)
def test_a_form_with_unknown_repeated_or_malformed_fields_is_refused(api, world, body) -> None:
    response = call(api, "POST", "/pay/CP-1/1/checkout", body)
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (400, "bad_request")
    assert world.payments.payments == {}


def test_too_many_checkouts_on_one_connector_are_refused_429(api, world) -> None:
    for _ in range(world.config.checkouts_per_connector):
        assert call(api, "POST", "/pay/CP-1/1/checkout", b"method=card")["statusCode"] == 303
    response = call(api, "POST", "/pay/CP-1/1/checkout", b"method=card")
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (429, "too_many_checkouts")


# API Gateway hands the function the path URL-decoded: /pay/CP-1/%C2%B2 arrives as /pay/CP-1/².
@pytest.mark.parametrize(
    # superscript two, Arabic-Indic one, bold one (all str.isdigit), a dot, full-width "CP"
    "path",
    ["/pay/CP-1/²", "/pay/CP-1/\u0661", "/pay/CP-1/\U0001d7cf", "/pay/CP.1/1", "/pay/\uff23\uff30-1/1"],
)
def test_path_parameters_are_ascii_only(api, world, path) -> None:
    for method, suffix in (("GET", ""), ("POST", "/checkout")):
        response = call(api, method, path + suffix, b"method=card" if method == "POST" else None)
        assert (response["statusCode"], json.loads(response["body"])["error"]) == (400, "bad_request")
    assert world.payments.payments == {}


def test_ids_with_a_trailing_newline_are_refused(api) -> None:
    # Powertools routes with `$`, which drops a final newline: the handler's own checks must not.
    with pytest.raises(api.BadRequest):
        api._connector("CP-1\n", "1")
    with pytest.raises(api.BadRequest):
        api._connector("CP-1", "1\n")
    with pytest.raises(api.BadRequest):
        api._token("t" * 43 + "\n")


def test_checkout_with_an_unknown_method_or_a_busy_connector_is_refused(api, world) -> None:
    assert call(api, "POST", "/pay/CP-1/1/checkout", b"method=cash")["statusCode"] == 400
    assert (
        call(api, "POST", "/pay/CP-1/1/checkout", b"method=swish")["statusCode"] == 409
    )  # not offered in EUR
    world.set_status("CP-1", 1, "Charging")
    response = call(api, "POST", "/pay/CP-1/1/checkout", b"method=card")
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (409, "not_payable")


def test_the_webhook_answers_400_json_to_a_bad_signature_and_200_to_a_good_one(api, world) -> None:
    payload = checkout_completed(world)
    bad = call(api, "POST", "/stripe/webhook", payload, {"stripe-signature": sign(payload, "whsec_wrong")})
    assert (bad["statusCode"], json.loads(bad["body"])["error"]) == (400, "invalid_signature")
    unsigned = call(api, "POST", "/stripe/webhook", payload)
    assert unsigned["statusCode"] == 400
    good = call(api, "POST", "/stripe/webhook", payload, {"Stripe-Signature": sign(payload)})
    assert (good["statusCode"], json.loads(good["body"])["outcome"]) == (200, "handled")


def test_the_session_page_by_token_and_the_stop_button(api, world) -> None:
    world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, "https://pay.example")
    token = world.gateway.requests[-1].success_url.rsplit("/", 1)[1]
    assert "Waiting for your payment" in html(call(api, "GET", f"/session/{token}"))
    assert call(api, "GET", "/session/" + "y" * 43)["statusCode"] == 404
    stop = call(api, "POST", f"/session/{token}/stop")
    assert (stop["statusCode"], json.loads(stop["body"])["error"]) == (409, "not_running")


def test_unknown_routes_are_json_404(api, world) -> None:
    response = call(api, "GET", "/admin")
    assert (response["statusCode"], json.loads(response["body"])["error"]) == (404, "not_found")


def test_every_payments_route_has_its_own_throttle_and_pages_cannot_spend_the_webhooks() -> None:
    from chargenet_local.template import load

    template = load(API_DIR.parents[1] / "template.yaml", region="us-east-1")
    [stage] = [
        resource["Properties"]
        for resource in template.resources.values()
        if resource["Type"] == "AWS::ApiGatewayV2::Stage"
    ]
    routes = {route.route_key for route in template.http_routes() if route.function == "PaymentsApiFunction"}
    limits = {
        key: (s["ThrottlingRateLimit"], s["ThrottlingBurstLimit"])
        for key, s in stage["RouteSettings"].items()
        if key in routes
    }
    assert set(limits) == routes  # none left on the stage's default
    assert (
        limits["POST /pay/{charger_id}/{connector_id}/checkout"]
        < limits["GET /pay/{charger_id}/{connector_id}"]
    )
    webhook = limits.pop("POST /stripe/webhook")
    assert all(webhook > other for other in limits.values())


def test_every_throttled_route_exists_and_operators_cannot_spend_stripe_faster_than_drivers() -> None:
    from chargenet_local.template import load

    template = load(API_DIR.parents[1] / "template.yaml", region="us-east-1")
    [stage] = [
        resource["Properties"]
        for resource in template.resources.values()
        if resource["Type"] == "AWS::ApiGatewayV2::Stage"
    ]
    settings = stage["RouteSettings"]
    # A route key the API does not have fails the deployment.
    assert set(settings) <= {route.route_key for route in template.http_routes()}
    checkout = settings["POST /pay/{charger_id}/{connector_id}/checkout"]["ThrottlingRateLimit"]
    for stripe_route in ("POST /ops/v1/refunds", "GET /ops/v1/reconcile", "POST /ops/v1/invoice-runs"):
        assert settings[stripe_route]["ThrottlingRateLimit"] <= checkout
    default = stage["DefaultRouteSettings"]["ThrottlingRateLimit"]
    assert settings["ANY /ops/v1/{proxy+}"]["ThrottlingRateLimit"] > default  # pages followed quickly
