"""The local stack keeps its data: a kill -9 mid-run, a down and up, and a reset.

One stack of its own (its own home, not the shared test stack), restarted by the tests: `kill -9`
of its whole process group (a crash, or a reboot), then `chargenet local up`; `down` then `up`;
`chargenet local reset --yes` then `up`. The tests run in this order and build on each other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chargenet.adapters.tags_tariffs_dynamodb import DynamoTagDirectory
from chargenet.composition.settings import bind_environment
from chargenet.domain.models import TagStatus
from chargenet_cli import local_env
from chargenet_cli.provisioning import provision
from chargenet_local.operator_sign_in import act_as_first_admin
from chargenet_local.persistence import MOTO_SNAPSHOT, SNAPSHOT_EVERY_S, state_dir
from chargenet_local.stack import (
    FIRST_ADMIN,
    FIRST_ADMIN_PASSWORD_FILE,
    StackNotRunning,
    StackState,
    down,
    read_state,
)
from chargenet_local.stripe_local import StripeApi
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.sim.session import SessionPlan
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import SimulatedCharger
from tests.integration.conftest import ROOT, cdrs_of, eventually, sessions_of, start_stack
from tests.integration.payment_flow import assign_tariff

TAG = "DURABLE-TAG"
# Each test restarts the stack once (about 20 s on an idle machine, minutes on a loaded one).
pytestmark = pytest.mark.timeout(900)


class Kept:
    """What the first test leaves for the later ones to find again."""

    charger: ChargerCredentials
    cdr_total: Any
    session_ids: list[str]
    stripe_customer: str
    second_operator_sub: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A stack of this module's own; the process's AWS environment is given back afterwards (a
    shared stack's, when this test process has one)."""
    saved_environment = dict(os.environ)
    folder = tmp_path_factory.mktemp("durable-stack")
    started(folder)
    yield folder
    down(folder, timeout_s=15)
    os.environ.clear()
    os.environ.update(saved_environment)
    bind_environment(os.environ)


def started(folder: Path) -> StackState:
    state = start_stack(folder)
    DynamoTagDirectory().put(TAG, TagStatus.ACCEPTED, 1, None)
    return state


