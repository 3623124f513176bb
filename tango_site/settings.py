"""TANGO settings. Everything environment-specific comes from env vars (see .env.example).

With no env vars the portal runs embedded: SQLite and files under ./var/, Celery over a SQLite broker,
an in-process channel layer. DATABASE_URL and REDIS_URL switch to Postgres and Redis (team mode).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from .broker import embedded_broker
from .env import EMBEDDED_SECRET_KEY, env_bool, env_float, env_int, env_list, env_secret_key, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Uploads, checkpoints and the SQLite file are private to the portal's user: files it creates are 0600 and
# folders 0700, whichever process (web, worker, setup) creates them.
os.umask(0o077)
DATA_DIR = Path(env_str("TANGO_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)  # the SQLite file and uploads live here on a fresh clone
# Ultralytics (detection) reads these when first imported: no network look-ups, no pip installs, its settings
# and fonts under the data folder rather than the user's home (training.engine.yolo.offline does the rest).
os.environ.setdefault("YOLO_CONFIG_DIR", str(DATA_DIR / "ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")

# Team mode (a database or broker URL set) is reachable by others: DEBUG defaults off there, and it never starts
# with a secret key anyone can read in this repository.
TEAM_MODE = bool(env_str("DATABASE_URL") or env_str("REDIS_URL"))
DEBUG = env_bool("DEBUG", not TEAM_MODE)
SECRET_KEY = env_secret_key("SECRET_KEY", required=TEAM_MODE or not DEBUG, embedded_default=EMBEDDED_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS behind a TLS-terminating proxy (TANGO_HTTPS=1; see .env.example) -------------------------------------
TANGO_HTTPS = env_bool("TANGO_HTTPS", False)
if TANGO_HTTPS:
    # The proxy speaks HTTPS to browsers and HTTP to the web server; it must set X-Forwarded-Proto (and strip the
    # client's own), or every request would look insecure and be redirected forever.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", TANGO_HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", TANGO_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", TANGO_HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if TANGO_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", TANGO_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)  # a commitment to browsers' lists: opt in
SECURE_CONTENT_TYPE_NOSNIFF = True
# How many proxies put themselves in X-Forwarded-For: the client address used for login throttling.
TANGO_PROXY_COUNT = env_int("TANGO_PROXY_COUNT", 1 if TANGO_HTTPS else 0, minimum=0)
# A 500 page with DEBUG on lists settings; URLs carry passwords (postgres://user:password@host), so hide them.
DEFAULT_EXCEPTION_REPORTER_FILTER = "tango_site.security.SettingsFilter"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from the install: no CDN
    "django_htmx",
    "channels",
    "projects",
    "recommender",
    "training",
    "visualizer",
    "deployment",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tango_site.security.DatabaseUnavailable",  # a 503 that retries, not a traceback, while the database is down
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tango_site.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "tango_site.asgi.application"

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

DATABASE_URL = env_str("DATABASE_URL")
# The web server pools its Postgres connections (Django's "pool" option, psycopg_pool). An ASGI server runs each
# request on a thread of its own (asgiref's ThreadSensitiveContext), so a persistent connection is never used twice:
# every request paid for a new Postgres backend (99 new sessions per 100 requests, measured), the largest share of
# a light request's cost. The web server (tango_site/webserver.py) turns the pool on for its processes; Celery
# workers fork, and a pool must not cross a fork, so they keep persistent connections. TANGO_DB_POOL_SIZE is per
# web process; a request that waits TANGO_DB_POOL_TIMEOUT seconds for a connection (the database is down, or far
# too busy) gets a 503.
TANGO_DB_POOL = env_bool("TANGO_DB_POOL", False)
TANGO_DB_POOL_SIZE = env_int("TANGO_DB_POOL_SIZE", 8, minimum=1)
TANGO_DB_POOL_TIMEOUT = env_float("TANGO_DB_POOL_TIMEOUT", 5.0, minimum=0.1)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0 if TANGO_DB_POOL else 60)}
    if TANGO_DB_POOL and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1, "max_size": TANGO_DB_POOL_SIZE, "timeout": TANGO_DB_POOL_TIMEOUT}
        # The pool checks a connection before a request gets it: one the database dropped (a restart) is replaced.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # TANGO_SQLITE_NAME lets helper processes (a test's worker and web server) open the test database.
            "NAME": env_str("TANGO_SQLITE_NAME", str(DATA_DIR / "db.sqlite3")),
            # WAL lets the web server read while the worker writes log lines.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            "TEST": {"NAME": DATA_DIR / "test-db.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out sign-in before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "media/"

# --- Sign-in throttling (django-axes): the login page, the admin and the API token endpoint -----------------
# Locked per username and address together, so a guesser cannot lock a colleague out from elsewhere.
AXES_FAILURE_LIMIT = env_int("TANGO_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("TANGO_LOGIN_COOLOFF_MINUTES", 15.0, minimum=0.1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "tango_site.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "tango_site.security.client_ip"
AXES_VERBOSE = False

# --- Celery: Redis in team mode, a SQLite broker under var/ when embedded (tango_site/broker.py) ----------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task running longer than this is redelivered; jobs are idempotent, but keep it above any stage.
        "visibility_timeout": env_int("TANGO_BROKER_VISIBILITY_TIMEOUT", 24 * 3600, minimum=60),
    }
    # socket_timeout=None: redis-py 8 reads with a 5 s timeout by default, which cuts channels-redis' own 5 s
    # blocking pop short and kills idle websockets with 1011 (django/channels_redis#422).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
    # Sessions: the database's rows, read through Redis (why, and what happens while Redis is down:
    # tango_site/sessions.py). Short timeouts: an unreachable Redis must not hold a request up.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {
            "BACKEND": "tango_site.cache.SharedPoolRedisCache",  # one pool per process: why in the module
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "tango",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    SESSION_ENGINE = "tango_site.sessions"
    SESSION_CACHE_ALIAS = "sessions"
else:
    # Messages in a SQLite file, one transaction each: a worker never reads a half-written message (the
    # filesystem broker it replaces did, kombu issue 1551, and the worker died). Why and how: tango_site/broker.py.
    _broker = embedded_broker(DATA_DIR)
    CELERY_BROKER_URL = _broker["CELERY_BROKER_URL"]
    CELERY_BROKER_TRANSPORT = _broker["CELERY_BROKER_TRANSPORT"]
    CELERY_BROKER_TRANSPORT_OPTIONS = _broker["CELERY_BROKER_TRANSPORT_OPTIONS"]
    # Worker and web are separate processes here, so pushes do not cross; consumers catch up from the
    # database on a short tick instead (TANGO_LOG_POLL_SECONDS).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
SESSION_CACHE_SECONDS = 300  # the longest a session's cached copy is trusted (tango_site/sessions.py)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The reaper (projects/jobs/reaper.py): run by beat in team mode, by `tango serve`'s supervisor when embedded.
TANGO_REAP_INTERVAL_SECONDS = env_float("TANGO_REAP_INTERVAL_SECONDS", 10.0, minimum=0.5)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "projects.tasks.reap_stale_jobs", "schedule": TANGO_REAP_INTERVAL_SECONDS},
}

# --- Jobs and live logs ---------------------------------------------------------------------------------
TANGO_JOB_HEARTBEAT_SECONDS = env_float("TANGO_JOB_HEARTBEAT_SECONDS", 2.0, minimum=0.1)
TANGO_JOB_STALE_SECONDS = env_float("TANGO_JOB_STALE_SECONDS", 30.0, minimum=1.0)
# A queued job whose queue no live worker consumes for this long is failed (so its stage can run again).
TANGO_JOB_UNSERVED_SECONDS = env_float("TANGO_JOB_UNSERVED_SECONDS", 900.0, minimum=1.0)
# Which tasks wait in the broker (the reaper re-dispatches a queued job whose message is gone): embedded only.
TANGO_BROKER_WAITING = "" if REDIS_URL else "tango_site.broker.waiting_task_ids"
# Pushes only cross processes through Redis; embedded viewers read new lines from the database on each tick.
TANGO_LOG_PUSH = bool(REDIS_URL)
TANGO_LOG_POLL_SECONDS = env_float("TANGO_LOG_POLL_SECONDS", 2.0 if REDIS_URL else 0.1, minimum=0.05)
# How often an open job console re-checks that its user may still watch (removed from the team, deactivated).
TANGO_CONSOLE_ACCESS_SECONDS = env_float("TANGO_CONSOLE_ACCESS_SECONDS", 5.0, minimum=0.05)
TANGO_LOG_REPLAY_LINES = env_int("TANGO_LOG_REPLAY_LINES", 500, minimum=1)

# --- Uploads ----------------------------------------------------------------------------------------------
TANGO_UPLOAD_MAX_BYTES = env_int("TANGO_UPLOAD_MAX_BYTES", 2 * 1024**3, minimum=1)
TANGO_UPLOAD_MAX_FILES = env_int("TANGO_UPLOAD_MAX_FILES", 200_000, minimum=1)
TANGO_UPLOAD_MAX_UNPACKED_BYTES = env_int("TANGO_UPLOAD_MAX_UNPACKED_BYTES", 8 * 1024**3, minimum=1)
TANGO_UPLOAD_MAX_RATIO = env_float("TANGO_UPLOAD_MAX_RATIO", 200.0, minimum=1.0)
TANGO_WEIGHTS_MAX_BYTES = env_int("TANGO_WEIGHTS_MAX_BYTES", 1024**3, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024**2
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024**2
FILE_UPLOAD_TEMP_DIR = None

# --- REST API ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its challenge ("WWW-Authenticate: Token") is what turns an anonymous call into a 401.
        "projects.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "tango_site.pagination.TangoPageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tango_site.api_errors.exception_handler",
}
# Adding team members by username, per user (see projects.api.views.MemberAddThrottle).
TANGO_MEMBER_ADD_RATE = env_str("TANGO_MEMBER_ADD_RATE", "60/hour")
SPECTACULAR_SETTINGS = {
    "TITLE": "TANGO portal API",
    "DESCRIPTION": "Projects, datasets, device catalog and pipeline jobs of the TANGO portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page's scripts and styles come from drf-spectacular-sidecar's static files, not a CDN (which an
    # offline install cannot reach: the page rendered blank).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"AcceleratorEnum": "tango_common.engines.Accelerator.CHOICES",
                            "JobStatusEnum": "projects.jobs.models.JobStatus",
                            "ArtifactStatusEnum": "deployment.models.Artifact.Status"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tango_site.api_errors.add_error_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes reports every sign-in at INFO; lockouts still show (WARNING).
    # matplotlib (imported by the training libraries) says "generated new fontManager" at INFO on a fresh cache.
    "loggers": {"axes": {"level": "WARNING"}, "matplotlib": {"level": "WARNING"}},
}
