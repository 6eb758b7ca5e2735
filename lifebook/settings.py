"""Lifebook settings: one file, every value from the environment.

Defaults are the *embedded* configuration used by `make run` and a plain
`make test`: SQLite and a Celery transport in `var/`, no servers needed.
Production sets DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY, ALLOWED_HOSTS,
LIFEBOOK_HTTPS and the storage variables (see README, "Settings").
"""

import secrets
from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
VAR_DIR = Path(env("LIFEBOOK_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key_from_var() -> str:
    """A random key generated once and kept in var/, so sessions survive restarts."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY", default=None) or _secret_key_from_var()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served locally (no CDN)
    "axes",
    "django_sendfile",
    "django_htmx",
    "csp",  # django-csp: its system checks catch settings in the old 3.x format
    "accounts",
    "lifebook",
    "generation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before everything that may answer early (the 413 page, a lockout), so every page has the policy.
    "csp.middleware.CSPMiddleware",
    "lifebook.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx: answer a page fragment to htmx requests
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "lifebook.urls"
WSGI_APPLICATION = "lifebook.wsgi.application"

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

# --- Database -------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'lifebook.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for the worker's writes instead of failing with "database is locked",
    # and take the write lock at BEGIN so select_for_update-style sections serialise.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts ---------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# django-axes: lock a username+address pair after 5 failures for an hour.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Lifebook <no-reply@localhost>")
# Days a care-team invitation link keeps working (it works once).
LIFEBOOK_INVITATION_DAYS = env.int("LIFEBOOK_INVITATION_DAYS", default=14)
# The address the emails link to (a worker sending "your pictures are ready" has no request to read it from).
LIFEBOOK_SITE_URL = env("LIFEBOOK_SITE_URL", default="http://localhost:8000")

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = env("TIME_ZONE", default="Europe/Madrid")
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise

# Media is private: it lives outside any static URL and is served only by
# lifebook.media.serve_media after a care-team check (never by WhiteNoise).
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {
        "BACKEND": env("LIFEBOOK_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env.json("LIFEBOOK_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {
        # The manifest needs `collectstatic`; DEBUG/tests serve straight from static/.
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("LIFEBOOK_MANIFEST_STATIC", default=False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        ),
    },
}
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# django-sendfile2: `simple` streams from Django (make run); production sets
# `nginx` (X-Accel-Redirect) or `xsendfile` and points SENDFILE_URL at an
# internal-only location.
SENDFILE_BACKEND = env("SENDFILE_BACKEND", default="django_sendfile.backends.simple")
SENDFILE_ROOT = str(MEDIA_ROOT)
SENDFILE_URL = env("SENDFILE_URL", default="/protected-media")

# --- Uploads ---------------------------------------------------------------
LIFEBOOK_MAX_UPLOAD_BYTES = env.int("LIFEBOOK_MAX_UPLOAD_BYTES", default=25 * 1024 * 1024)
LIFEBOOK_MAX_REQUEST_BYTES = env.int("LIFEBOOK_MAX_REQUEST_BYTES", default=300 * 1024 * 1024)
LIFEBOOK_MAX_IMAGE_PIXELS = env.int("LIFEBOOK_MAX_IMAGE_PIXELS", default=50_000_000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Generation ---------------------------------------------------------------
# `tiny` is the random-weight demo model built into var/models/tiny; anything
# else is a diffusers folder or a single .safetensors/.ckpt file of SD1.5.
LIFEBOOK_BASE_MODEL = env("LIFEBOOK_BASE_MODEL", default="tiny")
LIFEBOOK_MODELS_DIR = Path(env("LIFEBOOK_MODELS_DIR", default=str(VAR_DIR / "models")))
# Jobs (generation/): see README, "Jobs and workers".
LIFEBOOK_TRAINING_DIR = Path(env("LIFEBOOK_TRAINING_DIR", default=str(VAR_DIR / "training")))
LIFEBOOK_HEARTBEAT_SECONDS = env.float("LIFEBOOK_HEARTBEAT_SECONDS", default=0.5)
LIFEBOOK_JOB_STALE_SECONDS = env.float("LIFEBOOK_JOB_STALE_SECONDS", default=120)
LIFEBOOK_JOB_MAX_ATTEMPTS = env.int("LIFEBOOK_JOB_MAX_ATTEMPTS", default=3)
LIFEBOOK_DISPATCH_GRACE_SECONDS = env.float("LIFEBOOK_DISPATCH_GRACE_SECONDS", default=10)
LIFEBOOK_SWEEP_SECONDS = env.float("LIFEBOOK_SWEEP_SECONDS", default=15)
LIFEBOOK_CHECKPOINT_RETENTION_DAYS = env.int("LIFEBOOK_CHECKPOINT_RETENTION_DAYS", default=30)
# torch's intra-op threads in each worker process. `make run` starts LIFEBOOK_WORKER_PROCESSES workers (the
# Procfile's worker and trainer); each letting torch use every core made them fight over the cores. Unset:
# an equal share of the cores (at least 1). See ARCHITECTURE, "Torch threads per worker".
LIFEBOOK_WORKER_PROCESSES = env.int("LIFEBOOK_WORKER_PROCESSES", default=2)
LIFEBOOK_TORCH_THREADS = env.int("LIFEBOOK_TORCH_THREADS", default=None)
# Trainer options for every training job, e.g. {"resolution": 256} on a small GPU (JSON).
LIFEBOOK_TRAINING_OPTIONS = env.json("LIFEBOOK_TRAINING_OPTIONS", default={})

# --- Celery -------------------------------------------------------------------
# Embedded default: kombu's filesystem transport, a real broker with no server.
CELERY_QUEUE_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
_EMBEDDED_BROKER = CELERY_BROKER_URL.startswith("filesystem")
CELERY_RESULT_BACKEND = env(
    "CELERY_RESULT_BACKEND",
    default=f"file://{CELERY_QUEUE_DIR / 'results'}" if _EMBEDDED_BROKER else CELERY_BROKER_URL,
)
# Longer than the longest training job, or Redis re-delivers a task that is still running.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=12 * 3600)
if _EMBEDDED_BROKER:
    for _sub in ("queue", "processed", "results"):
        (CELERY_QUEUE_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "queue"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "queue"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "store_processed": False,
    }
    # The filesystem transport has no broadcast exchange: no remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_DEFAULT_QUEUE = "default"
# Training is long, pictures are seconds: separate queues, so one never waits behind the other.
CELERY_TASK_ROUTES = {"generation.train": {"queue": "train"}, "generation.generate": {"queue": "generate"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PAGINATION_CLASS": "lifebook.api.pagination.Pages",
    # JSON only in production; the browsable API (HTML pages with forms) is a development aid.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    # Job submissions per user: GPUs are shared (only the job-creating endpoints use this scope).
    "DEFAULT_THROTTLE_RATES": {"jobs": env("LIFEBOOK_JOB_SUBMISSIONS_RATE", default="120/hour")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lifebook API",
    "DESCRIPTION": "Reminiscence life books: patients, care teams, subjects and their photos, training and "
                   "picture jobs, chapters, memories and their pictures. Everything is scoped to the patients "
                   "whose care team you are on; therapists may read, not change. Log in with a session or "
                   "send `Authorization: Token <key>` (POST /api/token/ with username and password).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs page are for people who have an account (session or token), not for the world.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Security -----------------------------------------------------------------
# LIFEBOOK_HTTPS=1 behind TLS: secure cookies, HSTS, redirect to https.
HTTPS = env.bool("LIFEBOOK_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env.bool("LIFEBOOK_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# Content-Security-Policy (django-csp): only our own files run or style a page; no inline script or style
# anywhere (tests/test_no_inline_code.py scans the templates). Step previews are data: URLs and canvases
# may make blob: ones. With media on S3, pictures redirect to signed URLs on the bucket's origin: name it in
# LIFEBOOK_CSP_MEDIA_ORIGINS (e.g. https://my-bucket.s3.amazonaws.com).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:", *env.list("LIFEBOOK_CSP_MEDIA_ORIGINS", default=[])],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Password of the demo accounts that `load_demo` creates (make run only).
LIFEBOOK_DEMO_PASSWORD = env("LIFEBOOK_DEMO_PASSWORD", default="remember-1944")
