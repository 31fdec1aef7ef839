"""GET /healthz: database, cache, broker, workers and beat, checked concurrently within 2 s."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from django_redis import get_redis_connection

from jobs.brokers import current_broker
from jobs.celery_app import app
from jobs.operations.queue_ops import require_broker
from jobs.schedules.scheduler import CANNOT_ACT_CACHE_KEY, read_beat_heartbeat

# Checks that make the platform unable to accept work: their failure answers 503.
CRITICAL = ("database", "broker")
DEADLINE_SECONDS = 1.5
BEAT_MAX_AGE_SECONDS = 60
BROKER_TIMEOUT_SECONDS = 1.0

# Shared, bounded pool: a hung dependency ties up at most these threads, never the request.
_pool = ThreadPoolExecutor(max_workers=10, thread_name_prefix="healthz")
# Each check's run still in flight, with when it started. A check runs at most once at a time:
# a request finding it still running waits on that run instead of starting another, so a check
# that hangs holds one thread, however many requests come, never the whole pool.
_in_flight: dict[str, tuple[Future, float]] = {}
_in_flight_lock = threading.Lock()


def check_database() -> dict:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    finally:
        connection.close()


def check_cache() -> dict:

    get_redis_connection("default").ping()
    return {"ok": True}


def check_broker() -> dict:
    # Redis: PING. RabbitMQ: an AMQP handshake with every node at once; ok if one answers.
    return {"ok": True, **current_broker().ping(BROKER_TIMEOUT_SECONDS)}


def check_workers() -> dict:

    # A broadcast to a broker that does not answer would retry without end (kombu's publish
    # retry has no bound there) and hold this thread for good: ask the broker first, briefly.
    require_broker()
    replies = app.control.ping(timeout=0.5) or []
    names = sorted(name for reply in replies for name in reply)
    return {"ok": bool(names), "count": len(names), "workers": names}


def check_beat() -> dict:

    # The lease and heartbeat live in PostgreSQL (jobs/schedules/scheduler.py): Redis down
    # changes nothing here. A beat that cannot reach the database writes no heartbeat, so this
    # says beat is down within BEAT_MAX_AGE_SECONDS, and its log says why every tick. A beat that
    # cannot act also says so in the cache, when the cache answers: then this says it at once.
    stuck = cache.get(CANNOT_ACT_CACHE_KEY)
    if stuck:
        return {"ok": False, "detail": f"beat {stuck['identity']} cannot act: {stuck['detail']}"[:300]}
    beat = read_beat_heartbeat()
    if beat is None:
        return {"ok": False, "detail": "no heartbeat: is `celery -A tasks beat` running?"}
    ok = beat["age_seconds"] < BEAT_MAX_AGE_SECONDS
    result = {"ok": ok, "leader": beat["identity"], "heartbeat_age_seconds": beat["age_seconds"]}
    if not ok:
        result["detail"] = (
            f"no beat has ticked for {beat['age_seconds']:.0f} s: none is running, or none can "
            "reach the lease store (see beat's log: 'beat: cannot act')"
        )
    return result


CHECKS = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "workers": check_workers,
    "beat": check_beat,
}


def _guarded(check):
    def run() -> dict:
        started = time.monotonic()
        try:
            result = check()
        except Exception as exc:  # a health check reports failures, it never raises them
            result = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
        result["seconds"] = round(time.monotonic() - started, 3)
        return result

    return run


def _start(name: str, check) -> tuple[Future, float, bool]:
    """The check's run in flight, or a new one: (future, started, started by this call)."""
    with _in_flight_lock:
        running = _in_flight.get(name)
        if running is not None and not running[0].done():
            return running[0], running[1], False
        started = time.monotonic()
        future = _pool.submit(_guarded(check))
        _in_flight[name] = (future, started)
        return future, started, True


def run_checks(deadline: float = DEADLINE_SECONDS) -> dict[str, dict]:
    runs = {name: _start(name, check) for name, check in CHECKS.items()}
    wait([future for future, _, _ in runs.values()], timeout=deadline)
    results = {}
    for name, (future, started, ours) in runs.items():
        if future.done():
            results[name] = future.result()
        elif ours:
            results[name] = {"ok": False, "detail": f"no answer within {deadline} s"}
        else:
            waited = round(time.monotonic() - started, 1)
            results[name] = {
                "ok": False,
                "detail": f"still running from a previous request (no answer for {waited} s)",
            }
    return results


@require_GET
def healthz(request):
    checks = run_checks()
    critical_ok = all(checks[name]["ok"] for name in CRITICAL)
    if not critical_ok:
        status, code = "failing", 503
    elif all(check["ok"] for check in checks.values()):
        status, code = "ok", 200
    else:
        status, code = "degraded", 200
    return JsonResponse({"status": status, "checks": checks}, status=code)
