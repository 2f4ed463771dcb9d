"""What an error report (a debug page, a mail to ADMINS) may show of the settings and the environment."""
import re

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@host: the password part, whatever the setting or variable is called.
URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


class SecretsFilter(SafeExceptionReporterFilter):
    """Django's filter hides settings named like secrets (KEY, PASS, TOKEN...); connection strings are named
    *_URL and carry their password inside, so those names are hidden too, and any URL's password everywhere."""

    hidden_settings = re.compile(SafeExceptionReporterFilter.hidden_settings.pattern
                                 + "|DATABASE_URL|BROKER|RESULT_BACKEND|DSN", flags=re.IGNORECASE)

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        if isinstance(value, str):  # lazy strings (settings of other apps) pass as str, not to re
            text = str(value)
            masked = URL_PASSWORD.sub(rf"\g<head>{self.cleansed_substitute}@", text)
            return masked if masked != text else value
        return value
