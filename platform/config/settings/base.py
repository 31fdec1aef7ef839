"""Settings shared by every environment. Every value that varies comes from the environment
(django-environ); `.env` at the repository root is read when present. `.env.example` lists them."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import environ

from config.dotenv import read_dotenv
from jobs.redis_urls import django_redis_cache, is_sentinel_url, parse_sentinel_url
from jobs.sealing_keys import sealing_key_ring

ROOT_DIR = Path(__file__).resolve().parents[3]
VAR_DIR = ROOT_DIR / "var"

env = environ.Env()
if (ROOT_DIR / ".env").is_file():
    # Values already in the process environment win over the file; inline # comments are dropped.
    read_dotenv(ROOT_DIR / ".env")

# --- Django core ----------------------------------------------------------------------------
SECRET_KEY = env("SECRET_KEY", default="local-only-insecure-key-never-used-in-production")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_celery_results",
    # The platform's own apps (platform/<app>/).
    "jobs",
    # The operations side of jobs/ (admin, dashboard, health, metrics); the runtime never imports it.
    "jobs.operations",
    "audit",
    "marketplace",
    "billing",
    "logistics",
    "messaging",
    "reports",
    "jobs.schedules",
    "http_api",
]

MIDDLEWARE = [
    # First, so it times and counts every request, redirects and errors included (jobs/operations/metrics.py).
    "jobs.operations.metrics.RequestMetricsMiddleware",
    # Outside the rest, so any non-JSON error under /api/, /webhooks/, /healthz gets the shape.
    "http_api.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
# Persistent connections with a liveness check before reuse (Django >= 4.1): a connection the
# server dropped (restart, pg_terminate_backend) is replaced instead of failing a request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update({"connect_timeout": 3})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Time -----------------------------------------------------------------------------------
TIME_ZONE = env("TIME_ZONE", default="America/Toronto")
USE_TZ = True
LANGUAGE_CODE = "en-ca"
USE_I18N = True

STATIC_URL = "static/"
STATIC_ROOT = ROOT_DIR / "staticfiles"

# --- Redis: broker and cache ----------------------------------------------------------------
# redis://host:port/db, or for high availability the Sentinels of a master:
# sentinel://h1:26379;sentinel://h2:26379;sentinel://h3:26379/0 with REDIS_SENTINEL_MASTER naming
# it (docs/brokers.md, "Redis with Sentinel"). jobs/redis_urls.py is the one place either is read.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="")

# https://github.com/jazzband/django-redis#configure-as-cache-backend
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "KEY_PREFIX": "cache",
        **django_redis_cache(
            REDIS_URL,
            REDIS_SENTINEL_MASTER,
            {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Short timeouts: a hung Redis must make a request slower, not stuck.
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                "COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor",
                "CONNECTION_POOL_KWARGS": {"max_connections": 50, "retry_on_timeout": False},
                # Redis down means slower, never failing (docs/architecture.md rule 7).
                "IGNORE_EXCEPTIONS": True,
            },
            master_setting="REDIS_SENTINEL_MASTER",
        ),
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# How often each dashboard is recomputed, in minutes: its default schedule
# (beat_schedules/defaults.py), its staleness rule (reports/market_dashboards.py, REFRESH_PERIODS)
# and its cache lifetime (below: the next refresh replaces it before it expires) all read this.
DASHBOARD_REFRESH_MINUTES = {"dealer_performance": 30, "analytics_dashboard": 15}

# One table of cache lifetimes, in seconds, per kind of data.
CACHE_TTLS = {
    "vehicle_history": 24 * 3600,
    "exchange_rates": 12 * 3600,
    **{kind: minutes * 60 for kind, minutes in DASHBOARD_REFRESH_MINUTES.items()},
}

# --- Celery ---------------------------------------------------------------------------------
# Read by platform/jobs/celery_app.py through app.config_from_object(settings, namespace="CELERY").
# Queues and routes are code, not environment: they live in platform/jobs/queues.py, declared
# for the broker in use by platform/jobs/brokers/ (the one seam that knows Redis from RabbitMQ).
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# redis://... (the embedded default) or amqp://... (RabbitMQ, production's recommendation);
# several RabbitMQ nodes as "amqp://n1;amqp://n2;amqp://n3" (workers fail over between them).
# A Redis broker may be a Sentinel set too (sentinel://...;sentinel://..., as REDIS_URL), its
# master named by CELERY_BROKER_SENTINEL_MASTER (default: REDIS_SENTINEL_MASTER).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_BROKER_SENTINEL_MASTER = env("CELERY_BROKER_SENTINEL_MASTER", default=REDIS_SENTINEL_MASTER)
# Settings are configuration: the per-broker blocks below choose on the URL's scheme. Code never
# does; it asks jobs.brokers.current_broker().
# The URL schemes that name RabbitMQ (kombu's); jobs.brokers.is_rabbitmq_url reads them too.
RABBITMQ_URL_SCHEMES = ("amqp", "amqps", "pyamqp")
BROKER_IS_RABBITMQ = CELERY_BROKER_URL.split("://", 1)[0] in RABBITMQ_URL_SCHEMES
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing when Redis is down must fail fast (the API answers 503 within 2 s), not hang.
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}

# --- Redis broker (when CELERY_BROKER_URL is redis://, the embedded default) ------------------
# Redis redelivers a message left unacknowledged past visibility_timeout (kombu's ack emulation).
# On Redis the platform uses kombu's transport plus a heartbeat (jobs/brokers/redis_transport.py):
# every worker re-scores the messages it holds (running, reserved, waiting for a countdown or ETA,
# however long: API countdowns up to JOB_MAX_COUNTDOWN_SECONDS, retry backoff up to 600 s) every
# quarter of the timeout, so only a message whose worker died, or stalled for most of a timeout,
# is redelivered. The timeout is thus how long a dead worker's jobs wait: about a minute, where it
# used to be 2 hours. A child killed alone is requeued at once (task_reject_on_worker_lost).
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
JOB_MAX_COUNTDOWN_SECONDS = 3600
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=60)
# kombu's Redis transport with the heartbeat, for a Redis broker; None lets kombu pick the
# transport from the URL's scheme (RabbitMQ).
CELERY_BROKER_TRANSPORT = None if BROKER_IS_RABBITMQ else "jobs.brokers.redis_transport:Transport"
BROKER_IS_SENTINEL = is_sentinel_url(CELERY_BROKER_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT,
    # Each worker re-scores what it holds this often: it may miss three beats in a row.
    "unacked_heartbeat_interval": max(1, CELERY_BROKER_VISIBILITY_TIMEOUT // 4),
    # Every worker's event loop sweeps for abandoned messages (scored older than the timeout)
    # this often: one ZRANGE on the unacked index. A dead worker's jobs are back between
    # timeout - heartbeat and timeout + sweep seconds after its death (45-65 s by default).
    "unacked_restore_interval": max(1, min(5, CELERY_BROKER_VISIBILITY_TIMEOUT // 12)),
    "unacked_restore_throttle": 1,
    # The sweep's lock: a worker killed while holding it blocks the others' sweeps this long
    # (kombu's default, 300 s, would stretch "about a minute" to six). Sweeps are transactional
    # per message, so the lock only saves duplicate work.
    "unacked_mutex_expire": max(1, CELERY_BROKER_VISIBILITY_TIMEOUT // 4),
    "socket_connect_timeout": 1.0,
    "socket_timeout": 5.0,
    "health_check_interval": 25,
}
# A prefix for every broker key (kombu's global_keyprefix), for a site that shares one Redis
# between applications. Queue depths, the sweep and the consume path all honour it.
CELERY_BROKER_KEY_PREFIX = env("CELERY_BROKER_KEY_PREFIX", default="")
if CELERY_BROKER_KEY_PREFIX:
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = CELERY_BROKER_KEY_PREFIX
# A Redis broker behind Sentinel: the same transport, its connections made through the Sentinels
# (kombu's SentinelChannel), and every publish confirmed by a replica before it returns (WAIT), so
# a publish that returned survives the master's loss; waiting at most this long (seconds) per
# publish, then going on with a warning (no replica answering: a publish is as safe as on one Redis).
CELERY_BROKER_PUBLISH_REPLICA_TIMEOUT = env.float("CELERY_BROKER_PUBLISH_REPLICA_TIMEOUT", default=0.5)
if BROKER_IS_SENTINEL:
    _broker_sentinels = parse_sentinel_url(
        CELERY_BROKER_URL,
        CELERY_BROKER_SENTINEL_MASTER,
        setting="CELERY_BROKER_URL",
        master_setting="CELERY_BROKER_SENTINEL_MASTER",
    )
    CELERY_BROKER_URL = _broker_sentinels.url  # every part in full: kombu reads the first
    CELERY_BROKER_TRANSPORT = "jobs.brokers.redis_transport:SentinelTransport"
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        master_name=_broker_sentinels.master_name,
        publish_replicas=1,
        publish_replica_timeout=CELERY_BROKER_PUBLISH_REPLICA_TIMEOUT,
    )

# --- RabbitMQ broker (when CELERY_BROKER_URL is amqp://) -------------------------------------
# Quorum queues (replicated, durable, persistent), declared by jobs/brokers/rabbitmq_broker.py with
# topic exchanges so Celery's native delayed delivery can route to them: countdowns, ETAs and
# retry delays wait in the broker (celery_delayed_* quorum queues), not unacknowledged in a
# worker's memory. https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/rabbitmq.html
# The broker-side settings this relies on (consumer_timeout above the longest hard time limit,
# policies) are in ops/rabbitmq/.
RABBITMQ_CONSUMER_TIMEOUT_SECONDS = 3600  # what ops/rabbitmq/rabbitmq.conf sets; checked by tests/brokers
if BROKER_IS_RABBITMQ:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Publisher confirms: a publish returns once the quorum queue's majority has the message
        # (a lost publish raises instead of vanishing). Bounded per publish by confirm_timeout.
        "confirm_publish": True,
    }
    # Every queue Celery declares on its own (a -Q name missing from jobs/queues.py, Celery's
    # default queue) is a quorum queue on a topic exchange too.
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = "topic"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    # The delay queues themselves are quorum queues: a delayed job survives a node's loss.
    CELERY_BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE = "quorum"
    # Quorum queues refuse global QoS: the worker detects them and sets a per-consumer prefetch
    # instead (prefetch = CELERY_WORKER_PREFETCH_MULTIPLIER x concurrency per queue consumed; a
    # worker consuming several queues can hold that many per queue: long queues get a worker each,
    # ops/systemd/platform-worker@.service). https://www.rabbitmq.com/docs/quorum-queues#global-qos
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    # Persistent messages (Celery's default, stated): a quorum queue keeps every message on disk anyway.
    CELERY_TASK_DEFAULT_DELIVERY_MODE = "persistent"
    # A node that stops answering is noticed within about two heartbeats, then workers fail over.
    CELERY_BROKER_HEARTBEAT = 30

# JSON only: nothing executable crosses the broker.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True

# At-least-once: acknowledge after the task finished, requeue when the worker process dies.
# Safe because every task is idempotent (effect ledger). Also set on platform/jobs/task_base.py:PlatformTask.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message reserved per process: a long task never holds others hostage behind it.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
# Default limits for tasks that set none; the hard limit kills a stuck child process.
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 150

# Results in the database (django-celery-results), with name, args and worker, STARTED
# tracked; expired ones are deleted by celery.backend_cleanup on a schedule (beat_schedules/).
# django-celery-results' backend ("django-db"), retrying a write once on a fresh connection.
CELERY_RESULT_BACKEND = "jobs.result_backend:ReconnectingDatabaseBackend"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
# celery.backend_cleanup deletes expired results this many rows per transaction (jobs/result_backend.py).
RESULT_CLEANUP_BATCH_SIZE = env.int("RESULT_CLEANUP_BATCH_SIZE", default=5000)
# Flower and the ops dashboard read task events.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
# Leave the root logger to Django's LOGGING (configured below).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection around every task unless this is set,
# so every task that writes pays a new PostgreSQL connection (docs/baselines.md: reuse about
# triples throughput). Stale connections are replaced by CONN_HEALTH_CHECKS (platform/jobs/celery_app.py).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# Tasks with no explicit worker-count setting still get a sane ceiling per child.
CELERY_WORKER_MAX_TASKS_PER_CHILD = 10000

CELERY_BEAT_SCHEDULER = "jobs.schedules.scheduler:LeaderDatabaseScheduler"
# How often beat re-reads schedules when nothing is due: an operator's edit is picked up by
# then at the latest (django-celery-beat also notices changes on its own every tick).
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
# Save each schedule's last run with every send (our scheduler commits it just before
# publishing), so a standby beat that takes over knows what was already sent; the default,
# every 3 minutes, would make it send those again.
CELERY_BEAT_SYNC_EVERY = 1
# A beat leader holds this lease in PostgreSQL and renews it every tick; a standby takes over
# once it lapses (platform/jobs/schedules/scheduler.py).
BEAT_LOCK_LEASE_SECONDS = env.int("BEAT_LOCK_LEASE_SECONDS", default=30)

DJANGO_CELERY_BEAT_TZ_AWARE = True
# The default schedules `manage.py sync_schedules` copies into django-celery-beat.
SCHEDULE_DEFAULTS = "beat_schedules.defaults.DEFAULT_SCHEDULES"

# --- Metrics --------------------------------------------------------------------------------
# GET /metrics merges the metric files of every process under this directory (workers' pool
# children, gunicorn workers), each writing to its own PROMETHEUS_MULTIPROC_DIR below it
# (ops/systemd/). Empty: PROMETHEUS_MULTIPROC_DIR if set, else this process's metrics only.
METRICS_DIR = env.str("METRICS_DIR", default="")

# Transactional outbox (platform/jobs/outbox.py): a row not published this long after its
# commit is published by the relay; a published job not completed this long after its last
# publish (and not running or retrying) is republished under the same job id.
OUTBOX_PUBLISH_GRACE_SECONDS = env.int("OUTBOX_PUBLISH_GRACE_SECONDS", default=10)
OUTBOX_REPUBLISH_AFTER_SECONDS = env.int("OUTBOX_REPUBLISH_AFTER_SECONDS", default=900)
# Effect-ledger rows and completed outbox messages are kept this long (jobs/retention.py):
# longer than any redelivery, retry or routine replay of a job.
JOB_RECORD_RETENTION_DAYS = env.int("JOB_RECORD_RETENTION_DAYS", default=30)

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# json: one JSON object per line (production's default); plain: readable lines (local runs).
# Every record passes the phone-masking filter (config/structured_logging.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "config.structured_logging.PlainFormatter"},
        "json": {"()": "config.structured_logging.JsonFormatter"},
    },
    "filters": {
        "mask_phone_numbers": {"()": "config.structured_logging.PhoneMaskingFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["mask_phone_numbers"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Its INFO line "Task ... succeeded in ...: <return value>" may carry personal data;
        # each outcome is already logged, without it, as a task_outcome line
        # (jobs/operations/task_observability.py).
        "celery.app.trace": {"level": "WARNING"},
        # Its INFO line "Task ... received" carries the job's arguments (personal data).
        "celery.worker.strategy": {"level": "WARNING"},
    },
}

# --- Integrations ---------------------------------------------------------------------------
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_WHATSAPP_FROM = env("TWILIO_WHATSAPP_FROM", default="")
TWILIO_BASE_URL = env("TWILIO_BASE_URL", default="")
# Where Twilio posts delivery statuses (.../webhooks/twilio/status); empty: statuses are not asked for.
TWILIO_STATUS_CALLBACK_URL = env("TWILIO_STATUS_CALLBACK_URL", default="")
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_BASE_URL = env("STRIPE_BASE_URL", default="")
VEHICLE_HISTORY_API_KEY = env("VEHICLE_HISTORY_API_KEY", default="")
VEHICLE_HISTORY_BASE_URL = env("VEHICLE_HISTORY_BASE_URL", default="")
FX_BASE_URL = env("FX_BASE_URL", default="")
# Which client each integration uses, like Django's EMAIL_BACKEND: a dotted path, or empty
# for "the real one when its credentials are set, else the console one" (integrations/backends.py).
TWILIO_BACKEND = env("TWILIO_BACKEND", default="")
STRIPE_BACKEND = env("STRIPE_BACKEND", default="")
VEHICLE_HISTORY_BACKEND = env("VEHICLE_HISTORY_BACKEND", default="")
FX_BACKEND = env("FX_BACKEND", default="")
# Every outside HTTP call: seconds to connect, seconds to wait for each read. SDK retries are
# off everywhere; retrying has one home, the task base (platform/jobs/task_base.py).
INTEGRATION_CONNECT_TIMEOUT = env.float("INTEGRATION_CONNECT_TIMEOUT", default=3.0)
INTEGRATION_READ_TIMEOUT = env.float("INTEGRATION_READ_TIMEOUT", default=10.0)
# Shared limits per integration, across all workers ("N/s", "N/m", "N/h"; integrations/ratelimit.py).
# RATE_LIMITS="twilio=5/s" in the environment overrides one entry.
RATE_LIMITS = {
    "twilio": "10/s",
    "stripe": "25/s",
    "vehicle_history": "30/m",
    "fx": "60/m",
    **env.dict("RATE_LIMITS", default={}),
}
# The window is stretched by this fraction so network jitter between us and the provider seldom
# makes the provider see more than N in one of its windows (Twilio queues what arrives over a
# sender's rate; 0.1 cost bulk sends a tenth of their limit: README, bench 11).
RATE_LIMIT_WINDOW_MARGIN = env.float("RATE_LIMIT_WINDOW_MARGIN", default=0.02)
# While Redis is unreachable each process keeps 1/N of every shared limit (integrations/ratelimit.py,
# http_api/ratelimit.py), N being the most of: the processes last seen sharing it, the live worker
# processes Celery's inspect reports, and this floor (docs/redis-outage.md).
RATE_LIMIT_FALLBACK_PROCESSES = env.int("RATE_LIMIT_FALLBACK_PROCESSES", default=4)

# --- Trigger API (platform/http_api/conf.py) ----------------------------------------------
# Requests per API key per window, shared by every web process through Redis ("600/m", "20/s").
API_RATE_LIMIT = env("API_RATE_LIMIT", default="600/m")
# 413 past this: room for a bulk send to API_MAX_BULK_RECIPIENTS numbers (about 20 bytes each).
API_MAX_BODY_BYTES = 128 * 1024
# Recipients one bulk WhatsApp job may name; it fans out to chunk jobs (messaging/bulk.py).
API_MAX_BULK_RECIPIENTS = env.int("API_MAX_BULK_RECIPIENTS", default=5000)
API_IDEMPOTENCY_TTL_SECONDS = 24 * 3600  # an Idempotency-Key returns its first job this long
# One publish to the broker from a request: fail fast, so a hung broker still answers 503 at once.
API_PUBLISH_TIMEOUT_SECONDS = 0.3
# How long a web process trusts an API key row it read (at most 1 s: a revoked key is refused
# within a second, docs/contract.md section 3; revocations also reach every process through
# Redis at once, http_api/keys.py).
API_KEY_CACHE_SECONDS = 1.0

# --- Flower ---------------------------------------------------------------------------------
FLOWER_BASIC_AUTH = env("FLOWER_BASIC_AUTH", default="")
# Where the web process reaches Flower, which the admin serves at /admin/flower/ behind the staff
# login (jobs/operations/flower_proxy.py), with FLOWER_BASIC_AUTH; the ops dashboard links each
# queue there. Empty: no Flower in the admin.
FLOWER_URL = env.str("FLOWER_URL", default="http://127.0.0.1:5555")


def rabbitmq_management_api(broker_url: str) -> str:
    """The management API (rabbitmq_management plugin) of the first node a RabbitMQ broker URL
    names, with its credentials: amqp://u:p@mq1:5672/vh -> http://u:p@mq1:15672/api/ (amqps: https
    on 15671). Flower adds `queues/<vhost>` itself."""
    node = urlsplit(broker_url.split(";", 1)[0])
    secure = node.scheme == "amqps"
    credentials = f"{node.username or 'guest'}:{node.password or 'guest'}"
    port = 15671 if secure else 15672
    return f"{'https' if secure else 'http'}://{credentials}@{node.hostname or 'localhost'}:{port}/api/"


# On RabbitMQ, Flower's Broker page reads queue lengths from the management API (flowerconfig.py
# passes this as Flower's broker_api); by default the first broker node's, as the broker URL's user.
# On Redis Flower reads the queues from the broker itself (jobs/operations/flower_broker.py): unused.
FLOWER_BROKER_API = env.str(
    "FLOWER_BROKER_API", default=rabbitmq_management_api(CELERY_BROKER_URL) if BROKER_IS_RABBITMQ else ""
)

# --- Marketplace thresholds (marketplace/selectors.py, audit/selectors.py) -------------------
# A lead or deal with no activity for this many days is followed up (check_stalled_deals).
STALLED_LEAD_AFTER_DAYS = env.int("STALLED_LEAD_AFTER_DAYS", default=3)
STALLED_DEAL_AFTER_DAYS = env.int("STALLED_DEAL_AFTER_DAYS", default=7)
# A broker's commission: this fraction of the deal's agreed price (Decimal, never float).
BROKER_COMMISSION_RATE = Decimal(env.str("BROKER_COMMISSION_RATE", default="0.03"))
# Audit-log rows older than this are deleted by cleanup_old_audit_logs.
AUDIT_LOG_RETENTION_DAYS = env.int("AUDIT_LOG_RETENTION_DAYS", default=365)

# === Content-Security-Policy (django-csp 4; docs/security.md) ================================
# Every response carries a policy: scripts, styles, images, fonts and fetches from this site
# only; no inline script or style at all (the platform's pages load theirs from static files);
# never framed (frame-ancestors 'none'); every violation reported to our own endpoint, which logs
# it (http_api/csp_violations.py). The middleware sits in front of every other but the request
# metrics, so the API's reshaped errors carry the header too.
INSTALLED_APPS += [
    "csp",
    # django-ninja as an app: the API docs (/api/v1/docs) render from its own templates and static
    # files (Swagger UI, its init script a file), never from a CDN (ninja/openapi/docs.py).
    "ninja",
]
MIDDLEWARE.insert(
    MIDDLEWARE.index("jobs.operations.metrics.RequestMetricsMiddleware") + 1, "csp.middleware.CSPMiddleware"
)
# Site-wide pages of our own: 403_csrf.html, Django's CSRF failure page without its inline style.
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], ROOT_DIR / "platform" / "config" / "templates"]
# Where browsers send violation reports, answered by http_api/csp_violations.py. report-uri, not
# report-to: every browser sends it at once, where Chromium holds report-to's for up to a minute
# (the endpoint reads both formats, so adding report-to later is a settings change).
CSP_REPORT_PATH = "/csp-violations"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # data: for the small SVG icons inside Swagger UI's stylesheet (the API docs).
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "report-uri": CSP_REPORT_PATH,
    },
}


# --- Sealed arguments (jobs/sealing.py, docs/security.md) ------------------------------------
# Fernet keys, comma-separated: the first seals, every one unseals (rotation: add the new key
# first, run `manage.py reseal`, then drop the old one). Unset, a key derived from SECRET_KEY, so
# `make run` and the tests work with nothing configured; production requires it
# (config/settings/production.py). Each key is checked at start-up (jobs/sealing_keys.py), never in a task.
SEALED_ARGUMENT_KEYS = sealing_key_ring(env.str("SEALED_ARGUMENT_KEYS", default=""), SECRET_KEY)

# --- Staff sign-in: two factors, throttled guesses, password policy (platform/staff_auth/) -----
# Kept in one block (docs/security.md). The admin site is staff_auth's (StaffAdminSite, installed
# as the admin app's default site below); django-otp keeps the devices, django-axes the attempts.
INSTALLED_APPS = [
    "staff_auth.admin_config.StaffAdminConfig" if app == "django.contrib.admin" else app
    for app in INSTALLED_APPS
] + [
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "staff_auth",
]
# OTPMiddleware right after authentication: request.user.is_verified() says whether this session
# passed a second factor. AxesMiddleware last: it turns a locked-out login into the lockout page.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
# Axes' backend first: a locked-out username or address is refused before its password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Every staff login asks for a code from an authenticator app (TOTP) or a backup code. On by
# default, production included; config/settings/local.py turns it off for `make run`.
STAFF_TWO_FACTOR_REQUIRED = env.bool("STAFF_TWO_FACTOR_REQUIRED", default=True)
# The name authenticator apps show beside the code.
OTP_TOTP_ISSUER = "Vehicle-export back office"

# django-axes: failed logins counted per username and, separately, per client address; either
# reaching the limit refuses further logins (the right password included) until the cool-off
# passes or staff unlock it in admin (Access attempts). https://django-axes.readthedocs.io/
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True  # a login that passed both factors forgets that user's failures
AXES_LOCKOUT_TEMPLATE = "admin/staff_auth/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "staff_auth.addresses.client_address"
# The unlock actions, audited, are staff_auth's admin (staff_auth/admin.py), not axes' own.
AXES_ENABLE_ADMIN = False
# What axes keeps of a failed login's form (AccessAttempt.post_data) and logs: the password (always),
# the authentication codes (the login's, and /admin/two-factor/'s proof) and the CSRF token
# masked too; usernames and addresses masked in its logs.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code", "current_code", "csrfmiddlewaretoken"]
AXES_VERBOSE = False  # no "AXES: BEGIN" line from every process that starts Django
# Reverse proxies in front of the web process that append the client's address to
# X-Forwarded-For (ops: 1 behind the TLS proxy). 0: REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# The trigger API: presenting bad API keys from one address spends this budget ("N/s", "N/m");
# past it the address is answered 429 with Retry-After, its keys not even looked at.
API_BAD_KEY_RATE = env("API_BAD_KEY_RATE", default="10/m")

# Django's password validators: minimum length 12, not a common password, not all digits, not
# like the user's name or e-mail. Every form that sets a password checks them (admin,
# createsuperuser, changepassword).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
