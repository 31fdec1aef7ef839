"""The beat scheduler: django-celery-beat's DatabaseScheduler, made safe to run twice.

Two or more `celery -A tasks beat` processes may run; one holds a lease in PostgreSQL (a row of
schedules_beatlease, taken by compare-and-set on the database's clock) and fires schedules, the
others stand by and take over when the lease lapses (the leader died or lost the database).
PostgreSQL, not Redis: the schedules already live there, so beat needs nothing else, and a Redis
outage stops no schedule (docs/redis-outage.md). A row, not a session advisory lock: a connection
pooler in transaction mode hands a session's lock to whoever gets the connection next. The leader
renews the lease every tick, checks it again right before sending a due run, and writes a
heartbeat (in the same row) that /healthz and the ops dashboard read. A beat that cannot reach
the lease store says so in its log every tick until it can (and /healthz, reading no fresh
heartbeat, says beat is down). Each run's last_run_at
is committed before its message is published, and a new leader re-reads every schedule from
the database, so a run the old leader already sent is not sent again, and a run it missed is
sent late, once.

Two more things stock django-celery-beat does not do:
- it notices edits made with `queryset.update()` (no signals, so PeriodicTasks.last_update is
  not touched) within a tick, by comparing a fingerprint of the schedule tables;
- a crontab whose hours are a wildcard keeps firing through the repeated hour when clocks
  fall back (stock crontab skips the second pass: a 75-minute gap in an every-15-minutes job).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from celery.schedules import schedstate
from celery.utils.time import ffwd, maybe_make_aware
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.utils import DatabaseError, InterfaceError
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry
from django_celery_beat.tzcrontab import TzAwareCrontab

from jobs.schedules.declarations import PERIODIC_TASK_FIELDS

logger = logging.getLogger(__name__)

LEASE_NAME = "beat"  # the one lease row (schedules_beatlease.name)
# Where a beat that cannot reach its lease store says so for /healthz, besides its log: the
# cache (best effort; a Redis that is down too leaves the stale heartbeat to say it).
CANNOT_ACT_CACHE_KEY = "platform:beat:cannot_act"

# Take the lease if it is free, lapsed or already ours: one statement, on the database's clock
# (clock_timestamp(), not the beats' own clocks, so clock skew between machines cannot make two
# leaders). A row is returned only when this beat holds the lease afterwards.
_ACQUIRE = """
INSERT INTO schedules_beatlease (name, holder, expires_at, heartbeat_at)
VALUES (%s, %s, clock_timestamp() + %s * interval '1 millisecond', NULL)
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE schedules_beatlease.holder = EXCLUDED.holder OR schedules_beatlease.expires_at < clock_timestamp()
RETURNING holder
"""
# Extend the lease only if we still hold it and it has not lapsed (compare-and-extend).
_RENEW = """
UPDATE schedules_beatlease SET expires_at = clock_timestamp() + %s * interval '1 millisecond'
WHERE name = %s AND holder = %s AND expires_at >= clock_timestamp()
RETURNING holder
"""
_HEARTBEAT = """
UPDATE schedules_beatlease SET heartbeat_at = clock_timestamp() WHERE name = %s AND holder = %s
"""
# Let the lease lapse now, only if we still hold it: after a lapse it may be the new leader's.
_RELEASE = """
UPDATE schedules_beatlease SET expires_at = clock_timestamp() - interval '1 second'
WHERE name = %s AND holder = %s
"""
_READ_HEARTBEAT = """
SELECT holder, expires_at >= clock_timestamp(), extract(epoch from heartbeat_at),
       extract(epoch from clock_timestamp() - heartbeat_at)
FROM schedules_beatlease WHERE name = %s
"""


class LeaseStoreUnreachable(Exception):
    """The database holding the beat lease did not answer."""


def _lease_sql(sql: str, params: list) -> list[tuple]:
    """Run one lease statement (autocommit); a database error closes the connection so the next
    tick reconnects, and raises LeaseStoreUnreachable."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    except (DatabaseError, InterfaceError) as exc:
        try:
            connection.close()
        except (DatabaseError, InterfaceError):
            pass
        raise LeaseStoreUnreachable(f"{type(exc).__name__}: {exc}".strip()[:300]) from exc


