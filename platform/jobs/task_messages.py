"""The platform's task-message builder: Celery's, with phone numbers masked in the argument reprs.

Celery shows a job's arguments from `argsrepr`/`kwargsrepr`, which it builds with the message:
in the task-sent event (Flower), the worker's events, and django-celery-results' task_args and
task_kwargs. Building them masked here covers every publish, whatever path it takes (`.delay()`,
`send_task` by name, the outbox, a replay); the arguments themselves travel intact. Only E.164
numbers are masked, so ids, amounts and dates stay readable (docs/architecture.md rule 8).
"""

from celery.app.amqp import AMQP
from celery.utils.saferepr import saferepr

from identifiers import mask_e164_in


class MaskingAMQP(AMQP):
    def as_task_v2(
        self,
        task_id,
        name,
        args=None,
        kwargs=None,
        *positional,
        argsrepr=None,  # noqa: ANN001
        kwargsrepr=None,
        **options,
    ):
        if argsrepr is None:
            argsrepr = mask_e164_in(saferepr(args or (), self.argsrepr_maxsize))
        if kwargsrepr is None:
            kwargsrepr = mask_e164_in(saferepr(kwargs or {}, self.kwargsrepr_maxsize))
        return super().as_task_v2(
            task_id, name, args, kwargs, *positional, argsrepr=argsrepr, kwargsrepr=kwargsrepr, **options
        )
