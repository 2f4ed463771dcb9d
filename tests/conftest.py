import os
from pathlib import Path

import pytest

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
    return annotator_create(username="bob", password="bob-pw").user


@pytest.fixture
def write_lines(tmp_path):
    def write(lines, name="input.jsonl"):
        path = tmp_path / name
        data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
        path.write_bytes(data)
        return path
    return write
