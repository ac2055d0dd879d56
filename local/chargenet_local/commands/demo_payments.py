"""The demo's drivers who pay through the link, scripted over HTTP as a browser would.

Each opens a charger's pay page, starts the checkout, pays on the local hosted page with the
test card; the backend starts the simulated charger in its OCPP version's words
(RemoteStartTransaction to a 1.6 charger, RequestStartTransaction to PAY-02, which speaks 2.0.1)
and it charges on accelerated time. One driver presses Stop on the session page, the others
leave when the car is full; billing then captures exactly the CDR total. One more driver's card is
declined: nothing is held and the charger never starts. The summary reads Stripe through
the product's gateway and reconciles it with the CDRs (`chargenet reconcile`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from ocpp.exceptions import OCPPError

from chargenet_cli import payment_cmd
from chargenet_cli.errors import CliError
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import table
from chargenet_local.stack import StackState
from chargenet_shim.link import LinkError
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim.charging import SessionError

# Not CP-…: the demo's fleet listing is every CP- charger.
PAYING_CHARGERS = ("PAY-01", "PAY-02", "PAY-03")
# A mixed site, as the fleet: PAY-02 speaks OCPP 2.0.1 (a paid and a declined driver), the others 1.6.
PAYING_VERSIONS = (OcppVersion.V16, OcppVersion.V201, OcppVersion.V16)
# What the backend sends a charger once its driver has paid, in each version.
START_MESSAGE = {OcppVersion.V16: "RemoteStartTransaction", OcppVersion.V201: "RequestStartTransaction"}
RATED_POWER_W = 22_000
CARD = {"email": "driver@example.com", "card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
DECLINED_CARD = {**CARD, "card_number": "4000000000000002"}
HTTP_TIMEOUT_S = 30
# As the fleet's sessions: a reading every 5 simulated minutes keeps the backend's load light.
METER_INTERVAL_S = 300
WAIT_S = 120
# The session page's energy so far ("Energy" row).
ENERGY_SHOWN = re.compile(r"(\d+\.\d{2}) kWh")


@dataclass(frozen=True)
class Driver:
    charger_id: str
    connector_id: int
    card: dict[str, str]
    presses_stop: bool = False


DRIVERS = (
    Driver("PAY-01", 1, CARD, presses_stop=True),
    Driver("PAY-02", 1, CARD),
    Driver("PAY-03", 1, CARD),
    Driver("PAY-02", 2, DECLINED_CARD),
)


@dataclass(frozen=True)
class DriverVisit:
    driver: Driver
    outcome: str  # what the driver saw
    session_url: str | None = None
    energy_wh: int | None = None


def run_payments(state: StackState, speed: float, say: Callable[[str], None]) -> str:
    """Provision the paying chargers, run the drivers, wait for the captures; the revenue summary."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    credentials = provision_chargers(state, PAYING_CHARGERS, "SITE-PAY")
    say(f"payments: {len(DRIVERS)} drivers pay through the link (pay page, checkout, hosted page)")
    visits = asyncio.run(_visits(state, credentials, speed, say))
    paid = [v for v in visits if v.session_url]
    payments = [_settled(v, say) for v in paid]
    return _summary(state, since, visits, payments)


def provision_chargers(state: StackState, charger_ids: Sequence[str], site_id: str) -> list[Any]:
    """The shim credentials of the demo's extra chargers, provisioned unless registered already."""
    from chargenet.adapters.dynamodb import DynamoChargerRegistry
    from chargenet_cli.provisioning import charger_dir, provision
    from chargenet_shim.credentials import ChargerCredentials

    registry = DynamoChargerRegistry()
    for charger_id in charger_ids:
        if registry.get(charger_id) is None:
            provision(state, charger_id, site_id=site_id, rated_power_w=RATED_POWER_W)
    return [ChargerCredentials.load(charger_dir(state, charger_id)) for charger_id in charger_ids]


