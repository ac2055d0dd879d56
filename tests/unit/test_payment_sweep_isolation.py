"""One payment whose check raises must not stop the sweep protecting every other payment.

The sweep, the handler's metric and log, and the template's alarm on that metric, evaluated the
way the local stack evaluates it (moto in process).
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from chargenet.composition.payments import PaymentServices
from chargenet.domain.payments import (
    CheckoutFacts,
    CheckoutMethod,
    PaymentProviderUnavailable,
    PaymentState,
    Reason,
)
from chargenet_local.alarms import AlarmEvaluator, create_alarms_and_dashboards
from chargenet_local.metrics import emf_metric_data, split_emf
from chargenet_local.template import STACK_NAME
from tests.payment_fakes import PaymentWorld
from tests.unit.test_local_alarms import REGION, alarms, aws, template  # noqa: F401 - fixtures
from tests.unit.test_payments_services import BASE, meter, start_session

SWEEP_DIR = Path(__file__).resolve().parents[2] / "functions" / "payment_sweep"
SWEEP_ALARM = f"{STACK_NAME}-sweep-payment-errors"


def stuck_checkout_then_session_past_its_cap(world: PaymentWorld) -> tuple[str, str]:
    """A checkout past its expiry whose provider lookup raises, listed before a paid session whose
    running cost has passed the cap: (the stuck payment, the charging payment)."""
    world.add_charger("CP-2")
    world.desk.open_checkout("CP-2", 1, CheckoutMethod.CARD, BASE)
    world.desk.open_checkout("CP-1", 1, CheckoutMethod.CARD, BASE)
    stuck, charging = world.payments.payments
    intent_id = world.gateway.pay(world.gateway.requests[-1])
    world.authorizations.money_secured(charging, intent_id, world.clock())
    start_session(world, charging)
    world.monitor.check(world.payments.get(charging))
    # 0.50 flat + 0.40/kWh, 25 % VAT: 89 kWh cost 45.13 incl. VAT, past the 45.00 cap
    meter(world, "42", (30, 40000), (60, 80000), (70, 89000))
    world.clock.advance(minutes=40)  # the checkout is past its expiry: the sweep asks the provider

    def lookup_fails(checkout_session_id: str) -> None:
        raise PaymentProviderUnavailable("APIConnectionError")

    world.gateway.checkout = lookup_fails  # type: ignore[method-assign]
    return stuck, charging


def test_a_payment_whose_lookup_raises_does_not_stop_the_sweep_for_the_others() -> None:
    world = PaymentWorld()
    world.add_charger()
    stuck, charging = stuck_checkout_then_session_past_its_cap(world)

    report = world.monitor.sweep()

    assert report.failed == [stuck]
    stops = [frame for frame in world.sent_frames() if frame[2] == "RemoteStopTransaction"]
    assert [frame[3] for frame in stops] == [{"transactionId": 42}]  # the cap still stopped the session
    assert world.payments.get(charging).stop_requested_at == world.clock()
    # The failed payment stays open, counted where it was listed, and is retried by the next sweep.
    assert report.states == {PaymentState.CHECKOUT_OPEN.value: 1, PaymentState.CHARGING.value: 1}
    del world.gateway.checkout  # the provider answers again: the checkout expired unpaid
    world.gateway.checkouts["cs_1"] = CheckoutFacts("cs_1", "expired", None)
    assert world.monitor.sweep().failed == []
    assert world.payments.get(stuck).reason is Reason.CHECKOUT_EXPIRED


@pytest.fixture
def sweep_handler(template, monkeypatch) -> Iterator[ModuleType]:  # noqa: F811 - the imported fixture
    for name, value in template.functions()["PaymentSweepFunction"].environment.items():
        if name.startswith("POWERTOOLS_"):
            monkeypatch.setenv(name, value)
    sys.path.insert(0, str(SWEEP_DIR))
    try:
        yield importlib.import_module("app")
    finally:
        sys.path.remove(str(SWEEP_DIR))
        sys.modules.pop("app", None)


class Context:
    function_name = "PaymentSweepFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:PaymentSweepFunction"
    aws_request_id = "req-1"


def test_a_failed_payment_is_logged_and_counted_and_the_template_alarm_fires(
    sweep_handler,
    template,  # noqa: F811 - the imported fixture
    aws,  # noqa: F811 - the imported fixture
    monkeypatch,
    capsys,
    caplog,
) -> None:
    world = PaymentWorld()
    world.add_charger()
    stuck, _ = stuck_checkout_then_session_past_its_cap(world)
    services = PaymentServices(
        world.desk, world.settlements, world.authorizations, world.capture, world.monitor
    )
    monkeypatch.setattr(sweep_handler, "payment_services", lambda: services)

    assert sweep_handler.lambda_handler({}, Context()) == {"checkout_open": 1, "charging": 1}

    [failure] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert failure.getMessage() == "payment check failed; retried by the next sweep"
    assert (failure.payment_id, failure.state, failure.error_type) == (
        stuck,
        "checkout_open",
        "PaymentProviderUnavailable",
    )
    assert "APIConnectionError" not in str(vars(failure))  # the type and the line, not the message
    documents, _ = split_emf(capsys.readouterr().out)
    data = [datum for document in documents for datum in emf_metric_data(document)]
    [(namespace, errors)] = [(ns, d) for ns, d in data if d["MetricName"] == "SweepPaymentErrors"]
    assert errors["Values"] == [1.0]

    create_alarms_and_dashboards(template, aws["cloudwatch"])
    now = time.time()
    errors["Timestamp"] = datetime.fromtimestamp(now, UTC)
    aws["cloudwatch"].put_metric_data(Namespace=namespace, MetricData=[errors])
    AlarmEvaluator(aws["cloudwatch"], aws["sns"], REGION).evaluate_all(now)
    assert alarms(aws)[SWEEP_ALARM]["StateValue"] == "ALARM"
