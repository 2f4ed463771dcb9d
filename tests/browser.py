"""Headless Chromium for the UI tests: Debian's chromium and chromedriver, a throwaway profile, no network."""
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
KATEX = Path(__file__).resolve().parents[1] / "node_modules" / "katex" / "dist" / "katex.min.js"
WAIT_S = 10


def missing():
    """Why the browser tests cannot run here, or None."""
    for path, fix in ((CHROMIUM, "apt-get install chromium (or `make browser`)"),
                      (CHROMEDRIVER, "apt-get install chromium-driver (or `make browser`)")):
        if not Path(path).exists():
            return f"{path} is missing: {fix}"
    if not KATEX.exists():
        return f"{KATEX} is missing: run `npm ci` (or `make install`)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -r requirements.txt"
    return None


def chromium():
    """Yield a headless Chromium driver; its profile is deleted afterwards."""
    reason = missing()
    if reason:
        pytest.skip(f"!!! BROWSER TESTS SKIPPED: {reason} !!!")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="stepwise-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1200,1000", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    # The console (errors, CSP violations) can be read with driver.get_log("browser").
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    # Any alert() would block the page; record them instead so a test can assert there were none.
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
        "window.__alerts = [];"
        "for (const name of ['alert', 'confirm', 'prompt'])"
        "  window[name] = (msg) => { window.__alerts.push(String(msg)); return null; };")})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(driver, condition, timeout=WAIT_S, message=""):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, message)


def log_in(driver, base_url, username, password, next_path="/label/"):
    """Through the real login form, as a person would."""
    from selenium.webdriver.common.by import By
    driver.delete_all_cookies()
    driver.get(f"{base_url}/login/?next={next_path}")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_until(driver, lambda d: "/login/" not in d.current_url, message="login did not leave the login page")
