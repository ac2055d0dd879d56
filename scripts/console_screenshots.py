"""Screenshots of the operator console's main pages, for docs/console.md.

Signs the first admin in on a running local stack (`chargenet demo --keep` leaves one with a few
chargers, faults, sessions and payments), opens each page in headless Chromium (Debian's
`chromium` and `chromedriver`, as the browser tests use) once it has drawn its data, and saves
1280x800 PNGs, plus the fleet on a phone-sized screen. tests/integration/test_console_pages_browser.py
runs the same steps (`capture`) on the test stack.

    chargenet demo --keep                       # in one shell, or `chargenet local up` and data of your own
    .venv/bin/python scripts/console_screenshots.py [--home .local] [--out docs/console]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DESKTOP = (1280, 800)
PHONE = (390, 844)
# The fleet reads every charger's rows a page at a time: on a stack with hundreds of chargers the
# first draw takes a while.
PAGE_READY_S = 120
PAGES = ("fleet", "charger", "faults", "sessions", "money", "uptime", "operators", "audit")

# Counts the page's requests in flight and when the last one ended (installed once per page; the
# console calls the global fetch at each request, so it goes through this).
_TRACK_REQUESTS = """
if (!window.__requests) {
  window.__requests = { running: 0, endedAt: 0 };
  const send = window.fetch;
  window.fetch = (...args) => {
    window.__requests.running += 1;
    return send(...args).finally(() => {
      window.__requests.running -= 1;
      window.__requests.endedAt = Date.now();
    });
  };
}
window.__shownAt = Date.now();
if (location.hash === arguments[0]) {
  window.dispatchEvent(new HashChangeEvent("hashchange")); // drawn again, with fresh data
} else {
  location.hash = arguments[0];
}
"""

# True once the shown view has drawn: a request ended since it was opened and none has run for a
# moment, nothing says "Loading…", and every chart canvas holds its Chart.js chart.
_DRAWN = """
const requests = window.__requests;
if (requests.running > 0 || requests.endedAt < window.__shownAt || Date.now() - requests.endedAt < 500) {
  return false;
}
const main = document.getElementById("main");
if (!main.querySelector(".view h1")) { return false; }
if ([...main.querySelectorAll(".message")].some((m) => m.textContent.startsWith("Loading"))) { return false; }
return [...main.querySelectorAll("canvas")].every((c) => window.Chart && window.Chart.getChart(c));
"""


def chrome(width: int, height: int) -> webdriver.Chrome:
    """Headless Chromium at `width` x `height`, its console messages kept (CSP violations land there)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@contextmanager
def headless_chrome(width: int, height: int) -> Iterator[webdriver.Chrome]:
    """`chrome()`, quit when done."""
    driver = chrome(width, height)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: webdriver.Chrome, console_url: str, username: str, password: str) -> None:
    """The console, the stand-in login page, back on the console signed in."""
    driver.get(console_url)
    wait = WebDriverWait(driver, 30)
    wait.until(expected_conditions.url_contains("/local-login/oauth2/authorize"))
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "user-name"), username))


def show(driver: webdriver.Chrome, hash_route: str) -> None:
    """Opens a view (draws it again if it is shown) and waits until it has drawn its data."""
    driver.execute_script(_TRACK_REQUESTS, hash_route)
    WebDriverWait(driver, PAGE_READY_S, poll_frequency=0.2).until(lambda d: d.execute_script(_DRAWN))


def first_charger(driver: webdriver.Chrome) -> str:
    """The first charger the fleet page lists (the fleet must be shown)."""
    link = driver.find_element(By.CSS_SELECTOR, "#main table.data a[href^='#/charger/']")
    return str(link.text)


def capture(driver: webdriver.Chrome, out: Path, charger_id: str | None = None) -> list[Path]:
    """Every main page at desktop size, then the fleet at phone size, as PNGs in `out`.

    The operator must be signed in as an admin (the operators and audit pages are theirs).
    """
    out.mkdir(parents=True, exist_ok=True)
    viewport(driver, *DESKTOP)
    saved = []
    for page in PAGES:
        if page == "charger":
            show(driver, f"#/charger/{charger_id or first_charger(driver)}")
        else:
            show(driver, f"#/{page}")
        saved.append(_save(driver, out / f"{page}.png"))
    viewport(driver, *PHONE)
    show(driver, "#/fleet")
    saved.append(_save(driver, out / "fleet-phone.png"))
    viewport(driver, *DESKTOP)
    return saved


def viewport(driver: webdriver.Chrome, width: int, height: int) -> None:
    """The page's own area at `width` x `height` (the window's size includes its frame)."""
    driver.set_window_size(width, height)
    inner_width, inner_height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * width - inner_width, 2 * height - inner_height)


def _save(driver: webdriver.Chrome, target: Path) -> Path:
    driver.execute_script("window.scrollTo(0, 0); document.activeElement?.blur()")
    if not driver.save_screenshot(str(target)):
        raise RuntimeError(f"no screenshot for {target.name}")
    return target


def main(argv: list[str] | None = None) -> int:
    from chargenet_cli import local_env
    from chargenet_local.stack import FIRST_ADMIN, FIRST_ADMIN_PASSWORD_FILE, default_home

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--home", type=Path, default=default_home(), help="the local stack's home")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    parser.add_argument("--charger", help="the charger whose page is shown (default: the fleet's first)")
    args = parser.parse_args(argv)
    stack = local_env.connect(args.home)
    password = (Path(stack.home) / FIRST_ADMIN_PASSWORD_FILE).read_text().strip()
    with headless_chrome(*DESKTOP) as driver:
        sign_in(driver, stack.console_url, FIRST_ADMIN, password)
        for path in capture(driver, args.out, args.charger):
            print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
