"""The HTTP app's first label, `trigger_api`, moved to its name, `http_api`, in a database that was
migrated under the old one.

Its tables keep their names (each model's db_table), so nothing in them moves. What Django
recorded under the label moves: the rows of django_migrations (else `migrate` would create the
tables again) and of django_content_type (renamed in place: the same ids, so admin permissions
granted on API keys and the admin's history stay attached). `manage.py migrate` does it before
anything else (http_api/management/commands/migrate.py), once: a database with nothing under the
old label, or already something under the new one, is left as it is.
"""

from __future__ import annotations

import logging

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

LEGACY_LABEL = "trigger_api"
LABEL = "http_api"


def adopt_legacy_label(connection: BaseDatabaseWrapper) -> bool:
    """Move what the database recorded under LEGACY_LABEL to LABEL; True if anything moved."""
    tables = set(connection.introspection.table_names())
    moved = False
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for table, column in (("django_migrations", "app"), ("django_content_type", "app_label")):
            if table not in tables:
                continue
            quoted_table, quoted_column = connection.ops.quote_name(table), connection.ops.quote_name(column)
            cursor.execute(
                f"SELECT {quoted_column} FROM {quoted_table} WHERE {quoted_column} IN (%s, %s)",  # noqa: S608 fixed names, quoted; values bound
                [LEGACY_LABEL, LABEL],
            )
            labels = {row[0] for row in cursor.fetchall()}
            if LEGACY_LABEL not in labels or LABEL in labels:
                continue
            cursor.execute(
                f"UPDATE {quoted_table} SET {quoted_column} = %s WHERE {quoted_column} = %s",  # noqa: S608 fixed names, quoted; values bound
                [LABEL, LEGACY_LABEL],
            )
            logger.warning("%s: rows of the app label %r moved to %r", table, LEGACY_LABEL, LABEL)
            moved = True
    if moved:
        ContentType.objects.clear_cache()
    return moved
