"""`manage.py migrate`, Django's, after moving what an older database recorded under the HTTP app's
first label (trigger_api) to its label now (http_api/legacy_label.py)."""

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from http_api.legacy_label import adopt_legacy_label


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        adopt_legacy_label(connections[options["database"]])
        return super().handle(*args, **options)
