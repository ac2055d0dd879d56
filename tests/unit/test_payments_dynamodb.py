"""The payments DynamoDB adapters on moto, with the tables exactly as template.yaml defines them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from chargenet.adapters.payments_dynamodb import DynamoPaymentStore, DynamoProcessedEvents
from chargenet.domain import payments as p
from chargenet.domain.payments import CheckoutMethod, IntentFacts, PaymentConfig, PaymentState
from tests.payment_fakes import T0

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
CONFIG = PaymentConfig(holds={"EUR": Decimal("50.00")})


@pytest.fixture(scope="module")
def table_definitions() -> dict[str, dict]:
    from chargenet_local.template import load

    resources = load(TEMPLATE, region="us-east-1", overrides={"IotDataEndpoint": "https://x"}).resources
    return {name: resources[name]["Properties"] for name in ("PaymentsTable", "PaymentEventsTable")}


@pytest.fixture
def tables(table_definitions, monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    # In a full run the integration stack's endpoint is still in the environment: mock_aws only
    # intercepts AWS's own endpoints.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name, props in table_definitions.items():
            kwargs = {key: props[key] for key in ("AttributeDefinitions", "KeySchema", "BillingMode")}
            if "GlobalSecondaryIndexes" in props:
                kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            client.create_table(TableName=name, **kwargs)
        yield


def new(payment_id: str = "pay1", tag: str = "PAY0000000000000001") -> p.Payment:
    return p.new_payment(
        CONFIG,
        payment_id=payment_id,
        token=f"token-of-{payment_id}",
        id_tag=tag,
        charger_id="CP-1",
        connector_id=1,
        currency="EUR",
        method=CheckoutMethod.CARD,
        now=T0,
    )


def test_a_payment_is_created_once_and_read_back_whole(tables) -> None:
    store = DynamoPaymentStore()
    assert store.create(new())
    assert not store.create(new())
    assert store.get("pay1") == new()
    assert store.get("nope") is None


def test_changes_are_conditional_on_the_version_they_were_computed_from(tables) -> None:
    store = DynamoPaymentStore()
    store.create(new())
    intent = IntentFacts("pi_1", "requires_capture", "EUR", 5000, 0)
    authorized = p.authorize(new(), intent, T0 + timedelta(seconds=5))
    assert store.save(authorized)
    assert not store.save(authorized)  # a second writer with the same base version loses
    cancelled = p.checkout_ended(new(), p.Reason.CHECKOUT_EXPIRED, T0)  # computed from the stale version 0
    assert not store.save(cancelled)
    assert store.get("pay1").state is PaymentState.AUTHORIZED


def test_lookups_by_token_digest_tag_and_state(tables) -> None:
    store = DynamoPaymentStore()
    store.create(new("pay1", "PAY0000000000000001"))
    store.create(new("pay2", "PAY0000000000000002"))
    store.save(p.checkout_ended(store.get("pay2"), p.Reason.CHECKOUT_EXPIRED, T0))
    assert store.by_token(p.token_digest("token-of-pay2")).payment_id == "pay2"
    assert store.by_token(p.token_digest("guess")) is None
    assert store.by_tag("PAY0000000000000001").payment_id == "pay1"
    assert [x.payment_id for x in store.in_states(p.OPEN_STATES)] == ["pay1"]
    assert [x.payment_id for x in store.in_states([PaymentState.CANCELLED])] == ["pay2"]


def test_processed_events_are_remembered(tables) -> None:
    events = DynamoProcessedEvents()
    assert not events.seen("evt_1")
    events.remember("evt_1", T0)
    assert events.seen("evt_1") and not events.seen("evt_2")
