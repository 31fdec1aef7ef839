"""Personal data stays out of task results, events and Flower (ARCHITECTURE.md rule 8).

Celery stores and shows a job's arguments from the `argsrepr`/`kwargsrepr` message headers
(django-celery-results' task_args/task_kwargs, task events, Flower). Every message this
platform publishes gets them with phone numbers masked; the arguments themselves travel intact,
so the worker still runs the job with the real number.
"""

from celery import signals

from integrations.masking import mask_phones_in


@signals.before_task_publish.connect
def mask_argument_reprs(headers: dict | None = None, body=None, **_kwargs) -> None:  # noqa: ANN001
    if headers is None or not isinstance(body, tuple | list) or len(body) < 2:
        return
    args, kwargs = body[0], body[1]
    headers["argsrepr"] = mask_phones_in(repr(tuple(args or ())))
    headers["kwargsrepr"] = mask_phones_in(repr(dict(kwargs or {})))
