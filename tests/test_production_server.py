"""The app as production serves it: gunicorn with DEBUG=0, the static files collected and gzipped by whitenoise,
the Content-Security-Policy on; in real Chromium the labeling page renders its math and the console stays clean."""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from labeling.models import Round
from tests.browser import log_in, wait_until
from tests.label_page_ui import make_task, ready

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.django_db(transaction=True)  # gunicorn reads only committed rows
PASSWORD = "served-by-gunicorn-7"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "TEST_DATABASE_NAME")}
    return {**env, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1", **extra}


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """What `make serve` does first: collectstatic, KaTeX included, gzipped."""
    root = tmp_path_factory.mktemp("staticfiles")
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, check=True,
                   env=production_env(STATIC_ROOT=str(root)), timeout=300)
    assert (root / "katex" / "katex.min.css.gz").exists() and (root / "labeling" / "label.js.gz").exists()
    return root


@pytest.fixture
def gunicorn(postgres, transactional_db, static_root, tmp_path):
    """gunicorn on a free port against the test database (its name, through DATABASE_URL)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    url = f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    port, log = free_port(), tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "annotate.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--threads", "4", "--no-control-socket"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env=production_env(DATABASE_URL=url, STATIC_ROOT=str(static_root)))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/login/", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def get(url, **headers):
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)
    except urllib.error.HTTPError as answer:
        return answer


def console_errors(browser):
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def with_password(user):
    """Logins through the form, with a password of this file's own (the personas' may change)."""
    user.set_password(PASSWORD)
    user.save()
    return user


def test_it_serves_the_labeling_page_with_debug_off_math_rendered_and_the_csp_on(browser, gunicorn, bob, By):
    ready(with_password(bob))
    make_task()
    browser.get_log("browser")  # what earlier pages left
    log_in(browser, gunicorn, "bob", PASSWORD)
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#steps .katex"), message="no KaTeX rendered")
    assert browser.find_elements(By.CSS_SELECTOR, "#problem .katex")
    assert browser.find_elements(By.CSS_SELECTOR, "#steps .katex-display")
    # KaTeX's own stylesheet and fonts arrived: its hidden MathML is visually hidden, the glyphs use KaTeX fonts.
    assert browser.execute_script(
        "return getComputedStyle(document.querySelector('#problem .katex-mathml')).position") == "absolute"
    assert browser.execute_script("return document.fonts.check('12px KaTeX_Main')")
    assert console_errors(browser) == []

    session = browser.get_cookie("sessionid")["value"]
    page = get(browser.current_url, Cookie=f"sessionid={session}")
    assert page.status == 200 and b'id="label-app"' in page.read()
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy

    css = get(f"{gunicorn}/static/katex/katex.min.css", **{"Accept-Encoding": "gzip"})
    assert css.status == 200 and css.headers["Content-Encoding"] == "gzip"
    assert get(f"{gunicorn}/favicon.ico").status == 200
    missing = get(f"{gunicorn}/no-such-page/")
    assert missing.status == 404 and b"URLconf" not in missing.read()  # DEBUG is off: no URL list
    browser.get("about:blank")


def test_the_admin_pages_work_under_the_csp(browser, gunicorn, alice, By):
    with_password(alice)
    round_ = Round.objects.create(number=7)
    browser.get_log("browser")
    log_in(browser, gunicorn, "alice", PASSWORD, next_path="/admin/")
    for path in ("/admin/", "/admin/labeling/job/", "/admin/labeling/export/", "/admin/labeling/round/",
                 "/dashboard/", "/rounds/"):
        browser.get(gunicorn + path)
        assert "Server Error" not in browser.title, path
        assert console_errors(browser) == [], path
    # The round's progress bar is filled by a static script polling the admin API: it ran, and fetch was allowed.
    browser.get(f"{gunicorn}/admin/labeling/round/{round_.pk}/change/")
    wait_until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#round-progress .label").text.startswith(
        round_.status), message="the round's progress script did not run")
    assert console_errors(browser) == []
    # The admin's own styles loaded (a static file, like ours): its header is styled.
    assert browser.execute_script("return getComputedStyle(document.getElementById('header')).display") == "flex"
    browser.get("about:blank")
