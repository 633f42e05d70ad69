"""Browser tests: what a student sees in JupyterLab and an instructor in nbgrader's formgrader, in a real headless
Chromium (Debian's `chromium` + `chromium-driver`, driven by Selenium; no browser is ever downloaded).

Every test here is marked `live` and `browser`. Without chromium/chromedriver (or selenium) the tests skip with one
reason; in CI (CI=true) or with K8SLAB_REQUIRE_BROWSER=1 they fail instead. Servers listen on 127.0.0.1 only, on a
free port with a random token; the browser runs with its background networking off. Every wait is bounded.
Screenshots go to build/test-artifacts/browser/ (K8SLAB_ARTIFACTS overrides build/test-artifacts).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from browser_helpers import HERE, REPO, browser_binaries, skip_or_fail


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.live)
            item.add_marker(pytest.mark.browser)


# ------------------------------------------------------------------------------------------------ artifacts
@pytest.fixture(scope="session")
def artifacts() -> Path:
    base = Path(os.environ.get("K8SLAB_ARTIFACTS", REPO / "build" / "test-artifacts"))
    folder = base / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ------------------------------------------------------------------------------------------------ the browser
@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A headless Chromium (Selenium WebDriver) for the whole session."""
    found = browser_binaries()
    if isinstance(found, str):
        skip_or_fail(found)
    chromium, driver_path = found
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never downloads a driver or a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
                "--metrics-recording-only", "--no-pings", "--hide-scrollbars", "--lang=en-US",
                # loopback only: any other host name fails to resolve, so a page's outside request is never sent
                # (loopback_only below still reports that the page tried)
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request, for loopback_only
    if os.geteuid() == 0:  # Chromium's sandbox refuses to run as root (containers, CI)
        options.add_argument("--no-sandbox")
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
    except Exception as error:  # noqa: BLE001 -- the reason a browser cannot start, in one line
        skip_or_fail(f"Chromium did not start under chromedriver: {str(error).splitlines()[0]}")
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def loopback_only(request):
    """After each test: every request the page made went to 127.0.0.1 (or data:/blob: URLs), nothing else."""
    yield
    if "browser" not in request.fixturenames:
        return
    driver = request.getfixturevalue("browser")
    outside = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") not in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            continue
        url = message["params"].get("request", {}).get("url") or message["params"].get("url", "")
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in ("127.0.0.1", "localhost"):
            outside.add(url[:200])
    assert not outside, f"the page requested URLs beyond loopback (blocked here, but a workshop without internet " \
                        f"would wait on them): {sorted(outside)}"
