"""Two more lists in the admin's order whatever the number of matches (issue 24;
jobs/operations/admin_scale.py):

- The outbox by state (id DESC): "not completed" and "never published" are read newest first from a
  partial index of the open rows, however many a broker outage leaves, where the plain
  (completed_at) or (published_at) index handed every match to a sort. Partial: the index holds only
  the rows the filter shows (none, most of the time).
- Dead letters of one status by task (last_failed_at DESC, id DESC): the open ones of a task name,
  and of each name of a task-name prefix search, where (task_name, last_failed_at, id) skipped every
  replayed and discarded one.

Built CONCURRENTLY (jobs/concurrent_indexes.py)."""

from django.db import migrations, models
from django.db.models import Q

from jobs.concurrent_indexes import create_index_concurrently

OUTBOX = "jobs_outboxmessage"


def _open_rows(name: str, column: str) -> migrations.SeparateDatabaseAndState:
    index = models.Index(fields=["id"], condition=Q(**{f"{column}__isnull": True}), name=name)
    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AddIndex(model_name="outboxmessage", index=index)],
        database_operations=[create_index_concurrently(OUTBOX, name, ["id"], condition=f'"{column}" IS NULL')],
    )


DEAD_LETTERS_BY_TASK_AND_STATUS = models.Index(
    fields=["task_name", "status", "last_failed_at", "id"], name="deadletter_task_status_idx"
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("jobs", "0005_paused_queue")]

    operations = [
        _open_rows("outbox_open_id_idx", "completed_at"),
        _open_rows("outbox_unpublished_id_idx", "published_at"),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="deadletter", index=DEAD_LETTERS_BY_TASK_AND_STATUS)],
            database_operations=[
                create_index_concurrently(
                    "jobs_deadletter",
                    DEAD_LETTERS_BY_TASK_AND_STATUS.name,
                    list(DEAD_LETTERS_BY_TASK_AND_STATUS.fields),
                )
            ],
        ),
    ]