# Everything about a periodic task that changes what or when beat sends, with the fields of
# its schedule.
_FINGERPRINT_FIELDS = (
    "id",
    *PERIODIC_TASK_FIELDS,
    "interval_id",
    "interval__every",
    "interval__period",
    "crontab_id",
    "crontab__minute",
    "crontab__hour",
    "crontab__day_of_week",
    "crontab__day_of_month",
    "crontab__month_of_year",
    "crontab__timezone",
    "solar_id",
    "solar__event",
    "solar__latitude",
    "solar__longitude",
    "clocked_id",
    "clocked__clocked_time",
)


def schedule_fingerprint() -> str:
    """A hash of every periodic task and its schedule, as beat would read them (one query)."""
    rows = PeriodicTask.objects.order_by("id").values_list(*_FINGERPRINT_FIELDS)
    return hashlib.sha256(json.dumps(list(rows), default=str).encode()).hexdigest()


class PlatformCrontab(TzAwareCrontab):
    """TzAwareCrontab, right in the repeated hour when clocks fall back.

    Stock celery adds the crontab's step to the last run with datetime arithmetic, which drops
    `fold`: from a run in the second pass of 01:xx it computes the next slot in the first pass,
    in the past, so the entry is due on every tick (a storm of runs for up to an hour). Here
    the next slot is the first occurrence of the next matching wall time that is after the
    last run. And a crontab whose hours are a wildcard fires through the second pass too, as
    cron runs wildcard jobs (stock skips it: a 75-minute gap in an every-15-minutes job); a
    crontab with fixed hours (daily 01:30) still fires once, in the first pass. A wall time
    that does not exist (inside the spring-forward gap) runs once, an hour later (02:00 at
    03:00), as stock does.
    """

    @classmethod
    def from_crontab(cls, crontab: TzAwareCrontab) -> PlatformCrontab:
        return cls(
            minute=crontab._orig_minute,
            hour=crontab._orig_hour,
            day_of_week=crontab._orig_day_of_week,
            day_of_month=crontab._orig_day_of_month,
            month_of_year=crontab._orig_month_of_year,
            tz=crontab.tz,
            app=crontab._app,
        )

    def remaining_estimate(self, last_run_at: datetime, ffwd: type = ffwd) -> timedelta:
        last_local, step, now = self.remaining_delta(last_run_at, ffwd=ffwd)
        last = last_local.astimezone(UTC)
        next_run = self._first_occurrence_after(last_local + step, last)
        if set(self.hour) == set(range(24)):
            # Slots of the repeated hour's second pass between the last run and the next.
            skipped = [slot for slot in self._second_pass_slots(last_local) if last < slot < next_run]
            next_run = min(skipped, default=next_run)
        return next_run - now.astimezone(UTC)

    def _first_occurrence_after(self, wall: datetime, last: datetime) -> datetime:
        naive = wall.replace(tzinfo=None, fold=0)
        occurrences = sorted(
            {
                instant
                for instant in (wall.replace(fold=f).astimezone(UTC) for f in (0, 1))
                if instant.astimezone(self.tz).replace(tzinfo=None, fold=0) == naive
            }
        )
        if not occurrences:  # inside the spring-forward gap: fold=0 reads it as an hour later
            return wall.replace(fold=0).astimezone(UTC)
        return next((o for o in occurrences if o > last), occurrences[-1])

    def _second_pass_slots(self, last_local: datetime) -> list[datetime]:
        day = last_local.date()
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        if midnight.utcoffset() == (midnight + timedelta(days=1)).utcoffset():
            return []  # no clock change that day: the common case costs two offsets
        if (
            day.month not in self.month_of_year
            or day.day not in self.day_of_month
            or day.isoweekday() % 7 not in self.day_of_week
        ):
            return []
        slots = []
        for hour in range(24):
            for minute in sorted(self.minute):
                first = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)
                second = first.replace(fold=1)
                if first.utcoffset() != second.utcoffset():  # this wall time happens twice
                    slots.append(second.astimezone(UTC))
        return slots


