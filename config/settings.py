"""SynPref Studio settings.

Every setting comes from the environment, with a default that works on a fresh clone
(SQLite under var/, a filesystem Celery broker that needs no server). See .env.example.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool = False) -> bool:
    """A boolean variable; anything but true/false, 1/0, yes/no, on/off (any case) refuses to start.

    A typo must not quietly mean false: ``SESSION_COOKIE_SECURE=ture`` would send session cookies over HTTP.
    """
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"environment variable {name} must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}"
    )


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"environment variable {name} must be an integer, got {value!r}") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"environment variable {name} must be a number, got {value!r}") from exc


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret_key(path: Path) -> str:
    """The key kept in ``path`` (mode 0600), created on first use; concurrent first starts agree on one key."""
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        with contextlib.suppress(FileExistsError):  # another process got there first: use theirs
            os.link(tmp, path)  # atomic, and never replaces an existing key
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


# Fail closed: DEBUG is off unless set, and a process without a real SECRET_KEY refuses to start.
# The embedded local setup (`make run`, `make web`, `make worker`, the test suite) opts in with
# SYNPREF_DEV=1 (or DEBUG=true): it keeps a generated key in VAR_DIR/secret_key and serves plain HTTP.
DEBUG = env_bool("DEBUG", False)
DEV_MODE = env_bool("SYNPREF_DEV", False) or DEBUG
_PLACEHOLDER_SECRET_KEYS = {"", "change-me", "dev-only-insecure-key-change-me-in-production"}
SECRET_KEY = env_secret("SECRET_KEY", "").strip()
if SECRET_KEY in _PLACEHOLDER_SECRET_KEYS:
    if not DEV_MODE:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set (or is the placeholder from .env.example) and DEBUG is off. Set SECRET_KEY "
            "(or SECRET_KEY_FILE) to a long random value, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`; for a local setup set SYNPREF_DEV=1 "
            "to keep a generated key in VAR_DIR/secret_key."
        )
    SECRET_KEY = _local_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = [h for h in env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
SITE_NAME = env_str("SITE_NAME", "SynPref Studio")

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
    "drf_spectacular_sidecar",  # Swagger UI / Redoc assets for /api/docs/, served locally (no CDN)
    "django_htmx",
    "annotation",
    "annotation.tools",  # label "tools": the annotator tools (search, code runner, AI assist, evidence)
    "curation",
    "curation.judges",  # label "judges": LLM judges (curation/judges/)
    "rewardmodel",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                "annotation.context_processors.roles",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# Database: SQLite by default; DATABASE_URL=postgres://user@host:5432/name switches to PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions serialise writers up front, so concurrent claims wait on the lock
    # instead of failing with "database is locked" when a read transaction upgrades to a write.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEV_MODE  # production serves collectstatic's STATIC_ROOT
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
UPLOAD_DIR = MEDIA_ROOT / "uploads"
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
MAX_IMPORT_UPLOAD_BYTES = env_int("MAX_IMPORT_UPLOAD_BYTES", 2 * 1024 * 1024 * 1024)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotation:home"
LOGOUT_REDIRECT_URL = "login"


def _cache_from_url(url: str) -> dict[str, Any]:
    """CACHE_URL: redis://host:6379/1 (production: shared by every web process), file:///path, or locmem://."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    if url.startswith("locmem://"):
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if url.startswith("file://"):
        return {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": url[len("file://") :]}
    raise ImproperlyConfigured(
        f"CACHE_URL must start with redis://, rediss://, unix://, file:// or locmem://, got {url!r}"
    )


# The cache holds log-in lockout counts and API throttle counts, so every web process must share it:
# a file cache under VAR_DIR by default (one machine), Redis in production. Not per-process locmem.
CACHES = {"default": _cache_from_url(env_str("CACHE_URL", f"file://{VAR_DIR / 'cache'}"))}
# Sessions are read from the cache and written through to the database: one SQL query less on
# every request (the labelling page's submit-and-next has a budget of 10), nothing lost on a restart.
SESSION_ENGINE = env_str("SESSION_ENGINE", "django.contrib.sessions.backends.cached_db")

# Log-in lockout (log-in page and POST /api/auth/token/ alike; config/lockout.py, docs/security.md).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)  # per username and client address
LOGIN_IP_FAILURE_LIMIT = env_int("LOGIN_IP_FAILURE_LIMIT", 50)  # per client address, any usernames
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)  # the window counted, and how long a lockout lasts
# API tokens expire this many hours after they were issued (0: never); admins can revoke them at any time.
TOKEN_TTL_HOURS = env_int("TOKEN_TTL_HOURS", 24 * 30)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "annotation.tokens.ExpiringTokenAuthentication",
    ],
    # JSON nested deeper than config.parsers.MAX_JSON_DEPTH is a 400, never a RecursionError (500).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "600/minute"),  # per signed-in user, every endpoint together
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),  # per client address, anonymous requests
        "login": env_str("API_THROTTLE_LOGIN", "30/minute"),  # POST /api/auth/token/ per client address
    },
    # Proxies in front of the app whose X-Forwarded-For may be trusted for the client address (0: none).
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SynPref Studio API",
    "DESCRIPTION": "Preference-pair curation: projects, pairs, import/export, annotation queue.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status" and there are two preference vocabularies (canonical A/B and
    # the annotator's left/right): name each enum once so the schema has no hash-suffixed names.
    "ENUM_NAME_OVERRIDES": {
        "PairStatusEnum": "annotation.models.Pair.Status",
        "AssignmentStatusEnum": "annotation.models.Assignment.Status",
        # queued/running/done/failed: imports, curation rounds and evaluations share this set.
        "JobStatusEnum": "annotation.models.ImportBatch.Status",
        "TrainingJobStatusEnum": "rewardmodel.models.TrainingJob.Status",
        "DisputeStatusEnum": "curation.models.Dispute.Status",
        "GateStatusEnum": "curation.models.BatchGate.Status",
        "PreferenceEnum": "annotation.models.Preference",
        "ShownPreferenceEnum": "annotation.preference.SHOWN_CHOICES",
    },
}

