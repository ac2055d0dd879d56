"""The chaos run's invariant checker (bench.chaos_invariants) catches each kind of violation,
and its injector (chargenet_local.fault_injection) breaks DynamoDB calls as it says."""

import dataclasses
import os
from pathlib import Path

import pytest

from bench import chaos_invariants


@pytest.fixture(scope="module")
def inv():
    return chaos_invariants


@pytest.fixture
def clean(inv):
    """A run where everything held: two sessions billed, one in review (a 2.0.1 charger's, whose
    transaction the backend numbered 13), poison and alerts as expected."""
    return inv.Facts(
        delivered=[
            inv.DeliveredSession("CP-1", 1, "11", 12_000),
            inv.DeliveredSession("CP-1", 2, "12", 8_000),
            inv.DeliveredSession("CP-2", 1, "13", 5_000, "ocpp2.0.1", "tx-13"),
        ],
        failed=[inv.FailedSession("CP-3", 1, "Authorize dropped")],
        cdrs=[
            inv.BilledSession("C11", "11", "CP-1", 12_000, 1_504),
            inv.BilledSession("C12", "12", "CP-1", 8_000, 1_036),
        ],
        review_session_ids=frozenset({"13"}),
        malformed_sent=["bad-0", "bad-1"],
        malformed_answered=frozenset({"bad-0", "bad-1"}),
        poison_sent=["poison-0"],
        dead_lettered=frozenset({"poison-0"}),
        alerts_expected=["CP-9/GroundFailure"],
        alerts_received=["CP-9/GroundFailure"],
        paid=[paid(inv, "11", received=1_504)],
        subscriber_sessions=frozenset({"12"}),
        usage_lines=[inv.UsageLine("ii_1", "C12", 1_036)],
        versions_spoken={"CP-1": "ocpp1.6", "CP-2": "ocpp2.0.1", "CP-9": "ocpp1.6"},
        # CP-9's record is from before versions were kept: 1.6.
        versions_recorded={"CP-1": "ocpp1.6", "CP-2": "ocpp2.0.1", "CP-9": None},
    )


def paid(inv, session_id, received, charges=None, hold=5_000, refunded=0, intent="pi_1"):
    """A driver's payment of a session as Stripe holds it: a hold of 50.00, captured once."""
    return inv.PaidSession(
        session_id=session_id,
        payment_id=f"pay-{session_id}",
        intent_id=intent,
        hold_minor=hold,
        minimum_minor=50,
        received_minor=received,
        refunded_minor=refunded,
        captured_charges=[received] if charges is None else charges,
    )


def violations(inv, facts):
    return {v.name: v.violations for v in inv.check(facts) if v.violations}


def test_a_clean_run_has_no_violations(inv, clean):
    verdicts = inv.check(clean)
    assert all(v.ok for v in verdicts)
    assert {v.name: v.checked for v in verdicts} == {
        "every session has exactly one CDR or a review record": 3,
        "billed energy equals delivered energy": 2,
        "every malformed frame answered with a CALLERROR": 2,
        "every poison message is in the dead-letter queue": 1,
        "no alert lost or duplicated": 1,
        "captured money equals the CDR total incl. VAT": 1,
        "no PaymentIntent captured twice or above its hold": 1,
        "subscriber usage billed once per CDR": 1,
        "every charger recorded with the OCPP version it spoke": 3,
    }


def test_a_session_without_cdr_or_review_is_a_violation(inv, clean):
    facts = dataclasses.replace(clean, review_session_ids=frozenset())
    assert violations(inv, facts) == {
        "every session has exactly one CDR or a review record": ["session 13: no CDR and not in review"]
    }


def test_a_201_transaction_the_backend_never_numbered_is_a_violation_named_by_the_chargers_id(inv, clean):
    unknown = inv.DeliveredSession("CP-2", 2, None, 4_000, "ocpp2.0.1", "tx-lost")
    facts = dataclasses.replace(clean, delivered=[*clean.delivered, unknown])
    assert violations(inv, facts) == {
        "every session has exactly one CDR or a review record": [
            "ocpp2.0.1 transaction tx-lost on CP-2/2: no CDR and not in review"
        ]
    }


