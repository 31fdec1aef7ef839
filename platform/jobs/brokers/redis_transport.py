"""kombu's Redis transport with a heartbeat: live workers keep the jobs they hold alive, so the
visibility timeout can be short and a dead worker's jobs come back within about a minute.

kombu emulates acknowledgements on Redis: a delivered message is recorded in the `unacked` hash
and in the `unacked_index` sorted set, scored with its delivery time, and every consumer sweeps
the index now and then (`restore_visible`), putting back on its queue, marked redelivered, each
message scored older than `visibility_timeout`. Alone, that makes the timeout a trade: short, and
a job that runs or waits for its countdown longer than it is delivered again while its worker
still holds it; long (it was 2 hours), and a dead worker's jobs wait that long.

This module adds one thing: every `unacked_heartbeat_interval` seconds (a quarter of the timeout
unless set), each consuming channel re-scores the messages it holds (running, reserved, waiting
for a countdown or ETA) with the current time, in one pipelined round trip of `ZADD XX`. The
score is then "when its holder last vouched for it", and only a message whose holder stopped
vouching (the process died, or its event loop stalled for most of a timeout) gets old enough to
be restored. Where it runs:

- a worker with an event loop (prefork, threads; Celery's default): a timer on the loop, in the
  process that holds the QoS (a prefork worker's main process, which tasks never block);
- a consumer without one (`drain_events`: gevent/eventlet pools, plain kombu consumers): from
  the poll itself, when a beat is due;
- never in publishers (beat, web, the trigger API): they hold nothing.

A solo pool runs each task on the event loop itself, so it cannot beat during a task: there,
a task longer than the timeout minus one interval is delivered again. Use prefork or threads.

Two races are closed here rather than left to chance:

- `ZADD XX` only refreshes an index entry that still exists: a heartbeat never brings back one
  that was acknowledged or restored meanwhile.
- A sweep decides from a score read a moment earlier; the holder may refresh it in between. So
  a swept message is restored only if, inside the restoring transaction (WATCH on the hash and
  the index), its score is still past the timeout. kombu's restore path does the rest, unchanged
  (`_do_restore_message`: the restored message is marked redelivered, which the task base's
  crash-loop guard counts).

What the heartbeat cannot close is kombu's BRPOP window (celery/celery#7950): a message BRPOP
took off its list is recorded in `unacked` only once the worker has read the reply, so a worker
killed in between loses it. The outbox (jobs/outbox.py) brings those back.
"""

from __future__ import annotations

import logging
from time import monotonic, time

import redis
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

logger = logging.getLogger(__name__)

# The heartbeat's period when `unacked_heartbeat_interval` is not set: this fraction of the
# visibility timeout, so a holder may miss three beats in a row before its jobs are given away.
HEARTBEAT_FRACTION = 0.25