def cli(folder: Path, *args: str) -> str:
    """`chargenet --home <folder> ...` as an operator types it."""
    done = subprocess.run(
        [sys.executable, "-m", "chargenet_cli.main", "--home", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def restarted_by_cli(folder: Path) -> StackState:
    cli(folder, "local", "up")
    state = local_env.connect(folder)
    act_as_first_admin(state)
    return state


def priced_charger(state: StackState) -> ChargerCredentials:
    charger_id = f"CP-{uuid.uuid4().hex[:8]}"
    credentials = ChargerCredentials.load(provision(state, charger_id, "SITE-D", None).credentials_dir)
    assign_tariff(charger_id)
    return credentials


def plan(target_soc: float) -> SessionPlan:
    return SessionPlan(
        connector_id=1,
        id_tag=TAG,
        battery_kwh=40,
        start_soc=50,
        target_soc=target_soc,
        max_power_kw=11,
        meter_interval_s=300,
    )


async def charge_once(credentials: ChargerCredentials, clock: SimClock) -> str:
    """Boot and one short session to its end; the transaction id. One clock per charger for all
    its sessions: a fresh one would start the next session before the last one ended (200x)."""
    charger = SimulatedCharger(credentials, clock=clock)
    await charger.start()
    try:
        await charger.run_boot()
        truth = await asyncio.wait_for(charger.run_session(plan(60), clock), 90)
        return str(truth.transaction_id)
    finally:
        await charger.stop()


def snapshot_after(folder: Path, moment: float) -> None:
    """Wait for a snapshot written after `moment` (the daemon's, every SNAPSHOT_EVERY_S when dirty)."""
    path = state_dir(folder) / MOTO_SNAPSHOT
    eventually(lambda: path.exists() and path.stat().st_mtime > moment, timeout=SNAPSHOT_EVERY_S * 10)


def operators(state: StackState) -> dict[str, str]:
    """Users of the operator pool by name, with their `sub`."""
    cognito = boto3.client("cognito-idp")
    users = cognito.list_users(UserPoolId=state.operator_pool_id)["Users"]
    return {
        user["Username"]: next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub") for user in users
    }


def stripe_of(state: StackState) -> StripeApi:
    key = boto3.client("secretsmanager").get_secret_value(SecretId=state.secrets["StripeApiKeySecret"])
    return StripeApi(state.stripe_api_base, key["SecretString"])


def test_a_kill_9_mid_run_loses_no_acknowledged_session_and_the_charger_charges_again(home: Path) -> None:
    state = read_state(home)
    billed, metering = priced_charger(state), priced_charger(state)
    billed_clock = SimClock(speed=200)
    first_tx = asyncio.run(charge_once(billed, billed_clock))
    [cdr] = eventually(lambda: cdrs_of(billed.charger_id), timeout=60)
    assert cdr.session_id == first_tx

    async def kill_while_metering() -> str:
        clock = SimClock(speed=20)  # 11 kW to 90 % of 40 kWh: two hours simulated, minutes real
        charger = SimulatedCharger(metering, clock=clock)
        await charger.start()
        await charger.run_boot()
        session = asyncio.create_task(charger.run_session(plan(90), clock))
        [started_session] = await asyncio.to_thread(eventually, lambda: sessions_of(metering.charger_id), 60)
        acknowledged = time.time()
        await asyncio.sleep(1)  # a meter reading or two more
        await asyncio.to_thread(snapshot_after, home, acknowledged)
        os.killpg(state.pid, signal.SIGKILL)  # the daemon, its broker, workers and localstripe: a crash
        session.cancel()
        await charger.stop()
        return str(started_session.session_id)

    metering_session = asyncio.run(kill_while_metering())

    again = restarted_by_cli(home)
    assert again.pid != state.pid
    assert again.mqtt_port == state.mqtt_port  # chargers' credentials name it
    [kept_cdr] = cdrs_of(billed.charger_id)
    assert (kept_cdr.session_id, kept_cdr.total_incl_vat) == (cdr.session_id, cdr.total_incl_vat)
    assert [s.session_id for s in sessions_of(metering.charger_id)] == [metering_session]
    # The same certificate connects again (CA, registry and policy kept) and the charger charges.
    second_tx = asyncio.run(charge_once(billed, billed_clock))
    assert second_tx != first_tx
    eventually(lambda: len(cdrs_of(billed.charger_id)) == 2, timeout=60)
    assert list(operators(again)) == [FIRST_ADMIN]  # signed in above; no second admin was made
    Kept.charger, Kept.cdr_total = billed, kept_cdr.total_incl_vat
    Kept.session_ids = sorted(s.session_id for s in sessions_of(billed.charger_id))


def test_down_then_up_keeps_stripe_operators_and_billing_exactly(home: Path) -> None:
    state = read_state(home)
    customer = stripe_of(state).post("/v1/customers", {"email": "kept@example.com"})
    assert customer.ok, customer.body
    cognito = boto3.client("cognito-idp")
    cognito.admin_create_user(UserPoolId=state.operator_pool_id, Username="tech", MessageAction="SUPPRESS")
    cognito.admin_add_user_to_group(
        UserPoolId=state.operator_pool_id, Username="tech", GroupName="technician"
    )
    before = operators(state)

    assert cli(home, "local", "down").strip() == "local stack stopped"
    again = restarted_by_cli(home)

    assert operators(again) == before  # same users, same subs
    groups = cognito.admin_list_groups_for_user(UserPoolId=again.operator_pool_id, Username="tech")
    assert [g["GroupName"] for g in groups["Groups"]] == ["technician"]
    kept = stripe_of(again).get(f"/v1/customers/{customer.body['id']}")
    assert kept.ok and kept.body["email"] == "kept@example.com", kept.body
    # The stream pollers go on from where they were: no CDR is billed twice.
    time.sleep(SNAPSHOT_EVERY_S * 2)
    assert sorted(c.session_id for c in cdrs_of(Kept.charger.charger_id)) == Kept.session_ids
    Kept.stripe_customer = customer.body["id"]


def test_reset_wipes_everything_and_makes_a_new_first_admin(home: Path) -> None:
    old_password = (home / FIRST_ADMIN_PASSWORD_FILE).read_text()

    assert "wiped" in cli(home, "local", "reset", "--yes")
    assert not read_state_or_none(home)
    state = started(home)

    assert cdrs_of(Kept.charger.charger_id) == []
    assert sessions_of(Kept.charger.charger_id) == []
    assert (home / FIRST_ADMIN_PASSWORD_FILE).read_text() != old_password
    assert list(operators(state)) == [FIRST_ADMIN]  # act_as_first_admin signed in with the new one
    gone = stripe_of(state).get(f"/v1/customers/{Kept.stripe_customer}")
    assert gone.status == 404, gone.body


def read_state_or_none(folder: Path) -> StackState | None:
    try:
        return read_state(folder)
    except StackNotRunning:
        return None
