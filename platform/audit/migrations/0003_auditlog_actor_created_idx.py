"""The audit log by actor in the admin's order (created_at DESC, id DESC; issue 24): an actor
prefix search is read as the merge of each actor's newest rows (jobs/operations/admin_scale.py). Built
CONCURRENTLY (jobs/concurrent_indexes.py)."""

from django.db import migrations, models

from jobs.concurrent_indexes import create_index_concurrently

INDEX = models.Index(fields=["actor", "created_at", "id"], name="auditlog_actor_created_idx")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0002_admin_scale_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="auditlog", index=INDEX)],
            database_operations=[create_index_concurrently("audit_auditlog", INDEX.name, list(INDEX.fields))],
        )
    ]
