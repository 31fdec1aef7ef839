"""Settings of every benchmark process: production's, plus the bench-only tasks and an API budget
large enough that the rate limiter runs on every request but never refuses one."""

from config.settings.production import *  # noqa: F403

# Bench-only tasks (a bare @shared_task no-op, probes that record timings): bench/tasks.py.
CELERY_IMPORTS = ["bench.tasks"]
# The GCRA limiter still costs its one Redis EVAL per request; 600/m would turn a load test into 429s.
API_RATE_LIMIT = "100000000/m"
# The bench talks plain HTTP to gunicorn on loopback (production sits behind a TLS proxy).
SECURE_SSL_REDIRECT = False
# The platform's URLs plus one bench-only endpoint: the trigger API's baseline (bench/urls.py).
ROOT_URLCONF = "bench.urls"
