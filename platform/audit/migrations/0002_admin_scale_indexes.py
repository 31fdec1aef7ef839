"""Indexes for the audit log's admin at a million rows (jobs/operations/admin_scale.py), built CONCURRENTLY
(jobs/concurrent_indexes.py) so a deploy never blocks the services writing the log."""

from django.db import migrations, models

from jobs.concurrent_indexes import create_index_concurrently

INDEXES = [
    models.Index(fields=["action"], name="auditlog_action_idx"),
    models.Index(fields=["object_id"], name="auditlog_object_id_idx"),
    models.Index(fields=["actor"], name="auditlog_actor_like_idx", opclasses=["varchar_pattern_ops"]),
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="auditlog", index=index)],
            database_operations=[
                create_index_concurrently(
                    "audit_auditlog",
                    index.name,
                    list(index.fields),
                    opclass=index.opclasses[0] if index.opclasses else "",
                )
            ],
        )
        for index in INDEXES
    ]
