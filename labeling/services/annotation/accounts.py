"""Logins: admins and annotators. Every annotator has a stable labeler UUID."""
from django.contrib.auth import get_user_model
from django.db import transaction

from labeling.models import Annotator


@transaction.atomic
def annotator_create(*, username, password, admin=False) -> Annotator:
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValueError(f"user {username!r} already exists")
    user = User.objects.create_user(username, password=password, is_staff=admin, is_superuser=admin)
    return Annotator.objects.create(user=user)
