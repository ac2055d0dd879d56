"""The chaos run in small (bench.chaos): six chargers, two sessions each (two of them
subscribers' chargers: connector 1 charges by an active subscriber's tag), and two paying
chargers with a driver paying through the pay link on each connector, on the test stack.
Every third charger speaks OCPP 2.0.1 (fleet chargers 3 and 6 and the second paying charger,
whose drivers' payments start it with RequestStartTransaction), the others 1.6.

Frames duplicated and late, links dropped mid-session, DynamoDB throttling, handlers crashing
before and after writes, poison and malformed frames, a safety fault, Stripe failing on
PaymentIntent calls, webhooks sent twice and late, mosquitto restarted; then every invariant
must hold. The crashable functions run on a 3 s timeout, so each crash costs 3 s, not 10.
"""

from __future__ import annotations

import logging
from types import ModuleType

import pytest

from bench import chaos as chaos_module
from chargenet_local.stack import StackState

CHARGERS, SESSIONS_PER_CHARGER = 6, 2
# Fleet chargers 3 and 6: four planned sessions, and the two paid ones on the second paying charger.
SESSIONS_201 = 2 * SESSIONS_PER_CHARGER + 2


@pytest.fixture(scope="module")
def chaos() -> ModuleType:
    return chaos_module


# Two to three minutes on a loaded machine; a capture that failed all its quick retries adds the
# payment sweep's two-minute backoff, which the default 300 s (stack start-up included) would not cover.
@pytest.mark.timeout(600)
def test_a_small_chaos_run_keeps_every_invariant(stack: StackState, chaos: ModuleType) -> None:
    # ocpp logs every late or duplicated reply as an error: by design here, and it would bury the table.
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    options = chaos.ChaosOptions(
        chargers=CHARGERS,
        sessions_per_charger=SESSIONS_PER_CHARGER,
        seed=11,
        speed=600,
        function_timeout_s=3,
        # Bounded phases: a backend that loses a session fails the test with the table, never hangs it.
        drive_timeout_s=300,  # under a CI run's load the fleet has needed over 150 s
        settle_timeout_s=60,
        paying_chargers=2,  # a driver paying through the pay link on each connector
        paid_sessions_per_charger=2,
        payment_timeout_s=150,  # a capture that failed its quick retries: the sweep's 2 min backoff
        subscriber_chargers=2,  # an active subscriber charging by tag on connector 1
        usage_timeout_s=60,
        broker_restarts=1,
        ocpp_versions=("ocpp1.6", "ocpp1.6", "ocpp2.0.1"),
    )
    result = chaos.run_chaos(stack, options, chaos.stepper())
    printed = chaos.table(result.verdicts, result.not_started)
    print(printed, f"sessions: {result.sessions_by_version}", f"injected: {result.injected}", sep="\n")
    assert result.ok, printed
    # Drivers give up when a crash leaves their Authorize unanswered; most sessions must still run.
    assert result.sessions >= CHARGERS * SESSIONS_PER_CHARGER * 2 // 3, printed
    # The 2.0.1 chargers charge under the same chaos, and their sessions are held to the same
    # invariants. Six planned sessions are few: each lost Authorize (a link cut by the harness)
    # weighs a sixth, so the bar is a third of them, where the fleet's as a whole is two thirds.
    assert result.sessions_by_version.get("ocpp2.0.1", 0) >= SESSIONS_201 // 3, (
        printed,
        result.sessions_by_version,
    )
    assert result.injected["broker restarts"] == 1, printed
    assert result.injected["charger disconnections"] >= 1, printed
    assert {v.name: v.checked > 0 for v in result.verdicts} == {v.name: True for v in result.verdicts}, (
        printed
    )