def test_a_second_cdr_for_a_session_is_a_violation(inv, clean):
    facts = dataclasses.replace(
        clean, cdrs=[*clean.cdrs, inv.BilledSession("C11b", "11", "CP-1", 12_000, 1_504)]
    )
    assert violations(inv, facts) == {
        "every session has exactly one CDR or a review record": ["session 11: 2 CDRs"]
    }


def test_a_cdr_for_a_session_the_simulator_never_ran_is_a_violation(inv, clean):
    facts = dataclasses.replace(clean, cdrs=[*clean.cdrs, inv.BilledSession("C99", "99", "CP-3", 100, 63)])
    assert violations(inv, facts) == {
        "every session has exactly one CDR or a review record": [
            "CDR C99 bills session 99, which the simulator never ran"
        ]
    }


def test_billed_energy_other_than_delivered_is_a_violation(inv, clean):
    facts = dataclasses.replace(
        clean, cdrs=[clean.cdrs[0], inv.BilledSession("C12", "12", "CP-1", 8_001, 1_036)]
    )
    assert violations(inv, facts) == {
        "billed energy equals delivered energy": ["session 12: billed 8001 Wh, delivered 8000 Wh"]
    }


def test_a_malformed_frame_left_unanswered_is_a_violation(inv, clean):
    facts = dataclasses.replace(clean, malformed_answered=frozenset({"bad-0"}))
    assert violations(inv, facts) == {
        "every malformed frame answered with a CALLERROR": ["frame bad-1: no CALLERROR"]
    }


def test_poison_missing_from_the_dead_letter_queue_is_a_violation(inv, clean):
    facts = dataclasses.replace(clean, dead_lettered=frozenset())
    assert violations(inv, facts) == {
        "every poison message is in the dead-letter queue": ["frame poison-0: not dead-lettered"]
    }


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ([], ["CP-9/GroundFailure: 0 alerts"]),
        (["CP-9/GroundFailure", "CP-9/GroundFailure"], ["CP-9/GroundFailure: 2 alerts"]),
        (
            ["CP-9/GroundFailure", "CP-8/GroundFailure"],
            ["CP-8/GroundFailure: alert for no injected fault"],
        ),
    ],
    ids=["lost", "duplicated", "unexpected"],
)
def test_a_lost_duplicated_or_unexpected_alert_is_a_violation(inv, clean, received, expected):
    facts = dataclasses.replace(clean, alerts_received=received)
    assert violations(inv, facts) == {"no alert lost or duplicated": expected}


CAPTURED_AS_BILLED = "captured money equals the CDR total incl. VAT"
CAPTURED_ONCE = "no PaymentIntent captured twice or above its hold"


@pytest.mark.parametrize(
    ("payment", "expected"),
    [
        (("11", 1_503), ["session 11: 1503 kept at Stripe (pi_1), CDR total incl. VAT 1504"]),
        (("11", 1_504, None, 5_000, 4), ["session 11: 1500 kept at Stripe (pi_1), CDR total incl. VAT 1504"]),
        (("11", 0), ["session 11: 0 kept at Stripe (pi_1), CDR total incl. VAT 1504"]),  # still retrying
        (("13", 700), ["session 13: 700 kept at Stripe (pi_1), no CDR"]),  # in review: nothing taken
    ],
    ids=["short-by-one", "refunded-after-capture", "never-captured", "captured-unbilled"],
)
def test_money_kept_at_stripe_other_than_the_cdr_total_is_a_violation(inv, clean, payment, expected):
    facts = dataclasses.replace(clean, paid=[paid(inv, *payment)])
    assert violations(inv, facts) == {CAPTURED_AS_BILLED: expected}


