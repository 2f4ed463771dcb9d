import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_settings(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=full,
                          capture_output=True, text=True, check=False)


def test_it_requires_a_secret_key_when_debug_is_off():
    result = run_settings(DEBUG="0", DJANGO_SETTINGS_MODULE="annotate.settings")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr
    assert run_settings(DEBUG="0", SECRET_KEY="x" * 50, DJANGO_SETTINGS_MODULE="annotate.settings").returncode == 0


def test_it_fails_loudly_on_a_bad_boolean():
    result = run_settings(DEBUG="maybe", DJANGO_SETTINGS_MODULE="annotate.settings")
    assert result.returncode != 0 and "DEBUG='maybe' is not a boolean" in result.stderr


def test_embedded_mode_is_explicit(settings):
    from annotate.celery import app
    if settings.EMBEDDED_TASKS:
        assert app.conf.task_always_eager and settings.CELERY_BROKER_URL == "memory://"
    else:
        assert not app.conf.task_always_eager and settings.CELERY_BROKER_URL
