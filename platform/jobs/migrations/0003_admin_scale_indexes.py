"""Indexes for the admin at the scale of real history (jobs/operations/admin_scale.py): built CONCURRENTLY
(jobs/concurrent_indexes.py), so a deploy never blocks the writers of a table of millions of rows.
The task-result index is on django_celery_results' table, which has no model of ours."""

from django.db import migrations, models

from jobs.concurrent_indexes import create_index_concurrently


def _index(model: str, table: str, index: models.Index) -> migrations.SeparateDatabaseAndState:
    opclass = index.opclasses[0] if index.opclasses else ""
    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AddIndex(model_name=model, index=index)],
        database_operations=[create_index_concurrently(table, index.name, list(index.fields), opclass=opclass)],
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("jobs", "0002_outbox"),
        ("django_celery_results", "0014_alter_taskresult_status"),
    ]

    operations = [
        _index("deadletter", "jobs_deadletter", models.Index(fields=["last_failed_at"], name="deadletter_last_failed_idx")),
        _index("deadletter", "jobs_deadletter", models.Index(fields=["queue"], name="deadletter_queue_idx")),
        _index("deadletter", "jobs_deadletter", models.Index(fields=["exception_type"], name="deadletter_exception_idx")),
        _index(
            "effect",
            "jobs_effect",
            models.Index(fields=["key"], name="effect_key_like_idx", opclasses=["varchar_pattern_ops"]),
        ),
        _index("outboxmessage", "jobs_outboxmessage", models.Index(fields=["outcome"], name="outbox_outcome_idx")),
        _index("outboxmessage", "jobs_outboxmessage", models.Index(fields=["published_at"], name="outbox_published_idx")),
        _index("outboxmessage", "jobs_outboxmessage", models.Index(fields=["completed_at"], name="outbox_completed_idx")),
        # django_celery_results' table: a task-name prefix search (LIKE 'x%').
        create_index_concurrently(
            "django_celery_results_taskresult",
            "taskresult_task_name_like_idx",
            ["task_name"],
            opclass="varchar_pattern_ops",
        ),
    ]