def test_the_cdr_total_is_taken_up_to_the_hold_and_not_at_all_below_the_minimum_charge(inv, clean):
    over_hold = inv.BilledSession("C11", "11", "CP-1", 12_000, 6_000)
    below_minimum = inv.BilledSession("C12", "12", "CP-1", 8_000, 49)
    facts = dataclasses.replace(
        clean,
        cdrs=[over_hold, below_minimum],
        paid=[paid(inv, "11", received=5_000), paid(inv, "12", received=0, intent="pi_2")],
        usage_lines=[inv.UsageLine("ii_1", "C12", 49)],
    )
    assert violations(inv, facts) == {}
    facts = dataclasses.replace(facts, paid=[paid(inv, "12", received=49, intent="pi_2")])
    assert violations(inv, facts) == {
        CAPTURED_AS_BILLED: ["session 12: 49 kept at Stripe (pi_2), CDR total incl. VAT 49"]
    }


def test_a_payment_without_a_payment_intent_is_a_violation(inv, clean):
    facts = dataclasses.replace(clean, paid=[paid(inv, "11", received=0, intent=None)])
    assert violations(inv, facts) == {CAPTURED_AS_BILLED: ["session 11: payment pay-11 has no PaymentIntent"]}


def test_a_payment_intent_captured_twice_or_above_its_hold_is_a_violation(inv, clean):
    twice = dataclasses.replace(clean, paid=[paid(inv, "11", received=1_504, charges=[1_504, 1_504])])
    assert violations(inv, twice) == {CAPTURED_ONCE: ["pi_1: captured 2 times"]}
    above = dataclasses.replace(clean, paid=[paid(inv, "11", received=1_504, hold=1_500)])
    assert violations(inv, above) == {
        CAPTURED_AS_BILLED: ["session 11: 1504 kept at Stripe (pi_1), CDR total incl. VAT 1504"],
        CAPTURED_ONCE: ["pi_1: captured 1504 above its hold of 1500"],
    }


def test_the_table_prints_each_invariant_with_its_counts_and_violations(inv, clean):
    facts = dataclasses.replace(clean, dead_lettered=frozenset())
    printed = inv.table(inv.check(facts), facts.failed)
    [row] = [line for line in printed.splitlines() if line.startswith("every poison message")]
    assert row.split()[-2:] == ["1", "1"]  # checked, violations
    assert (
        "  ! every poison message is in the dead-letter queue: frame poison-0: not dead-lettered" in printed
    )
    assert "(not started: CP-3/1: Authorize dropped)" in printed


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ({"CP-2": "ocpp1.6"}, ["CP-2: spoke ocpp2.0.1, recorded as ocpp1.6"]),
        ({"CP-2": None}, ["CP-2: spoke ocpp2.0.1, recorded as ocpp1.6"]),
        ({"CP-1": "ocpp2.0.1"}, ["CP-1: spoke ocpp1.6, recorded as ocpp2.0.1"]),
    ],
    ids=["201-as-16", "201-unrecorded", "16-as-201"],
)
def test_a_charger_recorded_with_another_version_than_it_spoke_is_a_violation(inv, clean, recorded, expected):
    facts = dataclasses.replace(clean, versions_recorded={**clean.versions_recorded, **recorded})
    assert violations(inv, facts) == {"every charger recorded with the OCPP version it spoke": expected}


# ------------------------------------------------------------------ the injector the run arms
STACK = "http://127.0.0.1:9"  # the moto endpoint of the made-up stack; never reached


@pytest.fixture
def injector(monkeypatch):
    """fault_injection installed in this process as in a function's worker, under a made-up stack pid."""
    import botocore.session

    from chargenet_local import fault_injection

    stack_pid = 4_000_000 + os.getpid()  # above any real pid: no live stack's plan
    monkeypatch.setattr(botocore.session.Session, "create_client", botocore.session.Session.create_client)
    monkeypatch.setattr(fault_injection.os, "getppid", lambda: stack_pid)
    monkeypatch.setenv("AWS_ENDPOINT_URL", STACK)  # as the stack sets it in a function's worker
    monkeypatch.setattr(fault_injection, "_installed", None)
    fault_injection.install("OcppIngestFunction")
    yield fault_injection, stack_pid
    fault_injection.forget(stack_pid)


def _dynamodb():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=STACK,  # never reached: the hooks or the stubber answer
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )


