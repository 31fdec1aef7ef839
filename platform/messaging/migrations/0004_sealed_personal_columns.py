"""Numbers and texts sealed (messaging/models.py, jobs/sealing.py): the columns become sealed text
(varchar -> text needs no table rewrite on PostgreSQL), the index on the number goes (a sealed
column cannot be searched), and bulk recipients' idempotency keys stop carrying the number.

Rows already stored stay readable as they are; `manage.py reseal` seals their text (docs/security.md)."""

import marketplace.validators
from django.db import migrations

import jobs.sealing

# A bulk send's rows were keyed "to:<number>", in the order of the job's recipients (repeats
# dropped), inserted in that order: the rank of a row by pk within its job is its position, the
# new key (messaging/bulk.py recipient_key), so a replay of an older job finds its rows.
REKEY_RECIPIENTS = """
UPDATE messaging_whatsappmessage
SET idempotency_key = 'recipient:' || ranked.position
FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id) - 1 AS position
    FROM messaging_whatsappmessage
    WHERE idempotency_key LIKE %s
) AS ranked
WHERE messaging_whatsappmessage.id = ranked.id
"""


def rekey_recipients(apps, schema_editor):
    schema_editor.execute(REKEY_RECIPIENTS, ["to:%"])


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_whatsappmessage_scope"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="whatsappmessage",
            name="whatsapp_to_created_idx",
        ),
        migrations.AlterField(
            model_name="bulkbatch",
            name="body",
            field=jobs.sealing.SealedTextField(),
        ),
        migrations.AlterField(
            model_name="whatsappmessage",
            name="body",
            field=jobs.sealing.SealedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="whatsappmessage",
            name="to",
            field=jobs.sealing.SealedTextField(
                help_text="E.164, no whatsapp: prefix", validators=[marketplace.validators.validate_e164_phone]
            ),
        ),
        migrations.RunPython(rekey_recipients, migrations.RunPython.noop, elidable=True),
    ]
