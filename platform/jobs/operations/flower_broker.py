"""Flower's Broker page on the platform's own kombu transport (installed by flowerconfig.py).

Flower chooses the client that reads queue lengths by the scheme of the broker's URI, as kombu
writes it (`Connection.as_uri()`; flower/utils/broker.py `Broker`). kombu writes the transport
setting there, and on Redis that setting is the platform's transport,
`jobs.brokers.redis_transport:Transport` (CELERY_BROKER_TRANSPORT), so Flower saw
`jobs.brokers.redis_transport:Transport://127.0.0.1:6379/0`, a URI with no scheme it knows, and
its Broker page answered 404 "'redis' broker is not supported".

The platform's transport is kombu's Redis transport with more behind it (it subclasses it): its
queues are kombu's Redis lists, so Flower's own Redis client reads them right, with
`global_keyprefix`, `sep` and `priority_steps` from CELERY_BROKER_TRANSPORT_OPTIONS as before.
This adapter makes Flower's two broker URIs (the one its client is chosen by and the one the
page shows) name the kombu transport the platform's extends, by the scheme kombu registers it
under (`redis`, or `sentinel` for a Sentinel transport). Workers, beat and the web never import
this module. On RabbitMQ (kombu's own transport) the URIs are unchanged.
"""

from __future__ import annotations

import inspect
from functools import cached_property

from flower.app import Flower
from kombu import Connection
from kombu.transport import TRANSPORT_ALIASES

# Flower's properties this adapter replaces (flower/app.py), each with the argument of
# Connection.as_uri they stand for.
_URI_PROPERTIES = {"broker_uri": False, "broker_uri_with_password": True}


def kombu_scheme(transport: type) -> str | None:
    """The URL scheme of the nearest kombu transport `transport` is or extends: "redis" for the
    platform's Redis transport. None when no class in its ancestry is one kombu registers."""
    for cls in inspect.getmro(transport):
        path = f"{cls.__module__}:{cls.__qualname__}"
        # The first alias registered for a class is its scheme ("redis" before "rediss").
        for alias, target in TRANSPORT_ALIASES.items():
            if target == path:
                return alias
    return None


def broker_uri(connection: Connection, *, include_password: bool) -> str:
    """`connection.as_uri()`, with a transport given by its class path written as the scheme of
    the kombu transport it extends (kombu writes the class path itself, which no client parses)."""
    if isinstance(connection.transport_cls, str) and connection.transport_cls in TRANSPORT_ALIASES:
        return connection.as_uri(include_password=include_password)
    scheme = kombu_scheme(connection.get_transport_cls())
    if scheme is None:
        return connection.as_uri(include_password=include_password)
    # A copy of the same parameters under the scheme, used for its URI only (never connected).
    return connection.clone(transport=scheme).as_uri(include_password=include_password)


def _uri_property(name: str, include_password: bool) -> cached_property:
    def uri(self: Flower) -> str:
        with self.capp.connection() as connection:
            return broker_uri(connection, include_password=include_password)

    uri.__name__ = name
    prop = cached_property(uri)
    prop.__set_name__(Flower, name)
    return prop


def install() -> None:
    """Replace Flower's broker URIs with ones that name a scheme Flower knows. Fails at Flower's
    start, naming what changed, if a Flower upgrade no longer has them."""
    for name, include_password in _URI_PROPERTIES.items():
        current = Flower.__dict__.get(name)
        if not isinstance(current, cached_property):
            raise RuntimeError(
                f"flower.app.Flower.{name} is no longer a cached_property: "
                "jobs/operations/flower_broker.py must be revisited for this Flower version"
            )
        setattr(Flower, name, _uri_property(name, include_password))
