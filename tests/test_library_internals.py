"""The Celery, kombu, django-celery-beat/-results and Django internals the platform relies on,
checked against the installed libraries: an upgrade that removes, renames or changes one fails
here, naming it, instead of breaking a worker silently.

docs/architecture.md ("Library internals the platform relies on") says why each is needed and who
uses it; the last test keeps that list and this one the same. An entry names its member as
`module:Qualified.name` and says what the platform needs of it:
- `signature`: the parameters it calls or overrides it with (annotations aside), as inspect shows;
- `attribute`: a private attribute that instances get (set in the class body or in its source);
- `contains`: a line of its source (or an item of its value) whose behaviour the platform assumes.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS_SECTION = "## Library internals the platform relies on"


@dataclass(frozen=True)
class Internal:
    where: str  # module:Qualified.name
    signature: str | None = None
    attribute: bool = False
    contains: str | None = None

    def __str__(self) -> str:
        return self.where


KOMBU_REDIS = "kombu.transport.redis"
KOMBU_VIRTUAL = "kombu.transport.virtual.base"
RESULTS = "django_celery_results.backends.database:DatabaseBackend"
DELAYED = "celery.worker.consumer.delayed_delivery:DelayedDelivery"
CONSUMER = "celery.worker.consumer.consumer:Consumer"

INTERNALS = [
    # jobs/task_messages.py: a job and its task-sent event in one round trip
    Internal(
        "celery.app.amqp:AMQP._create_task_sender",
        "(self)",
        contains="def send_task_message(producer, name, message,",
    ),
    # jobs/task_base.py: a deferral is not an attempt (self.request.retries -= 1 before Task.retry)
    Internal("celery.app.task:Task.retry", contains="retries = request.retries + 1"),
    # jobs/result_backend.py: the result row in one upsert, reconnecting once
    Internal(
        f"{RESULTS}._store_result",
        "(self, task_id, result, status, traceback=None, request=None, using=None)",
    ),
    Internal(f"{RESULTS}._get_meta_from_request", "(self, request=None)"),
    Internal(f"{RESULTS}._get_extended_properties", "(self, request, traceback)"),
    # jobs/brokers/rabbitmq_delayed_delivery.py (and jobs/poison.py, which swaps the step in)
    Internal(f"{DELAYED}._validate_broker_urls", "(self, broker_urls)"),
    Internal(f"{DELAYED}._setup_delayed_delivery", "(self, c, broker_url)"),
    Internal(f"{DELAYED}._bind_queues", "(self, app, connection)"),
    Internal(f"{CONSUMER}.Blueprint.default_steps", contains=DELAYED),
    # jobs/poison.py: undecodable and unknown messages become dead letters
    Internal(f"{CONSUMER}.on_decode_error", "(self, message, exc)"),
    Internal(f"{CONSUMER}.on_unknown_task", "(self, body, message, exc)"),
    Internal(f"{CONSUMER}.on_invalid_task", "(self, body, message, exc)"),
    Internal(f"{CONSUMER}.on_unknown_message", "(self, body, message)"),
    # jobs/brokers/redis_transport.py: the consume path with no window
    Internal(f"{KOMBU_REDIS}:Channel._brpop_start", "(self, timeout=None)"),
    Internal(f"{KOMBU_REDIS}:Channel._brpop_read", "(self, **options)"),
    Internal(f"{KOMBU_REDIS}:Channel._put", "(self, queue, message, **kwargs)", contains="_publish_batch"),
    Internal(f"{KOMBU_REDIS}:Channel._get", "(self, queue)"),
    Internal(
        f"{KOMBU_REDIS}:Channel._do_restore_message",
        "(self, payload, exchange, routing_key, pipe, leftmost=False)",
    ),
    Internal(f"{KOMBU_REDIS}:Channel._purge", "(self, queue)"),
    Internal(f"{KOMBU_REDIS}:Channel._queue_cycle", attribute=True),
    Internal(f"{KOMBU_REDIS}:Channel._flush_brpop_reauth", "(self)"),
    Internal(f"{KOMBU_REDIS}:Channel._in_poll", attribute=True),
    Internal(f"{KOMBU_REDIS}:Channel._brpop_sent_at", attribute=True),
    Internal(f"{KOMBU_REDIS}:Channel._q_for_pri", "(self, queue, pri)"),
    Internal(f"{KOMBU_REDIS}:Channel._create_client", "(self, asynchronous=False)"),
    Internal(f"{KOMBU_REDIS}:Channel._connparams", "(self, asynchronous=False)"),
    Internal(f"{KOMBU_VIRTUAL}:Channel._next_delivery_tag", "(self)"),
    Internal(f"{KOMBU_VIRTUAL}:Channel._lookup", "(self, exchange, routing_key, default=None)"),
    Internal(f"{KOMBU_VIRTUAL}:Channel._qos", attribute=True),
    Internal(f"{KOMBU_VIRTUAL}:Transport._deliver", "(self, message, queue)"),
    Internal(f"{KOMBU_REDIS}:MultiChannelPoller._pause_brpop", "(self, channel, fileno)"),
    Internal(f"{KOMBU_REDIS}:MultiChannelPoller.on_readable", "(self, fileno)"),
    Internal(f"{KOMBU_REDIS}:MultiChannelPoller._fd_to_chan", attribute=True),
    Internal(f"{KOMBU_REDIS}:MultiChannelPoller._paused_brpop", attribute=True),
    Internal(f"{KOMBU_REDIS}:MultiChannelPoller._channels", attribute=True),
    Internal(f"{KOMBU_REDIS}:SentinelChannel._get_pool", "(self, asynchronous=False)"),
    Internal(
        f"{KOMBU_REDIS}:SentinelChannel._sentinel_managed_pool",
        "(self, asynchronous=False)",
        contains="for url in self.connection.client.alt:",
    ),
    Internal(f"{KOMBU_REDIS}:QoS.append", "(self, message, delivery_tag)"),
    Internal(f"{KOMBU_REDIS}:QoS.restore_visible", "(self, start=0, num=10, interval=10)"),
    Internal(f"{KOMBU_REDIS}:QoS._vrestore_count", attribute=True),
    Internal(f"{KOMBU_REDIS}:QoS._remove_from_indices", "(self, delivery_tag, pipe=None)"),
    Internal(f"{KOMBU_REDIS}:Mutex", "(client, name, expire)"),
    Internal(f"{KOMBU_REDIS}:MutexHeld"),
    Internal(f"{KOMBU_VIRTUAL}:QoS.append", "(self, message, delivery_tag)"),
    Internal(f"{KOMBU_VIRTUAL}:QoS._delivered", attribute=True),
    Internal(f"{KOMBU_VIRTUAL}:QoS._dirty", attribute=True),
    # jobs/schedules/scheduler.py: the DST-safe crontab, one clock per entry, the lease handover
    Internal("celery.schedules:crontab._orig_minute", attribute=True),
    Internal("celery.schedules:crontab._orig_hour", attribute=True),
    Internal("celery.schedules:crontab._orig_day_of_week", attribute=True),
    Internal("celery.schedules:crontab._orig_day_of_month", attribute=True),
    Internal("celery.schedules:crontab._orig_month_of_year", attribute=True),
    Internal("celery.schedules:crontab._app", attribute=True),
    Internal("django_celery_beat.schedulers:ModelEntry._default_now", "(self)"),
    Internal("django_celery_beat.schedulers:DatabaseScheduler._initial_read", attribute=True),
    Internal("django_celery_beat.schedulers:DatabaseScheduler._dirty", attribute=True),
    Internal("celery.beat:Scheduler._heap", attribute=True),
    # jobs/admin_scale.py: a page of an estimated count without counting
    Internal("django.core.paginator:Paginator._get_page", "(self, *args, **kwargs)"),
]


def _owner_and_name(where: str) -> tuple[object, str]:
    module_name, _, qualname = where.partition(":")
    owner: object = importlib.import_module(module_name)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _without_annotations(signature: inspect.Signature) -> str:
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def _sources(owner: object) -> str:
    """The source of a class and of its bases (where an attribute may be set)."""
    classes = inspect.getmro(owner) if inspect.isclass(owner) else (owner,)
    texts = []
    for cls in classes:
        try:
            texts.append(inspect.getsource(cls))
        except (OSError, TypeError):
            continue
    return "\n".join(texts)


def check(internal: Internal) -> None:
    """Raise AssertionError naming `internal` if the installed library no longer has it as the
    platform uses it."""
    where = internal.where
    try:
        owner, name = _owner_and_name(where)
    except (ImportError, AttributeError) as exc:
        raise AssertionError(f"{where}: gone ({type(exc).__name__}: {exc})") from None
    if internal.attribute:
        assigned = re.compile(
            rf"\bself\.{re.escape(name)}\s*(:[^=]*)?=(?!=)|^\s*{re.escape(name)}\s*(:[^=]*)?=", re.M
        )
        if not hasattr(owner, name) and not assigned.search(_sources(owner)):
            raise AssertionError(f"{where}: gone (no longer an attribute of {owner.__name__}, nor set by it)")
        return
    if not hasattr(owner, name):
        raise AssertionError(f"{where}: gone (no attribute {name!r} on {getattr(owner, '__name__', owner)})")
    member = getattr(owner, name)
    if internal.signature is not None:
        found = _without_annotations(inspect.signature(member))
        if found != internal.signature:
            raise AssertionError(f"{where}: signature changed: {found}, was {internal.signature}")
    if internal.contains is not None:
        if callable(member):
            text = inspect.getsource(member)
        else:
            text = "\n".join(map(str, member))
        if internal.contains not in text:
            raise AssertionError(f"{where}: no longer contains {internal.contains!r}: its behaviour changed")


@pytest.mark.parametrize("internal", INTERNALS, ids=str)
def test_a_library_internal_the_platform_relies_on_is_unchanged(internal: Internal) -> None:
    check(internal)


@pytest.mark.parametrize(
    ("internal", "says"),
    [
        (
            Internal(f"{KOMBU_REDIS}:Channel._brpop_begin", "(self, timeout=None)"),
            "Channel._brpop_begin: gone",
        ),
        (
            Internal(f"{KOMBU_REDIS}:Channel._brpop_start", "(self)"),
            "Channel._brpop_start: signature changed",
        ),
        (Internal(f"{KOMBU_REDIS}:QoS._undelivered", attribute=True), "QoS._undelivered: gone"),
        (
            Internal("celery.app.task:Task.retry", contains="retries = request.retries + 2"),
            "Task.retry: no longer",
        ),
        (Internal("kombu.transport.redis_gone:Channel._get"), "redis_gone:Channel._get: gone"),
    ],
    ids=["renamed", "signature", "attribute", "behaviour", "module"],
)
def test_the_check_fails_naming_a_member_an_upgrade_removed_or_changed(internal: Internal, says: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(says)):
        check(internal)


def test_docs_list_exactly_these_internals() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert DOCS_SECTION in text, f"docs/architecture.md has no section {DOCS_SECTION!r}"
    section = text.split(DOCS_SECTION, 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z_][\w.]*:[\w.]+)`", section))
    expected = {internal.where for internal in INTERNALS}
    assert not expected - listed, f"not in docs/architecture.md: {sorted(expected - listed)}"
    assert not listed - expected, (
        f"listed in docs/architecture.md, not checked here: {sorted(listed - expected)}"
    )