# Celery: filesystem broker by default (a real worker, no server); CELERY_BROKER_URL=redis://... in production.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("in", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = None  # job state lives on the rows, not in a result backend
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {
    "rewardmodel.tasks.*": {"queue": "gpu"},
    "curation.tasks.curation_round_run": {"queue": "gpu"},
    "curation.tasks.pool_embed": {"queue": "gpu"},  # runs the encoder (bf16 on CUDA)
    "curation.tasks.stage2_shard_run": {"queue": "gpu"},  # scores with the gold and current-best RMs
    "annotation.tools.tasks.code_run*": {"queue": "sandbox"},
}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 24 * 3600)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A message whose worker was killed before acking (acks_late) is handed out again after this
    # long; the claim in config/jobs.py takes the row over only once its heartbeat is stale.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
# Publishing gives up quickly when the broker is down: the row stays queued and the jobs
# maintenance task re-sends it (config/jobs.py), instead of a web request hanging on retries.
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
CELERY_BEAT_SCHEDULE = {
    "expire-stale-claims": {"task": "annotation.tasks.assignment_expire_stale", "schedule": 60.0},
    # Every background row (imports, code runs, AI questions, corpora, training, evaluations, rounds):
    # requeue or fail rows whose worker died, re-send undelivered ones, expire old queued ones.
    "jobs-maintain": {"task": "config.jobs.maintain", "schedule": 60.0},
    "curation-agreement-sweep": {"task": "curation.tasks.agreement_sweep", "schedule": 300.0},
    "curation-stage2-finalise": {"task": "curation.tasks.stage2_finalise_all", "schedule": 60.0},
    # on the sandbox queue: remove run cgroups left by a worker killed mid-run
    "sandbox-cgroups-cleanup": {"task": "annotation.tools.tasks.code_run_cgroups_cleanup", "schedule": 300.0},
}
# Background rows (config/jobs.py): a running row beats every JOBS_HEARTBEAT_S; one silent for
# JOBS_STALE_AFTER_S is requeued (while attempts remain) or failed. Queued rows no worker takes
# within JOBS_QUEUED_TIMEOUT_S end failed; delivered ones are re-sent every JOBS_RESEND_AFTER_S.
JOBS_HEARTBEAT_S = env_float("JOBS_HEARTBEAT_S", 15.0)
JOBS_STALE_AFTER_S = env_int("JOBS_STALE_AFTER_S", 120)
JOBS_QUEUED_TIMEOUT_S = env_int("JOBS_QUEUED_TIMEOUT_S", 24 * 3600)
JOBS_RESEND_AFTER_S = env_int("JOBS_RESEND_AFTER_S", 3600)

