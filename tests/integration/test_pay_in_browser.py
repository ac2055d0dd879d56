"""A driver pays through the link in a real headless Chromium, against the local stack.

Pay page -> Pay by card -> the local hosted page, test card typed in -> the session page ->
the charger starts (RemoteStartTransaction) -> energy rises on the page -> Stop -> the
receipt shows the amount captured, and the payment provider holds exactly that capture.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.conftest import RawCharger, eventually
from tests.integration.payment_flow import TEST_CARD, Charger, api_key, assign_tariff, captured_payment, stamp

# Debian's packages (`make deps` installs them): no browser download at test time.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=412,915"):
        options.add_argument(flag)  # a phone-sized window: the pages are mobile-first
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def meter(tx: int, at: datetime, wh: int) -> dict:
    value = {"timestamp": stamp(at), "sampledValue": [{"value": str(wh)}]}
    return {"connectorId": 1, "transactionId": tx, "meterValue": [value]}


def energy_shown(driver: webdriver.Chrome) -> float:
    driver.refresh()
    found = re.search(r"([\d.]+) kWh", driver.find_element(By.TAG_NAME, "body").text)
    return float(found.group(1)) if found else 0.0


def test_a_driver_pays_by_card_in_the_browser_and_exactly_the_session_is_captured(
    stack, new_charger, browser
) -> None:
    credentials = new_charger()
    charger_id = credentials.charger_id
    assign_tariff(charger_id)
    wait = WebDriverWait(browser, 60)

    async def drive() -> str:
        async with RawCharger(credentials) as link:
            charger = Charger(link)
            await charger.status("Preparing", datetime.now(UTC))
            pay_page = f"{stack.api_url}/pay/{charger_id}/1"
            await asyncio.to_thread(eventually, lambda: "<form" in requests.get(pay_page, timeout=30).text)

            def pay() -> str:
                browser.get(pay_page)
                body = browser.find_element(By.TAG_NAME, "body").text
                assert "0.50 EUR/kWh incl. 25% VAT" in body and "50.00 EUR" in body  # price and hold
                browser.find_element(By.CSS_SELECTOR, "button[value=card]").click()
                wait.until(expected_conditions.url_contains(stack.checkout_url))
                for field, value in TEST_CARD.items():
                    box = browser.find_element(By.NAME, field)
                    box.clear()
                    box.send_keys(value)
                browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
                wait.until(expected_conditions.url_contains("/session/"))
                return browser.current_url

            session_url = await asyncio.to_thread(pay)
            start = await charger.expect_call("RemoteStartTransaction", {"status": "Accepted"})
            t0 = datetime.now(UTC) - timedelta(minutes=30)
            started = await charger.call(
                "StartTransaction",
                {"connectorId": 1, "idTag": start["idTag"], "meterStart": 0, "timestamp": stamp(t0)},
            )
            tx = started["transactionId"]
            await charger.status("Charging", t0)
            shown = []
            for minutes, wh in ((10, 3000), (20, 6000)):
                await charger.call("MeterValues", meter(tx, t0 + timedelta(minutes=minutes), wh))
                shown.append(await asyncio.to_thread(eventually, lambda: energy_shown(browser) or None))
            assert shown[1] > shown[0] > 0  # the driver watches the energy rise

            await asyncio.to_thread(lambda: browser.find_element(By.CSS_SELECTOR, "button.stop").click())
            assert await charger.expect_call("RemoteStopTransaction", {"status": "Accepted"}) == {
                "transactionId": tx
            }
            end = t0 + timedelta(minutes=30)
            await charger.call(
                "StopTransaction", {"transactionId": tx, "meterStop": 10000, "timestamp": stamp(end)}
            )
            await charger.status("Available", end + timedelta(seconds=1))
            return session_url

    session_url = asyncio.run(drive())
    payment = captured_payment(session_url)

    def receipt() -> str | None:
        browser.get(session_url)
        text = browser.find_element(By.TAG_NAME, "body").text
        return text if "Receipt" in text else None

    text = eventually(receipt, timeout=60)
    assert "Amount charged: 5.63 EUR" in text  # 0.50 + 10 kWh x 0.40, plus 25% VAT
    intent = requests.get(
        f"{stack.stripe_api_base}/v1/payment_intents/{payment.payment_intent_id}",
        auth=(api_key(stack), ""),
        timeout=30,
    ).json()
    assert payment.captured_minor == 563
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 563)
