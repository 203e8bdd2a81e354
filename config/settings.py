"""Django settings, driven by environment variables.

Two shapes of the same code:
- the embedded default (no variables set): SQLite file under ``var/``, a Celery broker kept in local
  files, DEBUG on, so one command brings up a working site on a bare machine;
- production: ``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` (Celery broker), ``DEBUG=0`` and a real
  ``SECRET_KEY`` (with DEBUG off the process refuses to start with no key, an empty or weak key, or
  the development key), served over HTTPS (``BEHIND_TLS_PROXY=1`` behind a TLS-terminating proxy),
  or, as an explicit trial only, over plain HTTP (``INSECURE_HTTP=1``).
"""

from __future__ import annotations

import os
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PREFLOOP_VAR_DIR", BASE_DIR / "var"))


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _run_defaults(raw: str) -> dict[str, object]:
    """``LOOP_RUN_DEFAULTS``: a JSON object of run options, checked against the one table the
    API uses (annotation/run_options.py is pure Python); a bad value stops the process."""
    import json

    from annotation.run_options import run_config_problem

    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise ImproperlyConfigured(f"LOOP_RUN_DEFAULTS is not JSON: {exc}") from None
    problem = run_config_problem(value)
    if problem is not None:
        raise ImproperlyConfigured(f"LOOP_RUN_DEFAULTS: {problem[1]}")
    return dict(value)


DEBUG = env_flag("DEBUG", default=True)

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"


