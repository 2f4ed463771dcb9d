"""Who may see the admins' own pages (dashboard, rounds) outside the Django admin."""
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def admin_required(view):
    """Anonymous visitors go to the login page; logged-in annotators get 403 (they are not lost, just not admins)."""
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)
    return wrapper