def heartbeat_interval(transport_options: dict) -> float:
    """Seconds between heartbeats for a connection with these transport options."""
    interval = transport_options.get("unacked_heartbeat_interval")
    if interval:
        return float(interval)
    timeout = transport_options.get("visibility_timeout") or kombu_redis.Channel.visibility_timeout
    return max(1.0, float(timeout) * HEARTBEAT_FRACTION)


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS, plus `heartbeat` and a sweep that never restores a refreshed message."""

    def held_tags(self) -> list[str]:
        """Delivery tags this channel holds and has not acknowledged. Called from the consuming
        thread; copying with tuple()/set() is atomic under the GIL should an ack from a pool
        thread mark one dirty at the same moment."""
        dirty = set(self._dirty)
        return [tag for tag in tuple(self._delivered) if tag not in dirty]

    def holds(self, tag: str) -> bool:
        return tag in self._delivered and tag not in self._dirty

    def heartbeat(self) -> int:
        """Re-score every message this channel holds with the current time; returns how many
        were refreshed. One round trip, whatever the count."""
        tags = self.held_tags()
        if not tags:
            return 0
        now = time()
        with self.channel.conn_or_acquire() as client:
            with client.pipeline(transaction=False) as pipe:
                for tag in tags:
                    # XX: refresh, never add. CH: 1 if this entry was there to refresh.
                    pipe.zadd(self.unacked_index_key, {tag: now}, xx=True, ch=True)
                refreshed = pipe.execute()
        # An entry missing while we still hold its message was restored by another consumer's
        # sweep: our beats stopped for most of a timeout. It may now run twice; say so.
        given_away = [
            tag for tag, found in zip(tags, refreshed, strict=True) if not found and self.holds(tag)
        ]
        if given_away:
            logger.warning(
                "%d message(s) this worker holds were redelivered to others after its heartbeat "
                "stalled for about %ss (visibility timeout); they may run twice: %s",
                len(given_away),
                self.visibility_timeout,
                ", ".join(given_away[:10]),
            )
        return len(tags) - len(given_away)

    def restore_visible(self, start=0, num=10, interval=10):
        # kombu's sweep (same throttle, mutex and scan), with `restore_if_still_stale` in place
        # of `restore_by_tag`, which stays as it is for the holder's own restores (reject with
        # requeue, restore at shutdown): those restore whatever the score.
        self._vrestore_count += 1
        if (self._vrestore_count - 1) % (interval or 1):
            return
        with self.channel.conn_or_acquire() as client:
            ceiling = time() - self.visibility_timeout
            try:
                with kombu_redis.Mutex(client, self.unacked_mutex_key, self.unacked_mutex_expire):
                    stale = client.zrange(
                        self.unacked_index_key,
                        ceiling,
                        0,
                        desc=True,
                        byscore=True,
                        offset=num and start,
                        num=num,
                        withscores=True,
                    )
                    for tag, _score in stale or []:
                        self.restore_if_still_stale(bytes_to_str(tag), client)
            except kombu_redis.MutexHeld:
                pass

    def restore_if_still_stale(self, tag: str, client=None) -> None:
        """Restore `tag` (marked redelivered) unless its score shows a holder vouched for it
        within the visibility timeout."""

        def restore_transaction(pipe) -> None:
            score = pipe.zscore(self.unacked_index_key, tag)
            payload = pipe.hget(self.unacked_key, tag)
            pipe.multi()
            if score is not None and score > time() - self.visibility_timeout:
                return  # its holder's heartbeat refreshed it since the scan: it is alive
            self._remove_from_indices(tag, pipe)
            if payload:
                message, exchange, routing_key = loads(bytes_to_str(payload))
                self.channel._do_restore_message(message, exchange, routing_key, pipe)

        # Watching the index too: a heartbeat landing between the check and EXEC aborts the
        # transaction, and redis-py runs it again, with the fresh score.
        with self.channel.conn_or_acquire(client) as client:
            client.transaction(restore_transaction, self.unacked_key, self.unacked_index_key)


class Channel(kombu_redis.Channel):
    QoS = QoS

    #: Seconds between heartbeats; None: HEARTBEAT_FRACTION of visibility_timeout.
    unacked_heartbeat_interval = None

    from_transport_options = kombu_redis.Channel.from_transport_options + ("unacked_heartbeat_interval",)

    @property
    def heartbeat_interval(self) -> float:
        return heartbeat_interval(
            {
                "unacked_heartbeat_interval": self.unacked_heartbeat_interval,
                "visibility_timeout": self.visibility_timeout,
            }
        )

    def _create_client(self, asynchronous=False):  # noqa: ANN001, ANN202
        # kombu builds a new redis.Redis for every command it sends outside a poll (each publish,
        # each task-sent event): ~0.2 ms of Python apiece, as much as the round trip. A client is
        # only a handle on the channel's connection pool and safe across threads: one per pool.
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        cached = self._sync_client
        if cached is None or cached.connection_pool is not pool:
            cached = self._sync_client = super()._create_client()
        return cached

    _sync_client = None

    def _connparams(self, asynchronous=False):  # noqa: ANN001, ANN202
        if self.connection.client is None:
            # kombu detached this channel's transport from its connection (Connection._close, as
            # Celery's consumer tears down after the broker went away); a channel closed now still
            # restores its unacked messages through a new client, and kombu would fail on the
            # missing URL with an AttributeError, which the worker treats as unrecoverable and
            # exits on. It is a lost connection: the consumer reconnects, and a sweep restores
            # what this channel held once its heartbeat stops.
            raise redis.exceptions.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class MultiChannelPoller(kombu_redis.MultiChannelPoller):
    _last_heartbeat = float("-inf")

    def heartbeat_unacked(self) -> None:
        """Refresh what every channel of this connection holds (the event loop's timer)."""
        self._last_heartbeat = monotonic()
        for channel in list(self._channels):
            qos = channel._qos  # never create a QoS for a channel that has none (publishers)
            if qos is None:
                continue
            try:
                qos.heartbeat()
            except channel.connection_errors:
                # The loop's own reconnection takes over; a later beat will do.
                logger.debug("heartbeat of held messages: connection error", exc_info=True)
                return
            except channel.ResponseError:
                # E.g. a full Redis refusing writes: consuming may still work; keep trying.
                logger.warning("heartbeat of held messages refused by Redis", exc_info=True)

    def get(self, callback, timeout=None):
        # drain_events() consumers have no event loop timer: beat from the poll when one is due.
        if self._channels:
            due = min(channel.heartbeat_interval for channel in self._channels)
            if monotonic() - self._last_heartbeat >= due:
                self.heartbeat_unacked()
        return super().get(callback, timeout)


class Transport(kombu_redis.Transport):
    """Select with Celery's `broker_transport` = "jobs.brokers.redis_transport:Transport"."""

    Channel = Channel

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cycle = MultiChannelPoller()

    def register_with_event_loop(self, connection, loop) -> None:
        super().register_with_event_loop(connection, loop)
        cycle = self.cycle
        # Like kombu's own timers: drop the one a previous connection registered.
        previous = getattr(cycle, "_heartbeat_tref", None)
        if previous is not None:
            previous.cancel()
        cycle._heartbeat_tref = loop.call_repeatedly(
            heartbeat_interval(connection.client.transport_options), cycle.heartbeat_unacked
        )
