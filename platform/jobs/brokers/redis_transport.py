"""kombu's Redis transport with a consume path that has no window: a message is always either in its
queue or in the `unacked` record that a live worker vouches for (its heartbeat), so a worker killed
at any instant loses nothing, and a dead worker's messages come back within about a minute.

kombu's layout is kept as it is (docs/redis-consume-path.md weighs it against Redis Streams
and a per-worker processing list): a queue is a Redis list per priority step, a delivered message
is recorded in the `unacked` hash and the `unacked_index` sorted set, scored with when it was last
vouched for, and a sweep (`restore_visible`) puts back on its queue, marked redelivered, every
message scored older than `visibility_timeout`. What changes is how a consumer takes a message.

**Taking (the window closed).** Stock kombu BRPOPs the message off its list and records it as
unacknowledged only after the worker has read the reply: a worker killed in between loses it for
good (celery/celery#7950, kombu#305). Here a consumer takes with one server-side script
(`TAKE_SCRIPT`) that pops the first waiting message of its queues, in kombu's order (priority,
then the queue cycle), and records it in `unacked` and `unacked_index` in the same atomic step.
Whatever happens to the worker after that, the message is in the record; if nobody vouches for it,
the sweep gives it back.

**Waiting (no busy poll).** A script cannot block, so an idle consumer blocks on a wake-up list
per queue instead (`_kombu.wake.<queue>`, BLPOP with kombu's one-second poll timeout): every
publish through this transport pushes a token there after its message, in the same pipeline. A
consumer alternates: it takes while messages come (no wake-up needed: a busy queue costs one
round trip per message), and when a take finds nothing the same script deletes those queues'
stale tokens and the consumer waits for a token. A wake-up or a timeout sends it back to taking,
so a message published without a token (stock kombu, another program) is taken within a second.
Losing a token (a consumer killed just after its BLPOP) loses nothing but that second.

**Vouching (the heartbeat).** Every `unacked_heartbeat_interval` seconds (a quarter of the
timeout unless set) each consuming channel re-scores the messages it holds (running, reserved,
waiting for a countdown or ETA) with the current time, in one pipelined round trip of `ZADD XX`.
Only a message whose holder stopped vouching (the process died, or its event loop stalled for most
of a timeout) gets old enough to be restored. Where it runs:

- a worker with an event loop (prefork, threads; Celery's default): a timer on the loop, in the
  process that holds the QoS (a prefork worker's main process, which tasks never block);
- a consumer without one (`drain_events`: gevent/eventlet pools, plain kombu consumers): from
  the poll itself, when a beat is due;
- never in publishers (beat, web, the trigger API): they hold nothing.

A solo pool runs each task on the event loop itself, so it cannot beat during a task: there,
a task longer than the timeout minus one interval is delivered again. Use prefork or threads.

**Races closed rather than left to chance.**

- `ZADD XX` only refreshes an index entry that still exists: a heartbeat never brings back one
  that was acknowledged or restored meanwhile.
- A sweep decides from a score read a moment earlier; the holder may refresh it in between. So a
  swept message is restored only if, inside the restoring transaction (WATCH on the hash and the
  index), its score is still past the timeout.
- A restored message gets a new delivery tag: a holder that was only frozen (SIGSTOP, a stalled
  host) and acknowledges it late removes nothing of the new holder's record.
- A take whose reply is in flight is always read, even when the channel's prefetch has just been
  lowered (kombu pauses an unread BRPOP reply until credit returns; a taken message must not wait
  unvouched, so it is delivered one over the prefetch instead).

**Sentinel.** `SentinelTransport` is the same consume path on a master found through Sentinel
(kombu's Sentinel-managed connection pools), and with `publish_replicas` each publish ends with
Redis's `WAIT`, so a publish that returned is on a replica and survives a failover
(docs/brokers.md, "Redis with Sentinel").

**global_keyprefix.** kombu prefixes only the commands it lists (`PREFIXED_SIMPLE_COMMANDS`);
scripts and every command outside that list get their keys spelled in full here (`_full_key`).
"""

from __future__ import annotations

import hashlib
import logging
from time import monotonic, time

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

logger = logging.getLogger(__name__)

# The heartbeat's period when `unacked_heartbeat_interval` is not set: this fraction of the
# visibility timeout, so a holder may miss three beats in a row before its jobs are given away.
HEARTBEAT_FRACTION = 0.25

# One wake-up list per queue; its tokens mean "a message may be waiting".
WAKE_KEY = "_kombu.wake.{queue}"
WAKE_TOKEN = "1"  # noqa: S105 a wake-up marker pushed on a list, not a credential

