"""gunicorn configuration for the web process: `gunicorn -c ops/gunicorn.conf.py config.wsgi`.

gthread workers: 2 processes x 4 threads answered ~35 % more requests than 3 sync workers on
2 cores (docs/baselines.md). Every value can be overridden from the environment
(ops/platform.env.example)."""

import os

# Bind privately (behind the reverse proxy): /metrics and /healthz are unauthenticated.
bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# A request that takes longer than this is killed with its worker; the API answers in
# milliseconds, admin pages in well under a second.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
# Recycle workers now and then (with jitter, so not all at once): bounds slow leaks.
max_requests = 5000
max_requests_jitter = 500
# The app is imported once, in the master, and each worker is forked from it: a recycled worker
# is back in milliseconds instead of importing Django again, which under load (a recycle every
# ~20 s per worker at a few hundred requests a second) stalled its requests for a second or more
# on 2 cores (README, Benchmarks). Nothing connects at import (database, Redis and broker
# connections are opened per worker, on first use), so no socket is shared across the fork.
preload_app = os.environ.get("WEB_PRELOAD", "1") not in ("0", "false", "no")
# Requests are logged once, as JSON, by jobs.operations.metrics.RequestMetricsMiddleware through Django's
# LOGGING; gunicorn's own access log would repeat them without masking.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Trust X-Forwarded-* only from the local reverse proxy.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "platform-web"


def child_exit(server, worker) -> None:
    # prometheus-client multiprocess mode: forget the live gauges of a worker that exited.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Not at the top: prometheus-client picks its mode when first imported, and the master must not
        # import it before the environment it reads is final.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
