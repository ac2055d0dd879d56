"""Money in the operator console, in headless Chromium on the real local stack with localstripe:
finance refunds part of a driver's paid session on the sessions page (the API's payment and
Stripe agree: one refund, of that amount), and the money page's charts plot the same totals as
/ops/v1/reports/energy for the same range.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from chargenet_cli.provisioning import provision
from chargenet_local.stack import FIRST_ADMIN, StackState
from chargenet_shim.credentials import ChargerCredentials
from scripts.console_screenshots import headless_chrome, show
from tests.integration.conftest import eventually
from tests.integration.payment_flow import api_key, assign_tariff, captured_payment, drive_paid_session
from tests.integration.test_console_browser import (
    PASSWORD,
    _admin_password,
    _api,
    _csp_violations,
    _operator,
    _sign_in,
)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chrome(1280, 900) as driver:
        yield driver


@pytest.fixture(scope="module")
def paid(stack: StackState) -> Any:
    """A driver's session paid by card, billed and captured (10 kWh: 0.50 EUR + 0.40 EUR/kWh + VAT)."""
    charger_id = f"CP-money-{uuid.uuid4().hex[:6]}"
    credentials = ChargerCredentials.load(provision(stack, charger_id, "SITE-MONEY", None).credentials_dir)
    assign_tariff(charger_id)
    return captured_payment(asyncio.run(drive_paid_session(stack, credentials)))


def _refunds_at_stripe(stack: StackState, intent_id: str) -> list[dict[str, Any]]:
    reply = requests.get(
        f"{stack.stripe_api_base}/v1/refunds",
        params={"payment_intent": intent_id},
        auth=(api_key(stack), ""),
        timeout=30,
    )
    reply.raise_for_status()
    return list(reply.json()["data"])


def _payment_row(driver: webdriver.Chrome, session_id: str) -> WebElement:
    """The session's row in the payments table, following "More" while the row is further on."""
    payments = "//section[h2='Payments']"
    row = f"{payments}//table//tr[td[@data-label='Session' and normalize-space()='{session_id}']]"

    def found() -> WebElement | None:
        rows = driver.find_elements(By.XPATH, row)
        if not rows:
            for more in driver.find_elements(By.XPATH, f"{payments}//button[@class='more']"):
                if more.is_displayed() and more.is_enabled():
                    more.click()
        return rows[0] if rows else None

    return eventually(found, timeout=60, interval=0.5)


def test_finance_refunds_part_of_a_paid_session_on_the_sessions_page(
    stack: StackState, paid: Any, browser: webdriver.Chrome
) -> None:
    finance = _operator(stack, "finance")
    _sign_in(browser, stack, finance, PASSWORD)
    show(browser, "#/sessions")

    row = _payment_row(browser, paid.session_id)
    refund = row.find_element(By.TAG_NAME, "details")
    refund.find_element(By.TAG_NAME, "summary").click()
    refund.find_element(By.NAME, "amount").send_keys("1.00")
    refund.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    said = WebDriverWait(browser, 30).until(
        lambda _: refund.find_elements(By.CSS_SELECTOR, ".outcome .message")
    )
    assert said[0].text.startswith("Refunded "), said[0].text

    payment = _api(stack, f"/payments/{paid.payment_id}")
    assert (payment["state"], payment["refunded"]) == ("refunded", "1.00 EUR")
    refunds = _refunds_at_stripe(stack, paid.payment_intent_id)
    assert [r["amount"] for r in refunds] == [100]
    assert _csp_violations(browser) == []


# Each chart's datasets as Chart.js holds them, by the canvas's label.
_CHARTS = """
return Object.fromEntries([...document.querySelectorAll("#main canvas")].map((canvas) => [
  canvas.getAttribute("aria-label"),
  Chart.getChart(canvas).data.datasets.map((d) => ({ label: d.label, data: d.data })),
]));
"""


def _plotted(datasets: list[dict[str, Any]]) -> dict[str, float]:
    return {d["label"]: sum(d["data"]) for d in datasets}


def test_the_money_charts_plot_the_energy_reports_totals(
    stack: StackState, paid: Any, browser: webdriver.Chrome
) -> None:
    _sign_in(browser, stack, FIRST_ADMIN, _admin_password(stack))
    show(browser, "#/money")
    first, last = (browser.find_element(By.NAME, n).get_attribute("value") for n in ("from", "to"))
    charts = browser.execute_script(_CHARTS)

    days: list[dict[str, Any]] = []
    query = f"/reports/energy?from={first}&to={last}&limit=1000"
    answer = _api(stack, query)
    days.extend(answer["days"])
    while answer.get("next"):
        answer = _api(stack, f"{query}&next={urllib.parse.quote(answer['next'])}")
        days.extend(answer["days"])
    energy = sum(Decimal(str(d["energy_kwh"])) for d in days)
    revenue: dict[str, Decimal] = {}
    for d in days:
        currency = d["revenue"]["currency"]
        revenue[currency] = revenue.get(currency, Decimal(0)) + Decimal(d["revenue"]["amount"])
    assert energy >= 10 and revenue.get("EUR", 0) > 0  # at least the paid session's

    by_day_and_site = _plotted(charts["Energy per day and site, kWh"])
    assert sum(by_day_and_site.values()) == pytest.approx(float(energy))
    assert sum(_plotted(charts["Energy per site, kWh"]).values()) == pytest.approx(float(energy))
    by_currency = _plotted(charts["Revenue per day"])
    assert by_currency == pytest.approx({c: float(amount) for c, amount in revenue.items()})
    assert _csp_violations(browser) == []
