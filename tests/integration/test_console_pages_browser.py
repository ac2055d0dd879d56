"""The operator console in headless Chromium on the real local stack, continued (issue 19's list):
the fleet page shows exactly what /ops/v1/fleet/health returns for a site; a viewer is offered no
action and a request forced from their page is refused and changes nothing; signing out makes the
API refuse the page's old token; operator- and charger-entered text shows as text, never markup;
screenshots of every main page (the steps of scripts/console_screenshots.py).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from chargenet_local.stack import FIRST_ADMIN, StackState
from chargenet_shim.credentials import ChargerCredentials
from scripts.console_screenshots import PAGE_READY_S, PAGES, capture, headless_chrome, show
from tests.integration.conftest import eventually
from tests.integration.test_console_browser import (
    PASSWORD,
    _admin_password,
    _api,
    _boot,
    _csp_violations,
    _in_row,
    _operator,
    _row_of,
    _sign_in,
    _status,
    _wait_text,
)

IMG_PAYLOAD = "<img src=x onerror=window.__xss=1>"
SCRIPT_PAYLOAD = "<script>window.__xss=2</script>"

# The page's own access token, from the console's auth module (the same module instance the
# console imported: one per URL), never from web storage.
_PAGE_TOKEN = """
const done = arguments[arguments.length - 1];
import("/console/assets/auth.js").then((auth) => done(auth.accessToken()), (error) => done(String(error)));
"""

# A request the console would not offer, sent from the page with the page's token.
_FORCED_REQUEST = """
const [method, route, body, done] = arguments;
(async () => {
  const auth = await import("/console/assets/auth.js");
  const answer = await fetch(`/ops/v1${route}`, {
    method,
    headers: { Authorization: `Bearer ${auth.accessToken()}`, "Content-Type": "application/json" },
    body: body === null ? undefined : JSON.stringify(body),
  });
  return { status: answer.status, body: await answer.text() };
})().then(done, (error) => done({ status: -1, body: String(error) }));
"""


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chrome(1280, 900) as driver:
        yield driver


# ---------------------------------------------------------------- helpers


def _page_token(driver: webdriver.Chrome) -> str:
    token = str(driver.execute_async_script(_PAGE_TOKEN))
    assert token.startswith("eyJ"), token
    return token


def _as(stack: StackState, token: str, path: str) -> tuple[int, Any]:
    """GET on the operator API with `token` (the signed-in page's): its status and answer."""
    request = urllib.request.Request(
        f"{stack.operator_api_url}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _every_page(stack: StackState, token: str, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_cursor = ""
    while True:
        query = f"&next={urllib.parse.quote(next_cursor)}" if next_cursor else ""
        status, answer = _as(stack, token, f"{path}?limit=25{query}")
        assert status == 200, answer
        items.extend(answer["items"])
        next_cursor = answer.get("next") or ""
        if not next_cursor:
            return items


def _visible_buttons(driver: webdriver.Chrome) -> list[str]:
    return [b.text for b in driver.find_elements(By.CSS_SELECTOR, "#main button") if b.is_displayed()]


def _headers(driver: webdriver.Chrome) -> list[str]:
    return [str(th.get_attribute("textContent")) for th in driver.find_elements(By.CSS_SELECTOR, "#main th")]


def _no_markup_ran(driver: webdriver.Chrome) -> None:
    assert driver.execute_script("return window.__xss === undefined")
    assert driver.find_elements(By.CSS_SELECTOR, "#main img, #main script") == []
    assert _csp_violations(driver) == []


# ---------------------------------------------------------------- the fleet against the API

# The charger rows of the fleet page as shown: id, link, connector badges.
_FLEET_ROWS = """
const heading = [...document.querySelectorAll("#main section.panel h2")].find((h) => h.textContent === "Chargers");
return [...heading.parentElement.querySelectorAll("table.data tbody tr")].map((tr) => ({
  charger_id: tr.cells[0].textContent,
  link: tr.cells[2].textContent,
  connectors: [...tr.cells[3].querySelectorAll(".badge")].map((b) => b.textContent).sort(),
}));
"""


def _api_rows(rows: list[dict[str, Any]], site: str) -> list[dict[str, Any]]:
    """fleet/health rows as the page shows them (connector 0 is the charger, not a connector)."""
    return sorted(
        (
            {
                "charger_id": r["charger_id"],
                "link": "online" if r["online"] else "offline",
                "connectors": sorted(f"{c}: {s}" for c, s in r["connectors"].items() if c != "0"),
            }
            for r in rows
            if r["site_id"] == site
        ),
        key=lambda r: r["charger_id"],
    )


def test_the_fleet_page_shows_exactly_the_chargers_and_states_the_api_returns(
    stack: StackState, new_charger: Callable[..., ChargerCredentials], browser: webdriver.Chrome
) -> None:
    site = f"SITE-FLEET-{uuid.uuid4().hex[:6]}"
    two_connectors, faulted, silent = (new_charger(site=site) for _ in range(3))
    _boot(two_connectors, _status(1, "Available"), _status(2, "Charging"))
    _boot(faulted, _status(1, "Faulted", "GroundFailure"))
    ids = {c.charger_id for c in (two_connectors, faulted, silent)}

    _sign_in(browser, stack, FIRST_ADMIN, _admin_password(stack))
    token = _page_token(browser)

    def same_on_page_and_api() -> bool:
        # The page is drawn again each attempt: a state that changed between the page's read and
        # the API's (a link going offline) is compared again, never excused.
        show(browser, "#/fleet")
        Select(browser.find_element(By.NAME, "site")).select_by_value(site)
        shown = sorted(browser.execute_script(_FLEET_ROWS), key=lambda r: r["charger_id"])
        expected = _api_rows(_every_page(stack, token, "/fleet/health"), site)
        return shown == expected and {r["charger_id"] for r in shown} == ids

    eventually(same_on_page_and_api, timeout=PAGE_READY_S, interval=1)
    rows = {r["charger_id"]: r for r in browser.execute_script(_FLEET_ROWS)}
    assert rows[two_connectors.charger_id]["connectors"] == ["1: Available", "2: Charging"]
    assert rows[faulted.charger_id]["connectors"] == ["1: Faulted"]
    assert rows[silent.charger_id]["connectors"] == []
    assert _csp_violations(browser) == []


# ---------------------------------------------------------------- a viewer


def test_a_viewer_is_offered_no_action_and_a_forced_request_is_refused(
    stack: StackState, new_charger: Callable[..., ChargerCredentials], browser: webdriver.Chrome
) -> None:
    credentials = new_charger()
    charger_id = credentials.charger_id
    _boot(credentials, _status(1, "Faulted", "GroundFailure"))
    fault = eventually(
        lambda: next(
            (f for f in _api(stack, "/faults?open=true&limit=200")["items"] if f["charger_id"] == charger_id),
            None,
        )
    )
    viewer = _operator(stack, "viewer")
    _sign_in(browser, stack, viewer, PASSWORD)

    show(browser, f"#/charger/{charger_id}")
    _wait_text(browser, "GroundFailure")
    assert browser.find_elements(By.CSS_SELECTOR, "#main form") == []
    assert _visible_buttons(browser) == []
    show(browser, "#/faults")
    eventually(lambda: _row_of(browser, charger_id), timeout=15)
    assert "Action" not in _headers(browser) and browser.find_elements(By.CSS_SELECTOR, "#main details") == []
    assert _visible_buttons(browser) == []
    show(browser, "#/sessions")
    WebDriverWait(browser, 30).until(lambda d: "Payments" in d.find_element(By.ID, "main").text)
    assert "Refund" not in _headers(browser)
    assert set(_visible_buttons(browser)) <= {"More"}  # paging a listing changes nothing

    reset = {"action": "Reset", "payload": {"type": "Soft"}}
    forced = [
        ("POST", f"/chargers/{charger_id}/commands", reset),
        ("POST", f"/faults/{fault['fault_id']}/ack", {"note": "forced"}),
        ("POST", "/refunds", {"session_id": "no-such-session", "request_id": uuid.uuid4().hex}),
    ]
    for method, route, body in forced:
        answer = browser.execute_async_script(_FORCED_REQUEST, method, route, body)
        assert answer["status"] == 403, (route, answer)
        assert json.loads(answer["body"])["error"] == "forbidden"

    assert _api(stack, f"/chargers/{charger_id}/commands")["items"] == []
    after = _api(stack, f"/faults/{fault['fault_id']}")
    assert (after["state"], after.get("acknowledged_by")) == ("open", None)
    assert _csp_violations(browser) == []


# ---------------------------------------------------------------- signing out


def test_after_signing_out_the_api_refuses_the_pages_old_token(
    stack: StackState, browser: webdriver.Chrome
) -> None:
    # A dedicated operator: signing out may end every session of the account, and the first
    # admin's is the one the other tests' CLI calls use.
    technician = _operator(stack, "technician")
    _sign_in(browser, stack, technician, PASSWORD)
    token = _page_token(browser)
    assert _as(stack, token, "/whoami")[0] == 200

    browser.find_element(By.ID, "sign-out").click()
    # Out of the console: the stand-in login page asks for a password again.
    WebDriverWait(browser, 30).until(expected_conditions.url_contains("/local-login/oauth2/authorize"))
    status, answer = _as(stack, token, "/whoami")
    assert status == 401, answer


# ---------------------------------------------------------------- escaping


def test_entered_text_with_markup_shows_as_text_and_never_runs(
    stack: StackState, new_charger: Callable[..., ChargerCredentials], browser: webdriver.Chrome
) -> None:
    credentials = new_charger()
    charger_id = credentials.charger_id
    # Charger-entered text: the status's free-text info and vendor error code (OCPP: 50 characters).
    faulted = {
        **_status(1, "Faulted", "OtherError"),
        "info": IMG_PAYLOAD,
        "vendorErrorCode": SCRIPT_PAYLOAD,
    }
    _boot(credentials, faulted)
    _sign_in(browser, stack, FIRST_ADMIN, _admin_password(stack))

    show(browser, f"#/charger/{charger_id}")
    _wait_text(browser, f"{IMG_PAYLOAD} {SCRIPT_PAYLOAD}")
    _no_markup_ran(browser)

    # Operator-entered text: an acknowledgement note, shown on the audit trail.
    note = f"{IMG_PAYLOAD} {SCRIPT_PAYLOAD} {uuid.uuid4().hex[:6]}"
    show(browser, "#/faults")
    eventually(lambda: _row_of(browser, charger_id), timeout=15)
    _wait_text(browser, SCRIPT_PAYLOAD)  # the vendor error code in the fault's row

    def acknowledge(row: WebElement) -> None:
        browser.execute_script("arguments[0].open = true", row.find_element(By.TAG_NAME, "details"))
        box = row.find_element(By.NAME, "note")
        box.clear()
        box.send_keys(note)
        next(b for b in row.find_elements(By.TAG_NAME, "button") if b.text == "Acknowledge").click()

    _in_row(browser, charger_id, acknowledge)
    _wait_text(browser, "Acknowledge: done.")
    show(browser, "#/audit")
    _wait_text(browser, note)
    _no_markup_ran(browser)


# ---------------------------------------------------------------- screenshots


def test_screenshots_of_every_main_page(
    stack: StackState,
    new_charger: Callable[..., ChargerCredentials],
    browser: webdriver.Chrome,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    credentials = new_charger(site="SITE-SHOTS")
    _boot(credentials, _status(1, "Available"), _status(2, "Faulted", "GroundFailure"))
    _sign_in(browser, stack, FIRST_ADMIN, _admin_password(stack))
    out = tmp_path_factory.getbasetemp() / "console-screenshots"

    saved = capture(browser, out, credentials.charger_id)

    assert [p.stem for p in saved] == [*PAGES, "fleet-phone"]
    for picture in saved:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture
    assert _csp_violations(browser) == []
