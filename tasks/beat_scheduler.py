"""The beat scheduler: django-celery-beat's DatabaseScheduler, made safe to run twice.

Two or more `celery -A tasks beat` processes may run; one holds a lease in Redis and fires
schedules, the others stand by and take over when the lease lapses (the leader died or lost
Redis). The leader renews the lease every tick and writes a heartbeat that /healthz and the
ops dashboard read. A new leader re-reads every schedule's last run from the database, so a
run the old leader already sent is not sent again, and a run it missed is sent late, once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid

import redis
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

LEADER_KEY = "platform:beat:leader"
HEARTBEAT_KEY = "platform:beat:heartbeat"

# Extend the lease only if we still hold it (compare-and-extend, atomic in Redis).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


def beat_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2
    )


class LeaderDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs) -> None:
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ms = int(settings.BEAT_LOCK_LEASE_SECONDS * 1000)
        self.is_leader = False
        self._redis = beat_redis()
        self._renew = self._redis.register_script(_RENEW)
        super().__init__(*args, **kwargs)

    def install_default_entries(self, data) -> None:
        # Result pruning is one of our declared defaults (beat_schedules/defaults.py);
        # don't let beat add a second, undeclared one.
        return None

    def tick(self, *args, **kwargs) -> float:
        if not self._hold_lease():
            # Standby: fire nothing, look again well before the leader's lease could lapse.
            return min(self.max_interval, self.lease_ms / 3000)
        self._write_heartbeat()
        interval = super().tick(*args, **kwargs)
        # Come back before the lease lapses, however long nothing is due.
        return min(interval, self.lease_ms / 3000)

    def _hold_lease(self) -> bool:
        try:
            if self.is_leader and self._renew(keys=[LEADER_KEY], args=[self.identity, self.lease_ms]):
                return True
            acquired = bool(
                self._redis.set(LEADER_KEY, self.identity, nx=True, px=self.lease_ms)
            )
        except redis.RedisError as exc:
            # Without Redis nobody can prove leadership: stand by rather than risk two leaders.
            if self.is_leader:
                logger.warning("beat: lost Redis, standing down: %s", exc)
            self.is_leader = False
            return False
        if acquired and not self.is_leader:
            logger.info("beat: %s is now the leader", self.identity)
            # Forget what this process read while standing by: the old leader may have sent
            # runs since, and their last-run times are in the database.
            self._initial_read = True
            self._heap = None
        elif not acquired and self.is_leader:
            logger.warning("beat: %s lost the lease, standing by", self.identity)
        self.is_leader = acquired
        return acquired

    def _write_heartbeat(self) -> None:
        beat = {"identity": self.identity, "at": time.time()}
        try:
            self._redis.set(HEARTBEAT_KEY, json.dumps(beat), ex=3600)
        except redis.RedisError:
            logger.warning("beat: could not write heartbeat")

    def close(self) -> None:
        # Hand over at once on a clean stop instead of making the standby wait for the lease.
        try:
            if self.is_leader and self._redis.get(LEADER_KEY) == self.identity.encode():
                self._redis.delete(LEADER_KEY)
        except redis.RedisError:
            pass
        super().close()


def read_beat_heartbeat() -> dict | None:
    """The leader's last heartbeat: {"identity", "at", "age_seconds"}, or None."""
    raw = beat_redis().get(HEARTBEAT_KEY)
    if not raw:
        return None
    beat = json.loads(raw)
    beat["age_seconds"] = round(time.time() - beat["at"], 1)
    return beat