# KEYS: the unacked hash, the unacked index, then every list to take from, in order.
# ARGV: now (the index score), then per list: its queue, "1" to record the message (a consumer
# that acknowledges) or "0" (no_ack: reply queues), the queue's wake-up key.
# Returns {queue, raw message, delivery tag or ""}, or nil after deleting the wake-up keys of
# queues that are all empty (any token pushed later follows a message pushed later).
# The record is built from the raw text, never re-encoded: cjson would turn [] into {}.
TAKE_SCRIPT = """
local unacked, index, now = KEYS[1], KEYS[2], ARGV[1]
for i = 3, #KEYS do
  local raw = redis.call('RPOP', KEYS[i])
  if raw then
    local at = 2 + (i - 3) * 3
    local tag = ''
    if ARGV[at + 1] == '1' then
      local ok, message = pcall(cjson.decode, raw)
      local properties = ok and type(message) == 'table' and message['properties']
      local info = type(properties) == 'table' and properties['delivery_info']
      if type(info) == 'table' and type(properties['delivery_tag']) == 'string' then
        tag = properties['delivery_tag']
        redis.call('HSET', unacked, tag, '[' .. raw .. ',' .. cjson.encode(info['exchange'] or '') ..
          ',' .. cjson.encode(info['routing_key'] or '') .. ']')
        redis.call('ZADD', index, now, tag)
      end
    end
    return {ARGV[at], raw, tag}
  end
end
local wake = {}
for i = 3, #KEYS do
  wake[#wake + 1] = ARGV[2 + (i - 3) * 3 + 2]
end
if #wake > 0 then
  redis.call('DEL', unpack(wake))
end
return false
"""
# Redis names scripts by their SHA-1 (a name, not a security measure).
TAKE_SHA = hashlib.sha1(TAKE_SCRIPT.encode(), usedforsecurity=False).hexdigest()


def heartbeat_interval(transport_options: dict) -> float:
    """Seconds between heartbeats for a connection with these transport options."""
    interval = transport_options.get("unacked_heartbeat_interval")
    if interval:
        return float(interval)
    timeout = transport_options.get("visibility_timeout") or kombu_redis.Channel.visibility_timeout
    return max(1.0, float(timeout) * HEARTBEAT_FRACTION)