async def _visits(
    state: StackState, credentials: list[Any], speed: float, say: Callable[[str], None]
) -> list[DriverVisit]:
    from chargenet_shim.sim.fleet import run_sessions
    from chargenet_shim.sim.session import SessionPlan
    from chargenet_shim.sim.simclock import SimClock

    visits: list[DriverVisit] = []

    async def drive(chargers: list[Any]) -> None:
        by_id = {c.id: c for c in chargers}
        missing = [d.charger_id for d in DRIVERS if d.charger_id not in by_id]
        if missing:
            raise CliError(f"payments: chargers {missing} did not come up")
        for charger in chargers:
            # Each paid session on its own accelerated clock from its start: the payment's tag is
            # valid for minutes of real time, so the StartTransaction must be dated now.
            charger.remote_clock = lambda: SimClock(speed=speed)
            charger.remote_plan = charger.remote_plan.model_copy(
                update={"meter_interval_s": METER_INTERVAL_S}
            )
        # The driver who presses Stop has a big battery: still charging when the page is read.
        by_id["PAY-01"].remote_plan = SessionPlan(
            connector_id=1,
            id_tag="REMOTE",
            battery_kwh=77,
            start_soc=20,
            target_soc=90,
            max_power_kw=22,
            meter_interval_s=METER_INTERVAL_S,
        )
        visits.extend(await asyncio.gather(*(_visit(state, by_id[d.charger_id], d, say) for d in DRIVERS)))

    # No planned sessions: the chargers only charge when a payment starts them.
    await run_sessions(
        credentials, [[] for _ in credentials], SimClock(), alongside=drive, versions=PAYING_VERSIONS
    )
    return visits


async def _visit(state: StackState, charger: Any, driver: Driver, say: Callable[[str], None]) -> DriverVisit:
    paid = await asyncio.to_thread(pay_through_link, state, driver)
    if isinstance(paid, DriverVisit):
        say(f"  {driver.charger_id}/{driver.connector_id}: {paid.outcome}")
        return paid
    session = await _remote_session(charger)
    started_by = START_MESSAGE[charger.ocpp_version]
    say(f"  {driver.charger_id}/{driver.connector_id}: paid, {started_by}, charging")
    if driver.presses_stop:
        await asyncio.to_thread(_press_stop, paid)
    try:
        truth = await session
    # The session's own failure (start refused, link lost): reported in the summary, which then fails.
    except (SessionError, OCPPError, LinkError, TimeoutError) as exc:
        return DriverVisit(driver, f"session failed: {exc}", paid)
    ended = "driver pressed Stop" if truth.stop_reason == "Remote" else "car full, unplugged"
    say(f"  {driver.charger_id}/{driver.connector_id}: {ended}, {truth.energy_wh / 1000:.2f} kWh")
    return DriverVisit(driver, ended, paid, truth.energy_wh)


def pay_through_link(state: StackState, driver: Driver) -> str | DriverVisit:
    """The driver's session URL, or the visit as it ended at the checkout."""
    pay_page = f"{state.api_url}/pay/{driver.charger_id}/{driver.connector_id}"
    until(lambda: "<form" in requests.get(pay_page, timeout=HTTP_TIMEOUT_S).text, f"{pay_page} payable")
    checkout = requests.post(
        f"{pay_page}/checkout", data={"method": "card"}, allow_redirects=False, timeout=HTTP_TIMEOUT_S
    )
    if checkout.status_code != 303:
        raise CliError(f"payments: checkout at {pay_page} answered {checkout.status_code}")
    hosted = requests.post(
        checkout.headers["Location"], data=driver.card, allow_redirects=False, timeout=HTTP_TIMEOUT_S
    )
    if hosted.status_code == 402:
        return DriverVisit(driver, "card declined: nothing held, the charger not started")
    if hosted.status_code != 303:
        raise CliError(f"payments: the hosted page answered {hosted.status_code}")
    return str(hosted.headers["Location"])


async def _remote_session(charger: Any) -> Any:
    """The session the backend's remote start started (one per paying charger)."""
    deadline = time.monotonic() + WAIT_S
    while not charger.remote_sessions:
        if time.monotonic() > deadline:
            raise CliError(f"payments: {charger.id} was not started remotely within {WAIT_S}s")
        await asyncio.sleep(0.1)
    return charger.remote_sessions[-1]