def secret_key_problem(key: str) -> str | None:
    """Why ``key`` must not sign production sessions (Django's weak-key test, W009), or None."""
    if not key.strip():
        return "it is not set, or empty"
    if key == DEV_SECRET_KEY:
        return "it is the development key from the source code"
    if key.startswith(SECRET_KEY_INSECURE_PREFIX):
        return f"it is a development key ({SECRET_KEY_INSECURE_PREFIX}...)"
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return (
            f"it is too weak (under {SECRET_KEY_MIN_LENGTH} characters, or under "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones)"
        )
    return None


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not DEBUG and (_key_problem := secret_key_problem(SECRET_KEY)):
    raise ImproperlyConfigured(
        f"SECRET_KEY must be set to a private random value when DEBUG is off: {_key_problem}. "
        "Set SECRET_KEY in the environment (for docker compose: in .env), e.g. to the output of "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
if not SECRET_KEY.strip():
    SECRET_KEY = DEV_SECRET_KEY  # DEBUG on: the embedded default

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

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
    "drf_spectacular_sidecar",
    "axes",
    "annotation",
    "workers",  # no models: its management commands (simulate) drive the training stack
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "annotation.middleware.ContentSecurityPolicyMiddleware",
    # Text PostgreSQL cannot store (NUL) in query strings, forms, headers: a 400, not a 500.
    "annotation.boundary.TextBoundaryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused by the lockout into a 429 (annotation/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
# A connection lives 10 minutes: opening one (and preparing the hot path's statements on it)
# cost the request that did it 20-80 ms under load; at 60 s every web thread paid that once a
# minute (docs/architecture.md, "Tail latency").
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", 600))
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock at BEGIN, so two claims never interleave
    # (see annotation/services/assignment.py); WAL lets readers run beside the one writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not shared-cache memory, so concurrent test threads get real separate connections.
    _test_name = os.environ.get("TEST_DATABASE_NAME", "test")
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"{_test_name}.sqlite3")}
else:
    # Persistent connections; no per-request health-check round trip (a broken connection is
    # dropped by Django after the error and the next request opens a new one).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_flag("DB_HEALTH_CHECKS", default=False)
    # The labeling hot path's statements are prepared once per connection
    # (annotation/precompiled.py); the ORM's queries never are. Turn it off behind a pooler in
    # transaction mode that cannot keep prepared statements (PgBouncer < 1.21).
    if env_flag("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
    if os.environ.get("TEST_DATABASE_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Login throttling (django-axes, annotation/lockout.py). Every credential check (/login/,
# /admin/login/, /api/token/) calls authenticate(request, ...), whose first backend refuses an
# account, or an address, that failed LOGIN_FAILURE_LIMIT times within LOGIN_COOLOFF_SECONDS of
# its last failure. Attempts are rows in the database, shared by every web process.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", 10))
AXES_COOLOFF_TIME = timedelta(seconds=int(os.environ.get("LOGIN_COOLOFF_SECONDS", 15 * 60)))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME.total_seconds() < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_SECONDS must be at least 1.")
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each counted on its own
# A try while locked is refused but not counted, so the lockout ends when Retry-After says. A
# success does not reset the counts (else one known account would reset its address's count).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "annotation.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "annotation.lockout.lockout_response"
# Proxies in front of the app that append the client address to X-Forwarded-For. 0: the peer's
# address (REMOTE_ADDR) is the client's, and X-Forwarded-For, which anyone can send, is ignored.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", 0))
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Static files are served by the app itself (WhiteNoise), straight from the apps' static
# folders: no collectstatic step needed (it fills STATIC_ROOT if a proxy should serve them).
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at: .*static")
WHITENOISE_MAX_AGE = 3600
ARTIFACTS_DIR = Path(os.environ.get("ARTIFACTS_DIR", VAR_DIR / "artifacts"))
# Base models installed from Python packages (`manage.py base_model install NAME`).
MODELS_DIR = Path(os.environ.get("MODELS_DIR", VAR_DIR / "models"))

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Request bodies: JSONL uploads may be large; JSON API bodies may not.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_JSON_BODY_BYTES", 1_000_000))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5_000_000
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", 200_000_000))
# Imports (README "Working with data"). Text caps, in characters (a prompt: all its messages
# together; a response: each); a JSONL line longer than IMPORT_MAX_LINE_BYTES is refused while it
# is read. Uploads up to IMPORT_SYNC_MAX_BYTES are imported within the request (201); larger ones
# are stored under IMPORT_DIR, which the web and the cpu worker must share (the artifacts volume
# in docker-compose.yml), and imported by the cpu worker (202 and a job to poll).
PROMPT_MAX_CHARS = int(os.environ.get("PROMPT_MAX_CHARS", 100_000))
RESPONSE_MAX_CHARS = int(os.environ.get("RESPONSE_MAX_CHARS", 100_000))
IMPORT_MAX_LINE_BYTES = int(os.environ.get("IMPORT_MAX_LINE_BYTES", 4_000_000))
IMPORT_SYNC_MAX_BYTES = int(os.environ.get("IMPORT_SYNC_MAX_BYTES", 100_000))
IMPORT_DIR = Path(os.environ.get("IMPORT_DIR", ARTIFACTS_DIR / "imports"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "annotation.api.scoping.ProjectScopePermission",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.api.exceptions.exception_handler",
    # DRF's parsers plus the check for NUL, lone surrogates and deep nesting in every body.
    "DEFAULT_PARSER_CLASSES": [
        "annotation.api.parsers.JSONParser",
        "annotation.api.parsers.FormParser",
        "annotation.api.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}

# JSON only in production: the browsable API's pages carry inline styles that the
# Content-Security-Policy forbids (annotation/middleware.py). Kept for development (DEBUG on).
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"] + (
    ["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []
)
# /api/schema/ and /api/docs/ for anyone (the default: they describe this open-source code, no
# data), or, with 0, for logged-in users and token holders only (annotation/api/root.py).
API_DOCS_PUBLIC = env_flag("API_DOCS_PUBLIC", default=True)

SPECTACULAR_SETTINGS = {
    "TITLE": "prefloop API",
    "DESCRIPTION": "Projects, prompts, tasks, assignments and judgments of human preference data.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ModelKindEnum": "annotation.models.ModelKind",
        "TaskKindEnum": "annotation.models.TaskKind",
        # Training runs and import jobs share one set of states (queued ... failed).
        "JobStatusEnum": "annotation.models.RunStatus",
        "AiTrainingEnum": "annotation.models.AITraining",
        "AiTrainingSettingEnum": [("human", "human"), ("ai", "ai"), ("both", "both")],
    },
}

# Cache shared by web processes and workers (dashboards computed by a worker are read by the
# web): Redis when REDIS_URL is set, otherwise files under var/ (the embedded default).
_CACHE_URL = os.environ.get("CACHE_URL", os.environ.get("REDIS_URL", ""))
if os.environ.get("CACHE_URL", "").startswith("locmem"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif _CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _CACHE_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "prefloop"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# Celery: Redis when REDIS_URL is set; otherwise a broker kept in local files (no server).
# Long-task settings (docs/operations.md): a message is acknowledged only after its task finished
# (acks_late), a worker takes one message at a time (prefetch 1), a task whose worker died is
# re-queued, and the broker's visibility timeout is longer than the longest cycle so a message is
# not handed to a second worker while the first still runs it.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", None)
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", 6 * 3600))  # hard
CELERY_TASK_SOFT_TIME_LIMIT = int(
    os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", CELERY_TASK_TIME_LIMIT - 300)
)
BROKER_VISIBILITY_TIMEOUT = int(
    os.environ.get("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT + 1800)
)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
    # How often a worker sweeps for messages whose worker died (seconds = interval * throttle).
    "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", 10)),
    "unacked_restore_throttle": int(os.environ.get("CELERY_UNACKED_RESTORE_THROTTLE", 10)),
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # keep retrying while Redis restarts
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BEAT_SCHEDULE = {
    "retrain-policy": {"task": "loop.policy_tick", "schedule": 60.0, "options": {"expires": 55}},
    "dashboards": {
        "task": "insight.refresh_stale",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    "expired-leases": {"task": "leases.expire_stale", "schedule": 60.0, "options": {"expires": 55}},
}
# Where cycles write model artifacts (a volume in docker-compose.yml).
LOOP_ARTIFACTS_DIR = Path(os.environ.get("LOOP_ARTIFACTS_DIR", ARTIFACTS_DIR))
# Run options (annotation/run_options.py) every cycle on this site starts from, as JSON; a run's
# own config overrides them. scripts/run.sh sizes the embedded default's cycles for a CPU here.
LOOP_RUN_DEFAULTS = _run_defaults(os.environ.get("LOOP_RUN_DEFAULTS", ""))

# Security headers (production values; harmless in development).
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Transport (README "Production"). DEBUG off means HTTPS: Secure cookies, HSTS, plain HTTP
# redirected to https. BEHIND_TLS_PROXY=1: a proxy in front terminates TLS and sets
# X-Forwarded-Proto (overwriting what a client sent); without it the header is not trusted.
# INSECURE_HTTP=1 is the explicit opt-in to a plain-HTTP trial reachable from other hosts: cookies
# not Secure (a browser drops Secure cookies over http, so no login, no CSRF token), no redirect,
# no HSTS; `check --deploy` warns about each of these, as it should.
INSECURE_HTTP = env_flag("INSECURE_HTTP", default=False)
BEHIND_TLS_PROXY = env_flag("BEHIND_TLS_PROXY", default=False)
if INSECURE_HTTP and BEHIND_TLS_PROXY:
    raise ImproperlyConfigured(
        "INSECURE_HTTP=1 (plain HTTP) and BEHIND_TLS_PROXY=1 (HTTPS at a proxy) contradict each "
        "other: set one of them."
    )
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG and not INSECURE_HTTP:
    SECURE_SSL_REDIRECT = env_flag("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]  # the container health check speaks plain HTTP
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
if INSECURE_HTTP and not CSRF_TRUSTED_ORIGINS:
    # The origins a browser shows for the allowed host names, on port 80 and on WEB_PORT.
    _ports = ["", f":{os.environ.get('WEB_PORT', '8000')}"]
    CSRF_TRUSTED_ORIGINS = [
        f"http://{'*' if host.startswith('.') else ''}{host}{port}"
        for host in ALLOWED_HOSTS
        if host != "*"
        for port in _ports
    ]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
