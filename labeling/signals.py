"""An API token dies with the password it was granted for, and with a logout."""
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save

from labeling.services.annotation.accounts import tokens_revoke


def connect():
    post_save.connect(_password_changed, sender=settings.AUTH_USER_MODEL, dispatch_uid="stepwise-password-token")
    user_logged_out.connect(_logged_out, dispatch_uid="stepwise-logout-token")


def _password_changed(sender, instance, created, **kwargs):
    # set_password() keeps the raw password in `_password` until save() has passed it to the validators; a
    # hasher upgrade at login clears it before saving, so only a real change (admin form, changepassword,
    # any set_password + save) gets here.
    if not created and getattr(instance, "_password", None) is not None:
        tokens_revoke(user=instance)


def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        tokens_revoke(user=user)
