"""Indexes that give the admin's filtered and searched pages in the list's own order (issue 24;
jobs/operations/admin_scale.py read_in_index_order): each is (the filtered column, the list's ordering columns,
id), so the newest rows of one status, one task name or one outcome are the first the index gives,
however many rows match. Built CONCURRENTLY (jobs/concurrent_indexes.py): a deploy never blocks
the writers of a table of millions of rows. The task-result ones are on django_celery_results'
table, which has no model of ours."""

from django.db import migrations, models

from jobs.concurrent_indexes import create_index_concurrently

RESULTS = "django_celery_results_taskresult"


def _index(model: str, table: str, index: models.Index) -> migrations.SeparateDatabaseAndState:
    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AddIndex(model_name=model, index=index)],
        database_operations=[create_index_concurrently(table, index.name, list(index.fields))],
    )


def _drop_concurrently(create: migrations.RunPython) -> migrations.RunPython:
    """DROP INDEX CONCURRENTLY, reversible by building the index again (concurrently)."""
    return migrations.RunPython(create.reverse_code, create.code, elidable=False)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("jobs", "0003_admin_scale_indexes")]

    operations = [
        # Task results (ordered by date_done DESC, id DESC): the status filter; a task name (the
        # filter, and each name of a name-prefix search); both at once.
        create_index_concurrently(RESULTS, "taskresult_status_done_idx", ["status", "date_done", "id"]),
        create_index_concurrently(RESULTS, "taskresult_name_done_idx", ["task_name", "date_done", "id"]),
        create_index_concurrently(
            RESULTS, "taskresult_name_status_done_idx", ["task_name", "status", "date_done", "id"]
        ),
        # Dead letters (last_failed_at DESC, id DESC) by task name; outbox messages (id DESC) by task
        # name and by outcome.
        _index(
            "deadletter",
            "jobs_deadletter",
            models.Index(fields=["task_name", "last_failed_at", "id"], name="deadletter_task_failed_idx"),
        ),
        _index(
            "outboxmessage",
            "jobs_outboxmessage",
            models.Index(fields=["task_name", "id"], name="outbox_task_id_idx"),
        ),
        _index(
            "outboxmessage",
            "jobs_outboxmessage",
            models.Index(fields=["outcome", "id"], name="outbox_outcome_id_idx"),
        ),
        # (outcome, id) serves everything (outcome) did: one index fewer for the relay to maintain.
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveIndex(model_name="outboxmessage", name="outbox_outcome_idx")],
            database_operations=[
                _drop_concurrently(
                    create_index_concurrently("jobs_outboxmessage", "outbox_outcome_idx", ["outcome"])
                )
            ],
        ),
    ]
