"""Re-encrypt stored sealed values under the newest key of SEALED_ARGUMENT_KEYS (docs/security.md)."""

import json

from django.core.management.base import BaseCommand, CommandError

from jobs.resealing import reseal_everything


class Command(BaseCommand):
    help = (
        "Re-encrypt every sealed job argument (outbox, dead letters) and every sealed column under "
        "the first key of SEALED_ARGUMENT_KEYS; seal values stored in clear before they were sealed."
    )

    def handle(self, *args, **options):
        report = reseal_everything()
        self.stdout.write(json.dumps({"rewritten": report.rewritten, "unopenable": len(report.unopenable)}))
        if report.unopenable:
            for row in report.unopenable[:50]:
                self.stderr.write(row)
            raise CommandError(
                f"{len(report.unopenable)} row(s) could not be opened with SEALED_ARGUMENT_KEYS (listed "
                "above): keep the key they were sealed with until they are resealed or gone"
            )
