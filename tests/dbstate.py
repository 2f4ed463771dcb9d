"""A fingerprint of every labeling table, to prove a failed import left the database exactly as it was."""
import hashlib

from django.apps import apps


def snapshot():
    state = {}
    for model in apps.get_app_config("labeling").get_models():
        rows = list(model.objects.order_by("pk").values_list())
        state[model.__name__] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return state