def test_throttling_is_dynamodbs_own_error_after_botocores_retries(injector):
    from botocore.exceptions import ClientError

    fault_injection, stack_pid = injector
    fault_injection.activate(stack_pid, fault_injection.FaultPlan(stack=STACK, throttle=1.0))
    with pytest.raises(ClientError) as raised:
        _dynamodb().get_item(TableName="t", Key={"k": {"S": "1"}})
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert fault_injection.injected(stack_pid) == {("OcppIngestFunction", "throttle"): 2}  # both attempts


def test_crashes_come_before_or_after_a_write_and_no_handler_can_catch_them(injector):
    from botocore.stub import Stubber

    fault_injection, stack_pid = injector
    client = _dynamodb()
    fault_injection.activate(stack_pid, fault_injection.FaultPlan(stack=STACK, crash_before_write=1.0))
    with pytest.raises(fault_injection.SandboxCrash, match="before PutItem"):
        client.put_item(TableName="t", Item={"k": {"S": "1"}})
    assert not issubclass(fault_injection.SandboxCrash, Exception)

    fault_injection.activate(stack_pid, fault_injection.FaultPlan(stack=STACK, crash_after_write=1.0))
    with Stubber(client) as stubbed:
        stubbed.add_response("get_item", {})
        stubbed.add_response("put_item", {})
        client.get_item(TableName="t", Key={"k": {"S": "1"}})  # a read: left alone
        with pytest.raises(fault_injection.SandboxCrash, match="after PutItem"):
            client.put_item(TableName="t", Item={"k": {"S": "1"}})


def test_a_plan_for_other_functions_or_none_at_all_injects_nothing(injector):
    from botocore.stub import Stubber

    fault_injection, stack_pid = injector
    client = _dynamodb()
    fault_injection.activate(
        stack_pid,
        fault_injection.FaultPlan(
            stack=STACK, functions=frozenset({"BillingFunction"}), crash_before_write=1.0
        ),
    )
    with Stubber(client) as stubbed:
        stubbed.add_response("put_item", {})
        client.put_item(TableName="t", Item={"k": {"S": "1"}})
        fault_injection.deactivate(stack_pid)
        stubbed.add_response("put_item", {})
        client.put_item(TableName="t", Item={"k": {"S": "1"}})
    assert fault_injection.injected(stack_pid) == {}


def test_a_plan_for_another_stack_injects_nothing(injector):
    from botocore.stub import Stubber

    fault_injection, stack_pid = injector
    client = _dynamodb()
    # A killed run's plan, found by a later stack whose daemon got the same pid.
    stale = fault_injection.FaultPlan(stack="http://127.0.0.1:1", crash_before_write=1.0)
    fault_injection.activate(stack_pid, stale)
    with Stubber(client) as stubbed:
        stubbed.add_response("put_item", {})
        client.put_item(TableName="t", Item={"k": {"S": "1"}})
    assert fault_injection.injected(stack_pid) == {}


def test_a_plan_can_shorten_the_functions_timeout_but_never_lengthen_it(injector):
    fault_injection, stack_pid = injector
    assert fault_injection.timeout_s(10) == 10  # no plan
    fault_injection.activate(stack_pid, fault_injection.FaultPlan(stack=STACK, function_timeout_s=3))
    assert (fault_injection.timeout_s(10), fault_injection.timeout_s(2)) == (3, 2)
    other = fault_injection.FaultPlan(stack=STACK, functions=frozenset({"X"}), function_timeout_s=3)
    fault_injection.activate(stack_pid, other)
    assert fault_injection.timeout_s(10) == 10