class PlatformModelEntry(ModelEntry):
    """A schedule entry whose crontab is a PlatformCrontab, and whose clock is its schedule's
    (one clock for "is it due" and "when did it run", so a simulated day is consistent)."""

    def __init__(self, model, app=None) -> None:
        super().__init__(model, app=app)
        crontab = getattr(self, "schedule", None)
        if isinstance(crontab, TzAwareCrontab) and not isinstance(crontab, PlatformCrontab):
            self.schedule = PlatformCrontab.from_crontab(crontab)

    def _default_now(self) -> datetime:
        if getattr(settings, "DJANGO_CELERY_BEAT_TZ_AWARE", True) and getattr(self, "schedule", None):
            return maybe_make_aware(self.schedule.now()).astimezone(self.app.timezone)
        return super()._default_now()


class LeaderDatabaseScheduler(DatabaseScheduler):
    Entry = PlatformModelEntry

    def __init__(self, *args, **kwargs) -> None:
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ms = int(settings.BEAT_LOCK_LEASE_SECONDS * 1000)
        self.is_leader = False
        self._seen_fingerprint: str | None = None
        self.cannot_act: str | None = None  # why this beat could not reach its lease, if it could not
        self._setup_pending = False  # the schedules could not be read at start: read them once we can
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        # Stock beat reads every schedule here and dies if the database does not answer; this
        # one starts anyway, says it cannot act every tick, and reads them once it can.
        try:
            super().setup_schedule()
            self._setup_pending = False
        except (DatabaseError, InterfaceError) as exc:
            self._setup_pending = True
            try:
                connection.close()
            except (DatabaseError, InterfaceError):
                pass
            self._cannot_act(LeaseStoreUnreachable(f"{type(exc).__name__}: {exc}".strip()[:300]))

    def install_default_entries(self, data) -> None:
        # Result pruning is one of our declared defaults (beat_schedules/defaults.py);
        # don't let beat add a second, undeclared one.
        return None

    # --- leadership ---------------------------------------------------------------------

    def tick(self, *args, **kwargs) -> float:
        if not self._hold_lease():
            # Standby: fire nothing, look again well before the leader's lease could lapse.
            return min(self.max_interval, self.lease_ms / 3000)
        if self._setup_pending:
            self.setup_schedule()
            if self._setup_pending:
                return min(self.max_interval, self.lease_ms / 3000)
        self._write_heartbeat()
        interval = super().tick(*args, **kwargs)
        # Come back before the lease lapses, however long nothing is due.
        return min(interval, self.lease_ms / 3000)

    def is_due(self, entry):
        # Fencing: the tick may have started long ago (a slow query, a stalled process). Check
        # the lease again just before a due run is reserved and sent, so a leader whose lease
        # lapsed meanwhile leaves the run to the new leader instead of sending it too.
        state = super().is_due(entry)
        if state.is_due and not self._still_leader():
            return schedstate(False, min(self.max_interval, self.lease_ms / 3000))
        return state

    def reserve(self, entry):
        # Commit the run's last_run_at BEFORE the message is published (stock beat publishes
        # first and saves after). A leader killed in between then loses that one run, and
        # the next comes on schedule; the other order would have the new leader, reading
        # the old last_run_at, send it a second time. If the database is down the save is
        # retried after the send, as stock does.
        new_entry = super().reserve(entry)
        self.sync()
        return new_entry

    def _still_leader(self) -> bool:
        """Renew the lease we hold; never acquire one here (a new leader must re-read first)."""
        try:
            renewed = bool(_lease_sql(_RENEW, [self.lease_ms, LEASE_NAME, self.identity]))
        except LeaseStoreUnreachable as exc:
            self._cannot_act(exc)
            renewed = False
        if not renewed and self.is_leader:
            logger.warning("beat: %s lost the lease before sending, standing by", self.identity)
            self.is_leader = False
        return renewed

    def _cannot_act(self, exc: Exception) -> None:
        # Every tick, not once: an operator reading the last lines of the log must see it.
        logger.error(
            "beat: cannot act: the lease store (PostgreSQL) is unreachable, no schedule fires "
            "until it answers: %s",
            exc,
        )
        self.cannot_act = str(exc)
        self.is_leader = False
        cache.set(
            CANNOT_ACT_CACHE_KEY,
            {"identity": self.identity, "detail": self.cannot_act},
            timeout=int(2 * min(self.max_interval, self.lease_ms / 3000)) + 1,
        )

    def _hold_lease(self) -> bool:
        try:
            if self.is_leader:
                if _lease_sql(_RENEW, [self.lease_ms, LEASE_NAME, self.identity]):
                    return True
                # The lease lapsed: someone else may have led (and sent runs) since.
                logger.warning("beat: %s lost the lease, standing by", self.identity)
                self.is_leader = False
            acquired = bool(_lease_sql(_ACQUIRE, [LEASE_NAME, self.identity, self.lease_ms]))
        except LeaseStoreUnreachable as exc:
            # Without the lease store nobody can prove leadership: stand by rather than risk
            # two leaders, and say so.
            self._cannot_act(exc)
            return False
        if self.cannot_act is not None:
            logger.warning("beat: the lease store answers again")
            self.cannot_act = None
            cache.delete(CANNOT_ACT_CACHE_KEY)
        if acquired:
            logger.info("beat: %s is now the leader", self.identity)
            # Forget what this process read before: the old leader may have sent runs since,
            # and their last-run times are in the database.
            self._initial_read = True
            self._heap = None
            # Runs of ours not yet saved (the database was down) must not overwrite what a
            # leader in between saved: after a handover the database is the truth.
            self._dirty.clear()
        self.is_leader = acquired
        return acquired

    def _write_heartbeat(self) -> None:
        try:
            _lease_sql(_HEARTBEAT, [LEASE_NAME, self.identity])
        except LeaseStoreUnreachable as exc:
            logger.warning("beat: could not write heartbeat: %s", exc)

    # --- noticing edits -------------------------------------------------------------------

    def all_as_schedule(self):
        # Fingerprint first: an edit landing between the two reads is seen by the next tick.
        self._seen_fingerprint = self._fingerprint_or_none()
        return super().all_as_schedule()

    def schedule_changed(self) -> bool:
        changed = super().schedule_changed()
        fingerprint = self._fingerprint_or_none()
        if fingerprint is None:
            return changed
        if self._seen_fingerprint is not None and fingerprint != self._seen_fingerprint:
            if not changed:
                logger.info("beat: schedules changed without a signal (bulk update); reloading")
            changed = True
        self._seen_fingerprint = fingerprint
        return changed

    def _fingerprint_or_none(self) -> str | None:
        try:
            return schedule_fingerprint()
        except (DatabaseError, InterfaceError) as exc:
            logger.warning("beat: could not read the schedule fingerprint: %r", exc)
            return None

    def close(self) -> None:
        # Hand over at once on a clean stop instead of making the standby wait for the lease.
        if self.is_leader:
            try:
                _lease_sql(_RELEASE, [LEASE_NAME, self.identity])
            except LeaseStoreUnreachable:
                pass
        super().close()


def read_beat_heartbeat() -> dict | None:
    """The lease row, from PostgreSQL: {"identity", "leading", "at", "age_seconds"} of the last
    leader's heartbeat (ages on the database's clock), or None when no beat ever led. Raises
    LeaseStoreUnreachable when the database does not answer."""
    rows = _lease_sql(_READ_HEARTBEAT, [LEASE_NAME])
    if not rows or rows[0][2] is None:
        return None
    holder, leading, at, age = rows[0]
    return {
        "identity": holder,
        "leading": bool(leading),
        "at": float(at),
        "age_seconds": round(float(age), 1),
    }
