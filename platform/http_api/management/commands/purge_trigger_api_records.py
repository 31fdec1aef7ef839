"""python manage.py purge_trigger_api_records: drop expired Idempotency-Keys and old job records."""

import json

from django.core.management.base import BaseCommand

from http_api.services import purge_expired


class Command(BaseCommand):
    help = "Delete Idempotency-Keys older than 24 h and accepted-job records past result retention."

    def handle(self, *args, **options) -> None:
        self.stdout.write(json.dumps(purge_expired()))
