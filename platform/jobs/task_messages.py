"""The platform's task-message builder and sender: Celery's, with sealed arguments sealed
(jobs/sealing.py) and phone numbers masked in the argument reprs, and a job sent with its
task-sent event in one round trip.

Celery shows a job's arguments from `argsrepr`/`kwargsrepr`, which it builds with the message:
in the task-sent event (Flower), the worker's events, and django-celery-results' task_args and
task_kwargs. Building them masked here covers every publish, whatever path it takes (`.delay()`,
`send_task` by name, the outbox, a replay); the arguments themselves travel intact, except those
the task's signature marks `Sealed[...]`, which travel encrypted and show as <sealed>. Only E.164
numbers are masked, so ids, amounts and dates stay readable (docs/architecture.md rule 8).

The task-sent event (Flower's view of a job before a worker takes it) is a second publish after
the job's own. On Redis both go in one pipelined round trip (kombu's publish batch: LPUSH and
PUBLISH); a broker without batches (RabbitMQ) publishes them one after the other, as Celery does.
A batch that fails is sent again unbatched, with Celery's publish retries: at most a duplicate of
a message whose delivery was uncertain, which at-least-once delivery allows (docs/architecture.md
rule 1: a redelivered job has the effect of one).
"""

import logging

from celery.app.amqp import AMQP
from celery.utils.saferepr import saferepr
from kombu.exceptions import BatchPublishError

from identifiers import mask_e164_in
from jobs.celery_app import argument_model_of
from jobs.sealing import masked, seal_arguments

logger = logging.getLogger(__name__)


class MaskingAMQP(AMQP):
    def as_task_v2(
        self,
        task_id,
        name,
        args=None,
        kwargs=None,
        *positional,
        argsrepr=None,
        kwargsrepr=None,
        **options,
    ):
        # The one place a message's sealed arguments are sealed (jobs/sealing.py): whatever path
        # the publish took. Reprs are built from the sealed values: a sealed one shows <sealed>.
        args, kwargs = seal_arguments(argument_model_of(name), args, kwargs)
        if argsrepr is None:
            argsrepr = mask_e164_in(saferepr(masked(args or ()), self.argsrepr_maxsize))
        if kwargsrepr is None:
            kwargsrepr = mask_e164_in(saferepr(masked(kwargs or {}), self.kwargsrepr_maxsize))
        return super().as_task_v2(
            task_id, name, args, kwargs, *positional, argsrepr=argsrepr, kwargsrepr=kwargsrepr, **options
        )

    def _create_task_sender(self):
        send = super()._create_task_sender()

        def send_task_message(producer, name, message, **kwargs):
            sent_event = message[3]
            if not sent_event or not producer.supports_batch_publish:
                return send(producer, name, message, **kwargs)
            event = dict(sent_event)  # Celery adds the route to it: a fallback starts afresh
            try:
                with producer.batch(max_size=8):
                    return send(producer, name, message, **kwargs)
            except BatchPublishError as exc:  # the pipeline failed: delivery uncertain
                logger.warning("batched publish of %s failed (%s); publishing unbatched", name, exc)
                return send(producer, name, (*message[:3], event), **kwargs)

        return send_task_message
