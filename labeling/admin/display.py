"""Small display helpers shared by the admin pages."""
from django.utils.html import format_html
from django.utils.text import Truncator


def short(text, n=80):
    return Truncator(text or "").chars(n)


def progress_html(value, status, label=""):
    # data-status lets the change lists' script reload while anything is pending or running.
    return format_html('<progress max="1" value="{}" data-status="{}"></progress> {}% {}', value, status,
                       round(value * 100), label)