# Stage 2 (curation/stage2): pairs per shard, runs of a shard before it ends failed, and the silence
# after which a shard's worker counts as dead (keep CELERY_VISIBILITY_TIMEOUT above the longest shard).
STAGE2_SHARD_SIZE = env_int("STAGE2_SHARD_SIZE", 10_000)
STAGE2_SHARD_ATTEMPTS = env_int("STAGE2_SHARD_ATTEMPTS", 3)
STAGE2_STALE_AFTER_S = env_int("STAGE2_STALE_AFTER_S", 120)
STAGE2_JUDGE_FUNCTION = env_str("STAGE2_JUDGE_FUNCTION", "curation.judges.services.judge_pairs")

# LLM judges (curation/judges, docs/judges.md): how examples are retrieved ("embedding": the packaged
# MiniLM, workers only; "lexical": bag-of-words, no torch), the share of D_gold held out to measure
# the judges (never shown as examples), pairs per judge shard, and how many verified examples an
# attribute-proposal prompt shows at most (0..8; each judge's max_examples caps it too).
JUDGE_RETRIEVER = env_str("JUDGE_RETRIEVER", "embedding")
JUDGE_HELDOUT_FRACTION = env_float("JUDGE_HELDOUT_FRACTION", 0.2)
JUDGE_SHARD_SIZE = env_int("JUDGE_SHARD_SIZE", 200)
JUDGE_ATTRIBUTE_EXAMPLES = env_int("JUDGE_ATTRIBUTE_EXAMPLES", 8)
if JUDGE_RETRIEVER not in ("embedding", "lexical"):
    raise ImproperlyConfigured(f"JUDGE_RETRIEVER must be 'embedding' or 'lexical', got {JUDGE_RETRIEVER!r}")
if not 0.0 <= JUDGE_HELDOUT_FRACTION < 1.0:
    raise ImproperlyConfigured(f"JUDGE_HELDOUT_FRACTION must be in [0, 1), got {JUDGE_HELDOUT_FRACTION}")
if JUDGE_SHARD_SIZE < 1:
    raise ImproperlyConfigured(f"JUDGE_SHARD_SIZE must be at least 1, got {JUDGE_SHARD_SIZE}")
if not 0 <= JUDGE_ATTRIBUTE_EXAMPLES <= 8:
    raise ImproperlyConfigured(f"JUDGE_ATTRIBUTE_EXAMPLES must be between 0 and 8, got {JUDGE_ATTRIBUTE_EXAMPLES}")

# Annotation defaults (a project may override its own).
ANNOTATORS_PER_PAIR = env_int("ANNOTATORS_PER_PAIR", 3)
CLAIM_TIMEOUT_MINUTES = env_int("CLAIM_TIMEOUT_MINUTES", 30)
IMPORT_BATCH_SIZE = env_int("IMPORT_BATCH_SIZE", 5000)
# Seconds the labelling page's progress figures (queue left, project completion) are cached.
LABEL_PROGRESS_TTL = env_int("LABEL_PROGRESS_TTL", 30)

# Curation defaults (each project may override its own on the curation settings page).
CURATION_ALPHA_THRESHOLD = env_float("CURATION_ALPHA_THRESHOLD", 0.85)
CURATION_RETEST_RATE = env_float("CURATION_RETEST_RATE", 0.05)
CURATION_GATE_MIN_UNITS = env_int("CURATION_GATE_MIN_UNITS", 20)
CURATION_AGREEMENT_DEBOUNCE_S = env_float("CURATION_AGREEMENT_DEBOUNCE_S", 5)

MODEL_STORE_DIR = Path(env_str("MODEL_STORE_DIR", str(VAR_DIR / "models")))
# Base models offered for training besides the packaged MiniLM: "label=/path/to/checkpoint,label2=/path2".
RM_BASE_MODELS = [e.strip() for e in env_str("RM_BASE_MODELS", "").split(",") if e.strip()]
# A running training job with no heartbeat for this long is marked failed (resumable).
RM_HEARTBEAT_TIMEOUT_S = env_int("RM_HEARTBEAT_TIMEOUT_S", 900)
# Torch intra-op threads of a process that scores in-process (stage 2, rounds). 0: the host's cores
# divided by the Celery worker's processes (--concurrency), so two scoring processes on two cores use
# one thread each instead of four threads fighting over two cores.
RM_TORCH_THREADS = env_int("RM_TORCH_THREADS", 0)
if RM_TORCH_THREADS < 0:
    raise ImproperlyConfigured(f"RM_TORCH_THREADS must be 0 (automatic) or more, got {RM_TORCH_THREADS}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A refused request (403) is logged as one warning line, without the traceback Django attaches.
    "filters": {"no_traceback_for_403": {"()": "config.logfilters.NoTracebackForPermissionDenied"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["no_traceback_for_403"]},
    },
}