def _full_key(client, key: str, command: str) -> str:
    """`key` as `command` must name it through `client`: kombu's prefixing client adds
    global_keyprefix only to the commands it lists."""
    prefix = getattr(client, "global_keyprefix", "")
    if prefix and command not in getattr(client, "PREFIXED_SIMPLE_COMMANDS", ()):
        return prefix + key
    return key


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS, plus `heartbeat`, a sweep that never restores a refreshed message, and
    no second write for a message the take script has already recorded."""

    def append(self, message, delivery_tag):
        if self.channel.taken_and_recorded(delivery_tag):
            virtual.QoS.append(self, message, delivery_tag)  # only this process's bookkeeping
        else:
            super().append(message, delivery_tag)  # e.g. a message rejected for want of a consumer

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
            score = pipe.zscore(_full_key(pipe, self.unacked_index_key, "ZSCORE"), tag)
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


class _PipelinePublish:
    """What kombu's `_put` needs of a publish batch (`add`), queued on one pipeline: the message
    and its wake-up token then go in one round trip."""

    def __init__(self, pipe) -> None:
        self.pipe = pipe

    def add(self, name: str, *args) -> None:
        getattr(self.pipe, name)(*args)


class Channel(kombu_redis.Channel):
    QoS = QoS

    #: Seconds between heartbeats; None: HEARTBEAT_FRACTION of visibility_timeout.
    unacked_heartbeat_interval = None

    #: Replicas that must have a publish before it returns (WAIT); 0: none asked (one Redis).
    publish_replicas = 0
    #: The most a publish waits for them, in seconds (and never half the socket timeout or more).
    publish_replica_timeout = 0.5

    from_transport_options = kombu_redis.Channel.from_transport_options + (
        "unacked_heartbeat_interval",
        "publish_replicas",
        "publish_replica_timeout",
    )

    # The consume path's state: the next poll takes at once (`_hungry`) or waits for a wake-up;
    # `_taking` while a take's reply is in flight.
    _hungry = True
    _taking = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._no_ack_queues: set[str] = set()
        self._recorded_tags: set[str] = set()

    @property
    def heartbeat_interval(self) -> float:
        return heartbeat_interval(
            {
                "unacked_heartbeat_interval": self.unacked_heartbeat_interval,
                "visibility_timeout": self.visibility_timeout,
            }
        )

    # --- publishing: the message, then its wake-up token --------------------------------------

    def wake_key(self, queue: str) -> str:
        return WAKE_KEY.format(queue=queue)

    def _put(self, queue, message, **kwargs):
        batch = kwargs.pop("_publish_batch", None)
        if batch is not None:
            super()._put(queue, message, _publish_batch=batch)
            batch.add("lpush", self.wake_key(queue), WAKE_TOKEN)
            if self.publish_replicas:
                batch.add("execute_command", *self._wait_for_replicas())
            return
        with self.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            super()._put(queue, message, _publish_batch=_PipelinePublish(pipe))
            pipe.lpush(self.wake_key(queue), WAKE_TOKEN)
            if self.publish_replicas:
                pipe.execute_command(*self._wait_for_replicas())
            pipe.execute()

    # --- replicas: a publish returns once they have it (Sentinel sets) ---------------------------

    def _wait_for_replicas(self) -> tuple:
        """WAIT's arguments: Redis answers once `publish_replicas` replicas have every write this
        connection made (the message and its token), or after the timeout with how many did."""
        bound = self.publish_replica_timeout
        if self.socket_timeout:
            bound = min(bound, self.socket_timeout / 2)  # its reply must come before the socket gives up
        return ("WAIT", self.publish_replicas, max(1, int(bound * 1000)))

    _unconfirmed_warned_at = float("-inf")

    def _replicas_confirmed(self, reply, **options) -> int:
        """WAIT's reply (a response callback of the channel's client, so a publish batch's WAIT is
        read too): fewer replicas than asked is worth a warning, not a failed publish."""
        confirmed = int(reply)
        if confirmed < self.publish_replicas and monotonic() - self._unconfirmed_warned_at > 60:
            self._unconfirmed_warned_at = monotonic()
            logger.warning(
                "publish not confirmed by %d replica(s) within %ss (%d did): until one does, a job "
                "published now is lost if the Redis master is lost before it replicates",
                self.publish_replicas,
                self.publish_replica_timeout,
                confirmed,
            )
        return confirmed

    def _do_restore_message(self, payload, exchange, routing_key, pipe, leftmost=False):
        # A new delivery tag for the new delivery (see the module's docstring), and a wake-up.
        try:
            payload["properties"]["delivery_tag"] = self._next_delivery_tag()
        except (KeyError, TypeError):
            pass
        super()._do_restore_message(payload, exchange, routing_key, pipe, leftmost)
        for queue in self._lookup(exchange, routing_key):
            pipe.lpush(self.wake_key(queue), WAKE_TOKEN)

    def _purge(self, queue):
        purged = super()._purge(queue)
        with self.conn_or_acquire() as client:
            client.delete(self.wake_key(queue))
        return purged

    # --- consuming: take atomically, or wait for a wake-up --------------------------------------

    def basic_consume(self, queue, no_ack, *args, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._no_ack_queues.discard(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue, no_ack=False, **kwargs):
        self._get_no_ack = no_ack
        try:
            return super().basic_get(queue, no_ack, **kwargs)
        finally:
            self._get_no_ack = False

    _get_no_ack = False

    def taken_and_recorded(self, tag: str) -> bool:
        """True once for a tag the take script recorded as unacknowledged."""
        if tag in self._recorded_tags:
            self._recorded_tags.discard(tag)
            return True
        return False

    @property
    def script_client(self) -> redis.Redis:
        """A client on the channel's pool that prefixes nothing: scripts get full key names."""
        client = self.__dict__.get("_script_client")
        if client is None or client.connection_pool is not self.pool:
            client = self.__dict__["_script_client"] = redis.Redis(connection_pool=self.pool)
        return client

    def _prefixed(self, key: str) -> str:
        return self.global_keyprefix + key

    def _take_command(self, queues: list[str], record: bool | None = None) -> list:
        """EVALSHA arguments that take the first waiting message of `queues`."""
        lists, argv = [], [repr(time())]
        for pri in self.priority_steps:
            for queue in queues:
                lists.append(self._prefixed(self._q_for_pri(queue, pri)))
                records = (queue not in self._no_ack_queues) if record is None else record
                argv += [queue, "1" if records else "0", self._prefixed(self.wake_key(queue))]
        keys = [self._prefixed(self.unacked_key), self._prefixed(self.unacked_index_key), *lists]
        return ["EVALSHA", TAKE_SHA, len(keys), *keys, *argv]

    def _load_take_script(self) -> None:
        self.script_client.script_load(TAKE_SCRIPT)

    def _taken(self, reply) -> tuple[str, dict]:
        """(queue, payload) from a take's reply, its tag remembered if the script recorded it."""
        queue, raw, tag = (bytes_to_str(part) for part in reply)
        if tag:
            self._recorded_tags.add(tag)
        return queue, loads(raw)

    def _brpop_start(self, timeout=None):
        # kombu's name: this sends the poll's one command, a take or a wait for a wake-up.
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        connection = self.client.connection
        self._in_poll = connection
        self._brpop_sent_at = monotonic()
        if self._hungry:
            self._taking = True
            connection.send_command(*self._take_command(queues))
        else:
            self._taking = False
            wake_keys = [self._prefixed(self.wake_key(queue)) for queue in queues]
            connection.send_command("BLPOP", *wake_keys, timeout or 0)

    def _brpop_read(self, **options):
        taking = self._taking
        try:
            try:
                reply = self.client.parse_response(
                    self.client.connection, "EVALSHA" if taking else "BLPOP", **options
                )
            except redis.exceptions.NoScriptError:
                self._load_take_script()  # a restarted or flushed Redis: load it, take next poll
                raise kombu_redis.Empty() from None
            except self.connection_errors:
                # if there's a ConnectionError, disconnect so the next iteration reconnects.
                self.client.connection.disconnect()
                raise
        finally:
            self._in_poll = None
            self._taking = False
            self._flush_brpop_reauth()
        if not taking:
            self._after_wait(reply)
            raise kombu_redis.Empty()
        if not reply:
            self._hungry = False  # nothing waiting: wait for a wake-up
            raise kombu_redis.Empty()
        queue, payload = self._taken(reply)
        self._queue_cycle.rotate(queue)
        self.connection._deliver(payload, queue)
        return True

    def _after_wait(self, token) -> None:
        """A wake-up `token`, or None once the poll interval passed: take at the next poll."""
        self._hungry = True

    def _get(self, queue):
        # basic_get through the same atomic take.
        command = self._take_command([queue], record=not self._get_no_ack)
        try:
            reply = self.script_client.execute_command(*command)
        except redis.exceptions.NoScriptError:
            self._load_take_script()
            reply = self.script_client.execute_command(*command)
        if not reply:
            raise kombu_redis.Empty()
        return self._taken(reply)[1]

    # --- kombu's client plumbing ----------------------------------------------------------------

    def _create_client(self, asynchronous=False):
        # kombu builds a new redis.Redis for every command it sends outside a poll (each publish,
        # each task-sent event): ~0.2 ms of Python apiece, as much as the round trip. A client is
        # only a handle on the channel's connection pool and safe across threads: one per pool.
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        cached = self._sync_client
        if cached is None or cached.connection_pool is not pool:
            cached = self._sync_client = super()._create_client()
            if self.publish_replicas:
                cached.set_response_callback("WAIT", self._replicas_confirmed)
        return cached

    _sync_client = None

    def _connparams(self, asynchronous=False):
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

    # A take's reply is read whatever the channel's credit (module docstring): never paused.

    def _pause_brpop(self, channel, fileno):
        if not channel._taking:
            super()._pause_brpop(channel, fileno)

    def on_readable(self, fileno):
        chan_type = self._fd_to_chan.get(fileno)
        if chan_type is not None and fileno not in self._paused_brpop:
            channel, kind = chan_type
            if kind == "BRPOP" and channel._taking:
                return channel.handlers[kind]()
        return super().on_readable(fileno)


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


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The platform's channel on a Redis master found through Sentinel: this module's consume path,
    heartbeat and sweep, with kombu's Sentinel connection logic (its SentinelChannel makes the
    channel's connection pools Sentinel-managed: each new connection asks the Sentinels for the
    current master, so after a failover the worker's reconnection reaches the promoted replica).

    Nothing else differs: kombu's SentinelChannel overrides only how pools are made (`_get_pool`,
    `_sentinel_managed_pool`, `connection_class`) and the fanout topics, which this channel's
    methods never touch."""

    from_transport_options = tuple(
        dict.fromkeys(Channel.from_transport_options + kombu_redis.SentinelChannel.from_transport_options)
    )


class SentinelTransport(Transport, kombu_redis.SentinelTransport):
    """Select with `broker_transport` = "jobs.brokers.redis_transport:SentinelTransport" and a
    sentinel://...;sentinel://... URL (config/settings/base.py does both for such a URL). kombu's
    SentinelTransport is among its bases so that it is known by kombu's `sentinel` scheme (Flower
    reads the queues through the Sentinels: jobs/operations/flower_broker.py)."""

    Channel = SentinelChannel