def _press_stop(session_url: str) -> None:
    # As a driver would: once the page shows the car taking energy. Pressed at the first sight of
    # the button, on a busy machine, the session could stop before its first reading (0.00 kWh).
    until(
        lambda: _stoppable(requests.get(session_url, timeout=HTTP_TIMEOUT_S).text),
        "energy and the Stop button on the session page",
    )
    stopped = requests.post(f"{session_url}/stop", allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    if stopped.status_code != 303:
        raise CliError(f"payments: Stop answered {stopped.status_code}")


def _stoppable(session_page: str) -> bool:
    energy = ENERGY_SHOWN.search(session_page)
    return "Stop charging" in session_page and energy is not None and Decimal(energy[1]) > 0


def _settled(visit: DriverVisit, say: Callable[[str], None]) -> Any:
    """The visit's payment once settled (captured, or cancelled below the minimum charge)."""
    from chargenet.adapters.payments_dynamodb import DynamoPaymentStore
    from chargenet.domain.payments import OPEN_STATES, token_digest

    assert visit.session_url is not None
    digest = token_digest(visit.session_url.rsplit("/", 1)[1])
    store = DynamoPaymentStore()
    payment = until(
        lambda: (p := store.by_token(digest)) and p.state not in OPEN_STATES and p,
        f"the capture of {visit.driver.charger_id}'s payment",
        fail=False,
    ) or store.by_token(digest)
    say(f"  {visit.driver.charger_id}: payment {payment.state.value}")
    return payment


def _summary(state: StackState, since: dt.datetime, visits: list[DriverVisit], payments: list[Any]) -> str:
    from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
    from chargenet.adapters.stripe_gateway import StripeGateway, read_secret
    from chargenet.domain.payments.reconciliation import money

    arn = state.secrets["StripeApiKeySecret"]
    stripe = StripeGateway(api_key=lambda: read_secret(arn), api_base=state.stripe_api_base or None)
    cdrs = DynamoCdrStore()
    rows = []
    for visit, payment in zip([v for v in visits if v.session_url], payments, strict=True):
        record = cdrs.get(payment.session_id) if payment.session_id else None
        intent = stripe.intent(payment.payment_intent_id) if payment.payment_intent_id else None
        rows.append(
            (
                payment.payment_id[:12],
                f"{visit.driver.charger_id}/{visit.driver.connector_id}",
                f"{visit.energy_wh / 1000:.2f}" if visit.energy_wh is not None else "-",
                visit.outcome,
                f"{record.total_incl_vat} {record.currency}" if record else "-",
                money(payment.captured_minor, payment.currency),
                money(intent.amount_received, payment.currency) if intent else "-",
                payment.state.value,
            )
        )
    headers = ["PAYMENT", "CONNECTOR", "KWH", "SESSION", "CDR INCL VAT", "CAPTURED", "AT STRIPE", "STATE"]
    declined = [
        f"  {v.driver.charger_id}/{v.driver.connector_id}: {v.outcome}" for v in visits if not v.session_url
    ]
    # As `chargenet reconcile` does it: through the operator API, signed in as the first admin.
    checked, mismatches = payment_cmd.reconcile(api(argparse.Namespace(home=Path(state.home))), since)
    captured = sum(p.captured_minor for p in payments)
    currency = payments[0].currency if payments else "EUR"
    verdict = "OK" if not mismatches and checked == len(payments) else "MISMATCH"
    lines = [
        "payments through the pay link:",
        table(headers, rows),
        *declined,
        f"revenue through the pay link: {money(captured, currency)} captured from {len(payments)} payments",
        f"reconciled with Stripe ({checked} CDRs, captured = CDR total incl. VAT): {verdict}",
    ]
    if mismatches:
        lines.append(payment_cmd.mismatch_table(mismatches))
    if verdict != "OK":
        raise CliError("\n".join(lines))
    return "\n".join(lines)


def until(check: Callable[[], Any], what: str, fail: bool = True) -> Any:
    """The first truthy result of `check`, polled for WAIT_S; then a CliError naming `what`, or None."""
    deadline = time.monotonic() + WAIT_S
    while not (value := check()):
        if time.monotonic() > deadline:
            if fail:
                raise CliError(f"demo: no {what} within {WAIT_S}s")
            return None
        time.sleep(0.3)
    return value
