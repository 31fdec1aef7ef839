"""WhatsAppMessage.job_id is named `scope` in Python (it holds scopes like "follow-up" too); its
column keeps its name, so nothing in the database changes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0002_bulk_batches"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField(model_name="whatsappmessage", old_name="job_id", new_name="scope"),
                migrations.AlterField(
                    model_name="whatsappmessage",
                    name="scope",
                    field=models.CharField(blank=True, db_column="job_id", max_length=255),
                ),
                # The same constraint and index, on the same column, named by the new field.
                migrations.RemoveConstraint(model_name="whatsappmessage", name="whatsapp_once_per_job_and_key"),
                migrations.AddConstraint(
                    model_name="whatsappmessage",
                    constraint=models.UniqueConstraint(
                        fields=("scope", "idempotency_key"), name="whatsapp_once_per_job_and_key"
                    ),
                ),
                migrations.RemoveIndex(model_name="whatsappmessage", name="whatsapp_job_status_idx"),
                migrations.AddIndex(
                    model_name="whatsappmessage",
                    index=models.Index(
                        fields=["scope", "status"], include=("sent_at",), name="whatsapp_job_status_idx"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
