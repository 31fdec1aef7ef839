"""The one place a Redis URL is read: `redis://...`, or a Sentinel set for high availability.

REDIS_URL (cache, rate limits, the crash-loop counter) and CELERY_BROKER_URL (when it names Redis)
take either form:

- `redis://[:password@]host:port/db`: one Redis server;
- `sentinel://[:password@]host:port;sentinel://host:port;sentinel://host:port[/db]`: the
  Sentinels that watch the master named by REDIS_SENTINEL_MASTER (CELERY_BROKER_SENTINEL_MASTER
  for the broker), kombu's form (kombu/transport/redis.py, SentinelChannel). The password and
  database may be written on any one of the parts; they are those of the Redis master (the
  Sentinels themselves are asked without one).

Everything else asks this module: the settings (django-redis's Sentinel connection factory,
kombu's URL and `master_name`) and the runtime's own short-lived clients (`redis_client`). A
Sentinel-managed client asks the Sentinels where the master is whenever it connects, so after a
failover every new connection goes to the promoted replica.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, urlsplit

import redis
from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "sentinel"
SENTINEL_DEFAULT_PORT = 26379
# A master's name as Sentinel's `sentinel monitor <name> ...` gives it, usable as a URL's host
# (django-redis reads it from LOCATION's host, which is lower-cased).
MASTER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def is_sentinel_url(url: str) -> bool:
    return url.strip().split("://", 1)[0].lower() == SENTINEL_SCHEME


@dataclass(frozen=True)
class SentinelSet:
    """A Redis master found through its Sentinels."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def _credentials(self) -> str:
        if self.password is None and self.username is None:
            return ""
        return f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"

    @property
    def url(self) -> str:
        """kombu's form, every part spelled in full: kombu reads the database and password from
        the first part and fails over between the parts (Connection.alt)."""
        parts = (
            f"{SENTINEL_SCHEME}://{self._credentials}{host}:{port}/{self.db}" for host, port in self.sentinels
        )
        return ";".join(parts)

    @property
    def master_url(self) -> str:
        """The master as django-redis's Sentinel connection factory names it: redis://<name>/<db>."""
        return f"redis://{self._credentials}{self.master_name}/{self.db}"

    def master_kwargs(self) -> dict:
        kwargs: dict = {"db": self.db}
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


def parse_sentinel_url(url: str, master_name: str, *, setting: str, master_setting: str) -> SentinelSet:
    """The Sentinel set `url` names; ImproperlyConfigured naming `setting` (or `master_setting`)
    when it is not one."""
    if not master_name:
        raise ImproperlyConfigured(
            f"{setting} names Redis Sentinels ({SENTINEL_SCHEME}://...) but {master_setting} is empty: "
            "set it to the master's name, as the Sentinels monitor it (`sentinel monitor <name> ...`)."
        )
    if not MASTER_NAME.match(master_name):
        raise ImproperlyConfigured(
            f"{master_setting}={master_name!r} is not a usable master name: lower-case letters, digits, "
            "'.', '_' and '-' only (rename it in the Sentinels' `sentinel monitor` line)."
        )
    sentinels: list[tuple[str, int]] = []
    dbs: set[int] = set()
    usernames: set[str] = set()
    passwords: set[str] = set()
    for part in filter(None, (piece.strip() for piece in url.split(";"))):
        parts = urlsplit(part)
        if parts.scheme.lower() != SENTINEL_SCHEME:
            raise ImproperlyConfigured(
                f"{setting}: every ';'-separated part must be {SENTINEL_SCHEME}://host:port, "
                f"found a {parts.scheme or 'schemeless'} URL"
            )
        try:
            port = parts.port or SENTINEL_DEFAULT_PORT
        except ValueError:
            raise ImproperlyConfigured(f"{setting}: a Sentinel's port is not a number") from None
        if not parts.hostname:
            raise ImproperlyConfigured(f"{setting}: a {SENTINEL_SCHEME}:// part names no host")
        sentinels.append((parts.hostname, port))
        path = parts.path.strip("/")
        if path:
            if not path.isdigit():
                raise ImproperlyConfigured(f"{setting}: the database must be a number, found {path!r}")
            dbs.add(int(path))
        if parts.username:
            usernames.add(parts.username)
        if parts.password:
            passwords.add(parts.password)
    if not sentinels:
        raise ImproperlyConfigured(f"{setting}: no Sentinel named")
    for what, found in (("database numbers", dbs), ("user names", usernames), ("passwords", passwords)):
        if len(found) > 1:
            raise ImproperlyConfigured(f"{setting}: its parts give different {what}; give one")
    return SentinelSet(
        sentinels=tuple(sentinels),
        master_name=master_name,
        db=dbs.pop() if dbs else 0,
        username=usernames.pop() if usernames else None,
        password=passwords.pop() if passwords else None,
    )


def redis_client(url: str, *, master_name: str = "", timeout: float) -> redis.Redis:
    """A client on `url` whose every wait is bounded by `timeout`: a plain URL's server, or the
    current master of a Sentinel set (found anew on each connection, so it follows a failover)."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return _sentinel_client(url, master_name, timeout)


@lru_cache(maxsize=16)
def _sentinel_client(url: str, master_name: str, timeout: float) -> redis.Redis:
    # Kept, unlike a plain URL's client: a Sentinel-managed client holds a connection to every
    # Sentinel. Safe across threads, and across a fork (redis-py's pools reset in a child).
    where = parse_sentinel_url(url, master_name, setting="the Redis URL", master_setting="its master name")
    sentinel = Sentinel(
        list(where.sentinels),
        sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
    )
    return sentinel.master_for(
        where.master_name, socket_timeout=timeout, socket_connect_timeout=timeout, **where.master_kwargs()
    )


def django_redis_cache(
    url: str, master_name: str, options: dict, *, setting: str = "REDIS_URL", master_setting: str
) -> dict:
    """LOCATION and OPTIONS of a django-redis cache on `url` (its OPTIONS given as `options`).
    For a Sentinel set: django-redis's Sentinel connection factory, every command to the master
    (its SentinelClient would read from replicas, which lag: a write then a read could miss)."""
    if not is_sentinel_url(url):
        return {"LOCATION": url, "OPTIONS": options}
    where = parse_sentinel_url(url, master_name, setting=setting, master_setting=master_setting)
    return {
        "LOCATION": where.master_url,
        "OPTIONS": {
            **options,
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": list(where.sentinels),
        },
    }
