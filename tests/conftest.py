import os
from pathlib import Path

import pytest

# Helper modules that assert on a test's behalf: their failures explain themselves as a test's own do.
pytest.register_assert_rewrite("tests.api_client", "tests.label_page_ui")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_report_header(config):
    from django.conf import settings
    return f"stepwise database: {settings.DATABASES['default']['ENGINE']}"


@pytest.fixture(autouse=True, scope="session")
def _database_is_the_one_asked_for(django_db_blocker):
    """`make test` says which database it means; a silent fallback would fake the PostgreSQL run."""
    wanted = os.environ.get("STEPWISE_REQUIRE_DB")
    if wanted:
        from django.db import connection
        assert connection.vendor == wanted, f"tests asked for {wanted} but run on {connection.vendor}"


@pytest.fixture(autouse=True)
def _throttles_start_afresh():
    """DRF throttles count requests in the cache, which outlives a test's transaction: each test starts at 0
    (django-axes keeps its failures in the database, rolled back with the test)."""
    from django.core.cache import cache
    cache.clear()


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def postgres():
    from django.db import connection
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of `make test`)")
    return connection


@pytest.fixture
def alice(db, django_user_model):
    """An admin."""
    return django_user_model.objects.create_user("alice", password="alice-pw", is_staff=True, is_superuser=True)


@pytest.fixture
def bob(db, django_user_model):
    """An annotator."""
    from labeling.services.annotation.accounts import annotator_create
    return annotator_create(username="bob", password="bob-pw-long-enough").user


@pytest.fixture
def carol(db, django_user_model):
    """Staff without permissions: she may log in to the admin and is refused everything in it and ours."""
    return django_user_model.objects.create_user("carol", password="carol-pw", is_staff=True)


@pytest.fixture
def as_bob(bob):
    """bob's token client for the JSON API."""
    from tests.api_client import api_as
    return api_as(bob)


@pytest.fixture
def fast_passwords(settings):
    """bob's password is hashed once per test: a fast hasher keeps 50 tests from taking 20 s."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, one per test module (see tests/browser.py)."""
    from tests.browser import chromium
    yield from chromium()


@pytest.fixture
def By():
    from selenium.webdriver.common.by import By
    return By


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Call a service, then run what it sends on commit (a test's transaction never commits) as a commit
    would; return its row (a round, a job) as the database has it afterwards."""
    def run(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            row = service(**kwargs)
        row.refresh_from_db()
        return row
    return run


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models gain nothing from threads; on a shared 2-core machine a second thread waiting on busy
    cores made each forward pass ~10x slower and each training step up to 50x."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write_lines(tmp_path):
    def write(lines, name="input.jsonl"):
        path = tmp_path / name
        data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
        path.write_bytes(data)
        return path
    return write