# HTTPS. Production defaults to secure cookies; the local setup serves plain HTTP on 127.0.0.1.
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=true (trust its X-Forwarded-Proto) and
# SECURE_SSL_REDIRECT=true; `manage.py check --deploy` is clean with the values in README "Production".
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEV_MODE)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEV_MODE)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER", False) else None
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# --- Annotator tools: fact-check search, sandboxed code runner, AI assist (annotation/tools/) ------
# Search: full-text search over the corpora an admin loaded (`manage.py load_corpus`). A SearxNG
# instance's JSON API can be offered beside it (off by default).
SEARCH_RESULTS = env_int("SEARCH_RESULTS", 10)
SEARCH_MAX_CANDIDATES = env_int("SEARCH_MAX_CANDIDATES", 10000)  # PostgreSQL ranks at most this many matches
USE_WEB_SEARCH = env_bool("USE_WEB_SEARCH", False)
SEARXNG_URL = env_str("SEARXNG_URL", "")
SEARXNG_TIMEOUT = env_float("SEARXNG_TIMEOUT", 8.0)
MAX_CORPUS_UPLOAD_BYTES = env_int("MAX_CORPUS_UPLOAD_BYTES", 512 * 1024 * 1024)
# Code runner (Celery queue "sandbox"). SANDBOX_MODE: "bubblewrap" (default; refuses to run code
# when bubblewrap cannot build its namespaces), "unsafe-rlimits-only" (an admin's explicit choice of
# weaker isolation: resource limits, own uid and temp dir, but no namespaces), or "off".
SANDBOX_MODE = env_str("SANDBOX_MODE", "bubblewrap")
SANDBOX_CPU_SECONDS = env_int("SANDBOX_CPU_SECONDS", 10)
SANDBOX_WALL_SECONDS = env_int("SANDBOX_WALL_SECONDS", 20)
SANDBOX_MEMORY_MB = env_int("SANDBOX_MEMORY_MB", 512)
SANDBOX_MAX_PROCESSES = env_int("SANDBOX_MAX_PROCESSES", 64)
SANDBOX_DISK_MB = env_int("SANDBOX_DISK_MB", 32)
SANDBOX_OUTPUT_BYTES = env_int("SANDBOX_OUTPUT_BYTES", 64 * 1024)
SANDBOX_MAX_CODE_BYTES = env_int("SANDBOX_MAX_CODE_BYTES", 100 * 1024)
SANDBOX_UID_MIN = env_int("SANDBOX_UID_MIN", 200000)  # when the worker is root, each run gets a uid from this range
SANDBOX_UID_MAX = env_int("SANDBOX_UID_MAX", 265000)
SANDBOX_USE_CGROUP = env_bool("SANDBOX_USE_CGROUP", True)  # whole-run memory/pids ceilings when the worker may
SANDBOX_CGROUP_PARENT = env_str("SANDBOX_CGROUP_PARENT", "")  # a delegated cgroup v2 directory, if any
TOOLS_MAX_PENDING_PER_USER = env_int("TOOLS_MAX_PENDING_PER_USER", 3)  # live queued/running code runs or AI questions
TOOLS_QUEUED_TIMEOUT_S = env_int("TOOLS_QUEUED_TIMEOUT_S", 600)  # a code run or AI question no worker took ends failed
# AI assist: a judge LLM behind an OpenAI-compatible chat-completions API; off while unset.
# LLM_RESPONSE_FORMAT: json_schema (OpenAI, vLLM, llama-server), json_object_schema
# (llama-cpp-python's server), json_object, or none.
LLM_BASE_URL = env_str("LLM_BASE_URL", "")
LLM_MODEL = env_str("LLM_MODEL", "")
LLM_API_KEY = env_secret("LLM_API_KEY", "")
LLM_RESPONSE_FORMAT = env_str("LLM_RESPONSE_FORMAT", "json_schema")
LLM_TIMEOUT = env_float("LLM_TIMEOUT", 60.0)
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 512)
LLM_TEMPERATURE = env_float("LLM_TEMPERATURE", 0.0)
# --- end of annotator tools -----------------------------------------------------------------------