def test_a_crash_is_retried_once_its_deadline_has_passed_other_errors_at_once(monkeypatch):
    from concurrent.futures import Future

    from chargenet_local import fault_injection, lambda_runtime
    from chargenet_local.template import FunctionSpec

    delays = []

    class Timer:
        def __init__(self, delay, *_):
            delays.append(delay)

        def start(self):
            pass

    monkeypatch.setattr(lambda_runtime.threading, "Timer", Timer)
    spec = FunctionSpec(
        logical_id="F",
        code_dir=Path("."),
        handler="app.h",
        environment={},
        timeout_s=10,
        memory_mb=128,
        dead_letter_queue=None,
    )
    function = lambda_runtime.LocalFunction(spec, {}, lambda _: None, on_invocation=lambda *_: None)
    crash = fault_injection.SandboxCrash("injected")
    crash.retry_after_s = 2.5  # what was left of its deadline when it died
    for error in (crash, RuntimeError("boom")):
        done = Future()
        done.set_exception(error)
        function._settle(done, {}, attempt=0)
    function.close()
    assert delays == [2.5 + lambda_runtime.RETRY_DELAY_S, lambda_runtime.RETRY_DELAY_S]


# ------------------------------------------------------------------ Stripe webhooks sent twice and late
@pytest.fixture
def webhook_stack(monkeypatch):
    """The stack daemon's webhook sender, under a made-up stack pid, delivering to a recorder."""
    from chargenet_local import fault_injection, stripe_webhooks

    stack_pid = 4_100_000 + os.getpid()  # above any real pid: no live stack's plan
    monkeypatch.setattr(stripe_webhooks.os, "getpid", lambda: stack_pid)
    delivered = []
    monkeypatch.setattr(stripe_webhooks, "_post", lambda endpoint, payload: delivered.append(payload) or 200)
    sender = stripe_webhooks.WebhookSender()
    sender.add("http://127.0.0.1:4000/stripe/webhook", "whsec_test")
    yield fault_injection, stack_pid, sender, delivered
    sender.close()
    fault_injection.forget(stack_pid)


def _wait_for(delivered, count, timeout_s=5.0):
    import time

    deadline = time.monotonic() + timeout_s
    while len(delivered) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(delivered)


def test_a_webhook_plan_sends_each_event_twice_and_late_copies_after_the_others(webhook_stack):
    import json

    from chargenet_local.stripe_webhooks import new_event

    fault_injection, stack_pid, sender, delivered = webhook_stack
    plan = fault_injection.WebhookPlan(api_url="http://127.0.0.1:4000", duplicate=1.0, late=1.0, late_s=0.3)
    fault_injection.activate_webhooks(stack_pid, plan)
    sender.send(new_event("checkout.session.completed", {"id": "cs_1"}, event_id="evt_1"))
    assert delivered == []  # both copies held back
    copies = _wait_for(delivered, 2)
    assert [json.loads(c)["id"] for c in copies] == ["evt_1", "evt_1"]
    assert fault_injection.injected(stack_pid) == {
        ("stripe webhooks", "duplicated"): 1,
        ("stripe webhooks", "late"): 2,
    }


def test_webhooks_to_another_stack_or_without_a_plan_are_sent_once_at_once(webhook_stack):
    from chargenet_local.stripe_webhooks import new_event

    fault_injection, stack_pid, sender, delivered = webhook_stack
    # A plan for another stack's API (a port that only shares a prefix): left alone.
    fault_injection.activate_webhooks(
        stack_pid, fault_injection.WebhookPlan(api_url="http://127.0.0.1:400", duplicate=1.0)
    )
    sender.send(new_event("checkout.session.completed", {"id": "cs_1"}))
    fault_injection.deactivate(stack_pid)
    sender.send(new_event("checkout.session.completed", {"id": "cs_2"}))
    assert len(_wait_for(delivered, 3, timeout_s=0.5)) == 2
    assert fault_injection.injected(stack_pid) == {}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], ["CDR C12 (session 12): 0 usage lines"]),
        ([("ii_1", "C12", 1_036), ("ii_2", "C12", 1_036)], ["CDR C12 (session 12): 2 usage lines"]),
        ([("ii_1", "C12", 1_035)], ["CDR C12: usage line 1035, CDR total incl. VAT 1036"]),
    ],
    ids=["lost", "billed-twice", "wrong-amount"],
)
def test_subscriber_usage_lost_billed_twice_or_wrong_is_a_violation(inv, clean, lines, expected):
    facts = dataclasses.replace(clean, usage_lines=[inv.UsageLine(*line) for line in lines])
    assert violations(inv, facts) == {"subscriber usage billed once per CDR": expected}
