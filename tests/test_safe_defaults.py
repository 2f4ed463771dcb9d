"""Safe when nobody configured anything: error reports hide secrets, the demo's known passwords need DEBUG."""
import io
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

# A report shows the source lines around each frame: the password is spelled out here only, far from any frame.
SECRET = "hunter" + "2"
BROKER = f"redis://:{SECRET}-broker@redis.internal:6379/0"
DATABASE = f"postgres://stepwise:{SECRET}-db@db.internal:5432/stepwise"
GENERATOR = f"https://user:{SECRET}-anywhere@models.internal/gen"


def report(settings, monkeypatch):
    settings.DEBUG = True
    settings.CELERY_BROKER_URL = BROKER
    settings.CELERY_RESULT_BACKEND = BROKER
    settings.STEPWISE_GENERATOR = GENERATOR  # any URL in any setting
    monkeypatch.setenv("DATABASE_URL", DATABASE)
    # runserver hands the process environment to requests: it lands in request.META and so in the report.
    request = RequestFactory().get("/label/", DATABASE_URL=DATABASE, CELERY_BROKER_URL=BROKER)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        reporter = ExceptionReporter(request, *sys.exc_info())
    return reporter.get_traceback_html() + reporter.get_traceback_text()


def test_it_masks_passwords_in_error_reports(settings, monkeypatch):
    text = report(settings, monkeypatch)
    assert "boom" in text and "CELERY_BROKER_URL" in text and "STEPWISE_GENERATOR" in text
    assert SECRET not in text
    assert "models.internal" in text  # the URL stays readable, only its password goes


@pytest.mark.django_db
def test_it_refuses_the_demo_logins_outside_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=1.*--allow-demo-passwords"):
        call_command("load_demo", stdout=io.StringIO())
    assert not get_user_model().objects.filter(username__in=("admin", "annotator")).exists()

    call_command("load_demo", "--allow-demo-passwords", stdout=io.StringIO())
    assert get_user_model().objects.filter(username__in=("admin", "annotator")).count() == 2
