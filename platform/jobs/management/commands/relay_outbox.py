"""Run one sweep of the outbox relay now and print what it did (ops, and crash tests)."""

import json

from django.core.management.base import BaseCommand

from jobs.outbox import relay_outbox


class Command(BaseCommand):
    help = "Publish outbox jobs never published, republish those whose job never completed."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(relay_outbox()))
